"""The threshold agent: per-source decisions, learning and incidents, batch by batch in offset order.

For each scored batch it reads the source's statistics and memory, hands them with the batch to
``model.online.judge_batch`` (the function ``clogs evaluate --online`` and the tests call) and
writes both back; flagged lines join their incidents.  It decides several sources' batches at a
time and hands their documents to Elasticsearch in one go; their alerts are sent and their events
acked only once indexed, so a crash replays them under the same ids.  One such completion is in
flight while the next batches are decided (docs/streaming.md tells the order of events).
"""
import asyncio
import logging
import time

from agents.incidents import (RATES, alert_messages, content_incidents, iso_at, marked_normal, rate_incidents,
                              send_alerts, send_notices, take_notices)
from agents.sink import index_batch, indexing_client
from app.faust_app import app, handling, metrics, models, redactor, reservoir_topic, scored_topic, settings
from app.outputs.documents import incident_document
from model.eventtime import parse_iso
from model.online import Policy, judge_batch
from tables.stats import book_table, memory_table, stats_table

log = logging.getLogger(__name__)

SCORED_BATCHES = 8    # scored batches (each up to 512 lines of one source) decided and indexed together


POLICY = Policy.of(settings)


@app.agent(scored_topic, concurrency=1)
async def apply_thresholds(stream):
    rules, rates = POLICY, RATES
    es = await indexing_client()
    await models.ready()
    in_flight = None
    try:
        async for events in stream.noack_take(SCORED_BATCHES, within=settings.batch_timeout):
            try:
                decided = []
                for event in events:
                    with handling(event):
                        decided.append(await decide_batch(event.value, rules, rates))
                if in_flight is not None:
                    await asyncio.wait([in_flight])   # one completion at a time (waiting never cancels it)
                    in_flight.result()                # its failure stops the agent here
            except BaseException:   # the agent fails: its take is acked, as take_events did
                for event in events:
                    await stream.ack(event)
                raise
            in_flight = asyncio.ensure_future(complete(stream, es, events, decided))
            in_flight.add_done_callback(_report_failure)
    finally:   # the last completion finishes (and acks its take) even when the agent stops or fails
        if in_flight is not None and not in_flight.done():
            await asyncio.wait([in_flight])


async def complete(stream, es, events, decided):
    """Index the decided batches' documents and incidents, send their alerts, then ack their events
    (acked on failure too, as take_events did: the error then stops the agent at its next take, and
    Faust restarts it; nothing stays unacked, which would stall commits, rebalances and shutdown)."""
    try:
        await index_batch(es, [doc for _, docs, _, _, _ in decided for doc in docs],
                          [incident_document(i, redactor()) for _, _, changed, _, _ in decided for i in changed])
        await send_alerts(message for _, _, _, alerts, _ in decided for message in alerts)
        for source, _, _, _, notes in decided:
            await send_notices(source, notes)
    finally:
        for event in events:
            await stream.ack(event)


def _report_failure(task):
    if not task.cancelled() and task.exception() is not None:
        log.error("indexing scored batches failed: %r", task.exception(), exc_info=task.exception())


async def decide_batch(batch, rules, rates):
    """One source's scored batch -> (source, documents, changed incidents, alerts, notices); the tables
    are written, the reservoir's samples sent."""
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
    new = [doc for doc in docs if doc["kafka_offset"] > counted.get(str(doc["kafka_partition"]), -1)]
    new_lines = sum(doc.get("event_lines") or 1 for doc in new)   # physical lines, events' included
    metrics().count(source, new_lines, sum(1 for doc in new if doc["is_anomaly"]))
    arrived = parse_iso(docs[-1]["ingested_at"]) if docs else None
    fresh = arrived is None or now_s - arrived.timestamp() < 2 * rates.window
    book = book_table[source]
    rated, quiet = rate_incidents(source, new_lines, now_s, rates, book, fresh)
    changed = content_incidents(source, docs, now, book) + rated
    book_table[source] = book
    await send_samples(source, samples)
    return source, docs, changed, alert_messages(source, docs, changed, now, quiet=quiet), take_notices(changed)


async def send_samples(source, samples):
    """The slow path's reservoir: one compacted key per slot.  Straight to Faust's producer (the one
    its commits flush): a new source sends hundreds of them, and Faust's channel machinery around
    each send (futures, sensors, callbacks) cost more than the send itself (issue 11)."""
    if not samples:
        return
    producer, topic = app.producer, reservoir_topic.get_topic_name()
    for slot, line in samples:
        await producer.send(topic, f"{source}|{slot}".encode(), line.encode("utf-8", "replace"), None, None, None)
