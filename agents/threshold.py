"""The threshold agent: per-source decision and statistics, in stream order (one event at a time).

Threshold of a line, by mode:
- ``fixed``: ``--threshold`` / CLOGS_THRESHOLD;
- ``warmup``: until the source has counted CLOGS_WARMUP_LINES lines, mean + factor x std of
  the checkpoint's calibration statistics;
- ``dynamic``: mean + factor x std of the source's own running statistics, but never below
  the warm-up (calibration) threshold: a source the model reconstructs almost perfectly has a
  tiny spread, and without this floor a loss of 0.005 nats would raise alerts.  The source's
  own statistics raise the bar for noisy sources; they never lower it below what the
  training data calls normal.
Statistics update (Welford, in the changelog-backed ``source-stats`` table) with every line,
but a score above the threshold enters clipped at the threshold (winsorised): a burst of
anomalies pulls the mean up to the threshold at most and shrinks the spread, so it cannot
lift the threshold enough to hide itself, and every line is still counted.
"""
from dataclasses import dataclass

from app import settings
from app.faust_app import anomalies_topic, app
from agents.scoring import scored_topic, scorer
from tables.stats import stats_table

results_topic = app.topic(f"{settings.APP_ID}-results", internal=True, key_type=str, value_serializer="json",
                          partitions=settings.PARTITIONS)


@dataclass
class Decision:
    threshold: float
    mode: str
    mean: float
    std: float


def decide(stats, calibration, factor=None, fixed=None, warmup_lines=None):
    factor = settings.FACTOR if factor is None else factor
    fixed = settings.THRESHOLD if fixed is None else fixed
    warmup_lines = settings.WARMUP_LINES if warmup_lines is None else warmup_lines
    floor = calibration.get("mean", 0.0) + factor * calibration.get("std", 0.0)
    if stats.count >= warmup_lines:
        mean, std, mode = stats.mean, stats.std, "dynamic"
    else:
        mean, std, mode = calibration.get("mean", 0.0), calibration.get("std", 0.0), "warmup"
    if fixed is not None:
        return Decision(fixed, "fixed", mean, std)
    return Decision(max(mean + factor * std, floor), mode, mean, std)


def result_document(line, decision, is_anomaly):
    doc = line.asdict()
    doc.update(is_anomaly=is_anomaly, threshold_used=decision.threshold, threshold_mode=decision.mode,
               mean_score=decision.mean, std_score=decision.std)
    doc["id"] = f"{line.kafka_topic}-{line.kafka_partition}-{line.kafka_offset}"
    return doc


@app.agent(scored_topic, concurrency=1)
async def apply_thresholds(stream):
    async for line in stream:
        stats = stats_table[line.source]
        decision = decide(stats, scorer.calibration)
        is_anomaly = line.anomaly_score > decision.threshold
        if line.kafka_offset > stats.last_offset:  # a replayed line is not counted twice
            stats_table[line.source] = stats.add(min(line.anomaly_score, decision.threshold), line.kafka_offset,
                                                 is_anomaly)
        doc = result_document(line, decision, is_anomaly)
        await results_topic.send(key=line.source, value=doc)
        if is_anomaly:
            await anomalies_topic.send(key=line.source, value=doc)
