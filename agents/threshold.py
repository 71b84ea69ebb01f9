"""The threshold agent: per-source decisions, learning and incidents, batch by batch in offset order.

It reads a source's statistics (``source-stats``) and memory (``source-memory``), hands them
with the batch to ``model.online.judge_batch`` -- the same function ``clogs evaluate --online``
and the unit tests call -- and writes both back: one table write each per batch.  Modes,
scores and guards are described in model/online.py.  Flagged lines then join their incidents,
the batch's new lines are counted for the rate (agents/incidents.py), and the documents, the
changed incidents and the alerts are published.
"""
import time

from agents.incidents import content_incidents, iso_at, marked_normal, publish, rate_incidents, rate_policy
from app import settings
from app.faust_app import app, models, reservoir_topic, scored_topic
from model.eventtime import parse_iso
from model.online import Policy, judge_batch
from tables.stats import memory_table, stats_table


def policy():
    return Policy(**settings.policy_options())


@app.agent(scored_topic, concurrency=1)
async def apply_thresholds(stream):
    rules, rates = policy(), rate_policy()
    await models.ready()
    async for batch in stream:
        source = batch.source
        stats, memory = stats_table[source], memory_table[source]
        counted = dict(stats.offsets)   # per log partition, before this batch
        calibration, prior = models.scale_of(batch.lines[0]["model_version"])
        samples = []
        docs = judge_batch(batch.lines, stats, memory, calibration, rules, prior, samples, marked_normal(source))
        stats_table[source] = stats
        if rules.learning:
            memory_table[source] = memory
        now_s = time.time()
        now = iso_at(now_s)
        new_lines = sum(1 for doc in docs if doc["kafka_offset"] > counted.get(str(doc["kafka_partition"]), -1))
        arrived = parse_iso(docs[-1]["ingested_at"]) if docs else None
        fresh = arrived is None or now_s - arrived.timestamp() < 2 * rates.window
        rated, quiet = rate_incidents(source, new_lines, now_s, rates, fresh)
        changed = content_incidents(source, docs, now) + rated
        for slot, line in samples:  # the slow path's reservoir: one compacted key per slot
            await reservoir_topic.send(key=f"{source}|{slot}".encode(), value=line.encode("utf-8", "replace"))
        await publish(source, docs, changed, now, quiet=quiet)
