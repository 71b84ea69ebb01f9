"""The threshold agent: per-source decisions and learning, batch by batch in offset order.

It reads a source's statistics (``source-stats``) and memory (``source-memory``), hands them
with the batch to ``model.online.judge_batch`` -- the same function ``clogs evaluate --online``
and the unit tests call -- and writes both back: one table write each per batch.  Modes,
scores and guards are described in model/online.py.
"""
from app import settings
from app.faust_app import anomalies_topic, app, models, reservoir_topic, results_topic, scored_topic
from model.online import Policy, judge_batch
from tables.stats import memory_table, stats_table


def policy():
    return Policy(**settings.policy_options())


@app.agent(scored_topic, concurrency=1)
async def apply_thresholds(stream):
    rules = policy()
    await models.ready()
    async for batch in stream:
        stats, memory = stats_table[batch.source], memory_table[batch.source]
        calibration, prior = models.scale_of(batch.lines[0]["model_version"])
        samples = []
        docs = judge_batch(batch.lines, stats, memory, calibration, rules, prior, samples)
        stats_table[batch.source] = stats
        if rules.learning:
            memory_table[batch.source] = memory
        for slot, line in samples:  # the slow path's reservoir: one compacted key per slot
            await reservoir_topic.send(key=f"{batch.source}|{slot}".encode(), value=line.encode("utf-8", "replace"))
        await results_topic.send(key=batch.source, value={"source": batch.source, "docs": docs})
        for doc in docs:
            if doc["is_anomaly"]:
                await anomalies_topic.send(key=batch.source, value=doc)
