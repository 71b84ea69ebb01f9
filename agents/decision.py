"""The threshold decision for one line, as a plain function (the threshold agent applies it).

See agents/threshold.py for the modes and the update rule.
"""
from dataclasses import dataclass

from app import settings


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
    if stats.n >= warmup_lines:
        mean, std, mode = stats.mean, stats.std, "dynamic"
    else:
        mean, std, mode = calibration.get("mean", 0.0), calibration.get("std", 0.0), "warmup"
    if fixed is not None:
        return Decision(fixed, "fixed", mean, std)
    return Decision(max(mean + factor * std, floor), mode, mean, std)


def result_document(line, decision, is_anomaly):
    """The Elasticsearch document of a scored line (a dict); "id" is its log topic-partition-offset."""
    doc = dict(line)
    doc.update(is_anomaly=is_anomaly, threshold_used=decision.threshold, threshold_mode=decision.mode,
               mean_score=decision.mean, std_score=decision.std)
    doc["id"] = f"{line['kafka_topic']}-{line['kafka_partition']}-{line['kafka_offset']}"
    return doc
