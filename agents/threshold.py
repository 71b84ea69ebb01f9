"""The threshold agent: per-source decision and statistics, line by line in offset order.

Threshold of a line, by mode:
- ``fixed``: ``--threshold`` / CLOGS_THRESHOLD;
- ``warmup``: until CLOGS_WARMUP_LINES of the source's lines have entered its baseline,
  mean + factor x std of the checkpoint's calibration statistics;
- ``dynamic``: mean + factor x std of the source's own running statistics, but never below
  the warm-up (calibration) threshold: a source the model reconstructs almost perfectly has a
  tiny spread, and without this floor a loss of 0.005 nats would raise alerts.  The source's
  own statistics raise the bar for noisy sources; they never lower it below what the
  training data calls normal.
Every line is counted; only the scores of lines that were not flagged update the baseline
(Welford, in the changelog-backed ``source-stats`` table).  So a burst of anomalies leaves
the threshold where it was and stays flagged to its last line.  (Clipping flagged scores at
the threshold instead was tried and rejected: a long burst makes the baseline bimodal, its
spread grows, and the threshold ratchets above the burst -- tests/test_thresholds.py.)
The price: a source whose normal traffic the model finds novel stays flagged until the
model is retrained on it or a fixed ``--threshold`` is set.
"""
from agents.decision import decide, result_document
from agents.scoring import scorer
from app.faust_app import anomalies_topic, app, results_topic, scored_topic
from tables.stats import stats_table


@app.agent(scored_topic, concurrency=1)
async def apply_thresholds(stream):
    async for batch in stream:
        stats = stats_table[batch.source]
        docs = []
        for line in batch.lines:
            decision = decide(stats, scorer.calibration)
            is_anomaly = line["anomaly_score"] > decision.threshold
            if line["kafka_offset"] > stats.last_offset:  # a replayed line is not counted twice
                stats = stats.add(line["anomaly_score"], line["kafka_offset"], is_anomaly)
            docs.append(result_document(line, decision, is_anomaly))
        stats_table[batch.source] = stats
        await results_topic.send(key=batch.source, value={"source": batch.source, "docs": docs})
        for doc in docs:
            if doc["is_anomaly"]:
                await anomalies_topic.send(key=batch.source, value=doc)
