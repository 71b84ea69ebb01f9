"""The scoring agent: log topic -> events -> micro-batches -> ``model.Scorer`` -> scored topic (key = source).

Each record's line is unwrapped (Docker, CRI) and handed to the source's ``model.multiline``
assembler; an event is scored once it is complete (the next one started, its source was quiet for
CLOGS_MULTILINE_TIMEOUT, or it reached CLOGS_MULTILINE_MAX_LINES) as ``model.events.prepare_event``
reads it, and identified by its first line's topic-partition-offset.  The records of an event are
acked only once the event was sent on: while one is pending its offsets are not committed, so a
worker killed mid-event, or a partition that moves, hands the whole event to the next reader, who
assembles it again (docs/streaming.md).  When a rebalance starts, pending events are completed as
they are (Faust waits for every record to be acked before it gives partitions away).

Scored events are forwarded per source, in offset order, in chunks of at most ``CHUNK_LINES``
and ``CHUNK_BYTES`` of text, so that no message outgrows the broker's limit.  The model runs in
the model service's single thread (``app.model_service``), so the event loop keeps heartbeats and
commits going while torch works; each event records the ``model_version`` that scored it.
"""
import asyncio
import logging
import time
from datetime import datetime, timezone
from functools import lru_cache

from agents import deadletter
from app.faust_app import app, handling, leave_unacked, log_topic, models, scored_topic, settings
from app.inputs.records import parse_log_value, record_options
from model.eventtime import checked_zone, event_time, iso, parse_iso, stated_time
from model.events import prepare_assembled
from model.multiline import assembler_of
from model.online import scored_line
from model.structured import unwrap
from tables.records import ScoredBatch
from tables.stats import assembled_table

log = logging.getLogger(__name__)

CHUNK_LINES = 512
CHUNK_BYTES = 1_000_000
MAX_SCORED_CHARS = 4096    # of a long multi-line event, the model reads the start anyway (max_len tokens)
QUIET_CHECK = 0.1          # seconds between looks for quiet sources and rebalances


def now():
    return iso(datetime.now(timezone.utc))


def times(record, scored_at):
    """(ingested_at, event_time) of a record: its ingest time in clogs' ISO form (the scoring time
    when it has none or an unreadable one) and the time its line states, or None."""
    ingested, ingested_iso = ingest_stamp(record["ingested_at"] if isinstance(record["ingested_at"], str) else None)
    if ingested is None:
        ingested, ingested_iso = ingest_stamp(scored_at)
    stated = stated_time(record.get("stated_time")) or event_time(record["line"], settings.timezone, ingested)
    return ingested_iso, (iso(stated) if stated else None)


@lru_cache(maxsize=4096)
def ingest_stamp(text):
    """(datetime, clogs' ISO form) of an ingest time, or (None, None); remembered, since the lines
    of a batch were mostly ingested in the same few milliseconds."""
    stamp = parse_iso(text)
    return stamp, (iso(stamp) if stamp else None)


def ingest_seconds(text):
    """A record's ingest time in Unix seconds, or None (``ingest_stamp``'s parse, remembered there)."""
    stamp = ingest_stamp(text if isinstance(text, str) else None)[0]
    return stamp.timestamp() if stamp else None


class Pending:
    """The worker's assembler and the lock that keeps the agent and its quiet-source check apart."""

    def __init__(self):
        self.assembler = assembler_of(settings)   # a bad CLOGS_MULTILINE_RULES stops the agent, named
        self.lock = asyncio.Lock()
        self.last_take = time.monotonic()          # when the agent last finished a take
        self.past = set()                          # (source, partition) read past what was sent before

    def sent_already(self, source, partition, offset):
        """Whether a record belongs to an event sent on before this agent started (a restart's replay
        starts at the oldest pending event's first record, which may lie inside another source's
        event that was sent already): its tail must not become an event of its own."""
        key = (source, partition)
        if key in self.past:
            return False
        if offset <= assembled_table[source].get(str(partition), -1):
            return True
        self.past.add(key)
        return False

    def release(self):
        """The worker stops: its pending events stay unacked (uncommitted), and Faust is told not to
        wait for them, so the next reader assembles each whole again."""
        held = self.assembler.flush()
        leave_unacked([event.message for assembled in held for event, _, _ in assembled.metas])
        if held:
            log.info("stopping with %d multi-line event(s) pending: left to the next reader", len(held))


@app.agent(log_topic, concurrency=1)
async def score_lines(stream):
    checked_zone(settings.timezone)   # an unknown CLOGS_TIMEZONE stops the agent at once, named
    pending = Pending()
    watcher = asyncio.ensure_future(complete_quiet_events(stream, pending))
    try:
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_timeout):
            async with pending.lock:
                await take_records(stream, pending, events)
    except Exception:   # the agent fails: what it holds goes on as it is, then everything is acked
        async with pending.lock:
            await finish(stream, pending.assembler.flush())
        raise
    finally:
        watcher.cancel()


async def complete_quiet_events(stream, pending):
    """Every QUIET_CHECK s: complete the events of quiet sources, and every pending event when a
    rebalance starts (the partitions may go to another worker, and Faust waits for their acks);
    when the worker stops, leave the pending events to the next reader (``Pending.release``)."""
    while True:
        await asyncio.sleep(QUIET_CHECK)
        try:
            async with pending.lock:
                assembler = pending.assembler
                if app.should_stop:   # the worker stops (Faust now waits for acks): hand them on
                    pending.release()
                    continue
                if not (assembler.pending or assembler.partials):
                    continue
                if app.rebalancing:
                    done = assembler.flush()
                elif time.monotonic() - pending.last_take > settings.batch_timeout + QUIET_CHECK:
                    # quiet by the source's last line, and no take waiting (whose lines may continue it)
                    done = assembler.quiet(time.monotonic())
                else:
                    continue
                if done:
                    await finish(stream, done)
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # logged, and tried again at the next look
            log.exception("completing quiet events failed: %r", exc)


async def take_records(stream, pending, events):
    """Read a take of log-topic records into the assembler; score and send what they completed."""
    options = record_options(settings)
    clock = time.monotonic()
    assembler, done = pending.assembler, []
    try:
        for event in events:
            try:   # one odd record must never take its batch down with it
                record, reason, detail = parse_log_value(event.value, event.message.headers, event.message.key,
                                                         **options)
                if record is not None:
                    inner, partial, stream_name = unwrap(record["line"])
                    if not inner.strip() and not partial:   # a wrapper around an empty line: nothing to score
                        await stream.ack(event)
                        continue
                    record["line_no"] = line_number(record["line_no"])
                    if pending.sent_already(record["source"], event.message.partition, event.message.offset):
                        await stream.ack(event)   # a record of an event sent before a restart
                        continue
                    done += assembler.feed(record["source"], inner, (event, record, stream_name),
                                           at=ingest_seconds(record.get("ingested_at")), clock=clock,
                                           partial=partial, key=(record["source"], event.message.partition))
            except (ValueError, TypeError, OverflowError) as exc:
                record, reason, detail = None, "not_object", f"unusable field: {type(exc).__name__}: {exc}"[:500]
            if record is None:
                await deadletter.send(reason, detail, message=event.message, value=event.value)
                await stream.ack(event)
    finally:   # what the take completed goes on (and is acked) even when a later record failed
        pending.last_take = time.monotonic()
        await finish(stream, done)


async def finish(stream, done):
    """Score completed events, send them on per source, then ack their records (acked on a failure
    too, as Faust's take_events does: the error then stops the agent, and nothing stays unacked,
    which would stall commits and rebalances)."""
    if not done:
        return
    try:
        scored_at = now()
        good = []
        for assembled in done:
            try:
                good.append(event_record(assembled, scored_at))
            except (ValueError, TypeError, OverflowError) as exc:
                first = assembled.first[0]
                await deadletter.send("not_object", f"unusable field: {type(exc).__name__}: {exc}"[:500],
                                      message=first.message, value=first.value)
        if good:
            model_version, results = await models.score([r["text"][:MAX_SCORED_CHARS] for r, _ in good])
            by_source = {}
            for (record, message), result in zip(good, results):
                by_source.setdefault(record["source"], []).append(scored_line(
                    record, result, model_version, message.topic, message.partition, message.offset, scored_at))
            for source, lines in by_source.items():
                for chunk in chunks(lines):
                    await scored_topic.send(key=source, value=ScoredBatch(source=source, lines=chunk))
        note_sent(done)
    finally:
        for assembled in done:
            for event, _, _ in assembled.metas:
                await stream.ack(event)


def note_sent(done):
    """Record, per source and partition, the last record of the events just sent (``assembled``)."""
    last = {}
    for assembled in done:
        for event, record, _ in assembled.metas:
            key = (record["source"], event.message.partition)
            if event.message.offset > last.get(key, (-1, None))[0]:
                last[key] = (event.message.offset, event)
    for (source, partition), (offset, event) in last.items():
        with handling(event):   # the table's changelog partition is the record's
            sent = dict(assembled_table[source])
            if offset > sent.get(str(partition), -1):
                sent[str(partition)] = offset
                assembled_table[source] = sent


def event_record(assembled, scored_at):
    """The record of an assembled event: its first record's source, file, line number and times,
    with the text to score, the message (the whole event) and its document's extra fields."""
    first_event, record, stream_name = assembled.first
    record = dict(record)
    text, record["line"], extras = prepare_assembled(assembled, [r["line"] for _, r, _ in assembled.metas],
                                                     stream_name)
    for key, limit in (("original", settings.max_line_bytes), ("stack_trace", settings.max_line_bytes)):
        if len(str(extras.get(key) or "")) > limit:   # the message is cut below; these with it
            extras[key] = str(extras[key])[:limit]
    if len(record["line"]) > settings.max_line_bytes:
        record["line"] = record["line"][:settings.max_line_bytes]
        extras["truncated"] = True
    record.update(extras)
    record["text"] = text
    record["ingested_at"], record["event_time"] = times(record, scored_at)
    return record, first_event.message


def line_number(value):
    """A record's line number as an int that every encoder on the way takes (64 bits)."""
    number = int(value or 0)
    if not -2**63 <= number < 2**63:
        raise OverflowError(f"line_no {str(number)[:30]}... is past 64 bits")
    return number


def chunks(lines):
    chunk, size = [], 0
    for line in lines:
        length = sum(len(str(line.get(key) or "")) for key in ("line", "original", "stack_trace"))
        if chunk and (len(chunk) >= CHUNK_LINES or size + length > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield chunk
