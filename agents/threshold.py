"""The threshold agent: per-source decisions, learning and incidents, batch by batch in offset order.

For each scored batch (one source's lines) it reads the source's statistics (``source-stats``)
and memory (``source-memory``), hands them with the batch to ``model.online.judge_batch`` -- the
same function ``clogs evaluate --online`` and the unit tests call -- and writes both back: one
table write each per batch.  Modes, scores and guards are described in model/online.py.  Flagged
lines then join their incidents, the batch's new lines are counted for the rate
(agents/incidents.py).

It takes the scored batches of several sources at a time, indexes their documents and changed
incidents into Elasticsearch in one go (agents/sink.py ``index_batch``), then sends the alerts;
Faust acks the batches only after that, so a crash before indexing replays them (the same ids:
Elasticsearch still holds each line once).  Each batch's table writes are made in its own
event's context (``handling``), so they land in its partition's changelogs.
"""
import time
import weakref
from contextlib import contextmanager

from faust.streams import _current_event

from agents.incidents import content_incidents, iso_at, marked_normal, rate_incidents, rate_policy, send_alerts
from agents.sink import index_batch, indexing_client
from app import settings
from app.documents import incident_document
from app.faust_app import app, models, reservoir_topic, scored_topic
from model.eventtime import parse_iso
from model.online import Policy, judge_batch
from tables.stats import memory_table, stats_table

SCORED_BATCHES = 8    # scored batches (each up to 512 lines of one source) decided and indexed together


def policy():
    return Policy(**settings.policy_options())


@contextmanager
def handling(event):
    """Make ``event`` Faust's current event in this task: a table write goes to the changelog
    partition of the current event, and ``take_events`` hands its list over without one."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


@app.agent(scored_topic, concurrency=1)
async def apply_thresholds(stream):
    rules, rates = policy(), rate_policy()
    es = await indexing_client()
    await models.ready()
    async for events in stream.take_events(SCORED_BATCHES, within=settings.BATCH_TIMEOUT):
        decided = []
        for event in events:
            with handling(event):
                decided.append(await decide_batch(event.value, rules, rates))
        await index_batch(es, [doc for _, docs, _, _, _ in decided for doc in docs],
                          [incident_document(i) for _, _, changed, _, _ in decided for i in changed])
        for source, docs, changed, now, quiet in decided:
            await send_alerts(source, docs, changed, now, quiet=quiet)


async def decide_batch(batch, rules, rates):
    """One source's scored batch -> (source, documents, changed incidents, now, quiet incident ids);
    the tables are written, the reservoir's samples sent."""
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
    return source, docs, changed, now, quiet
