"""The scoring agent: log topic -> micro-batches -> ``model.Scorer`` -> scored topic (key = source).

Lines are forwarded per source, in offset order, in chunks of at most ``CHUNK_LINES`` lines
and ``CHUNK_BYTES`` of text, so that no message outgrows the broker's limit.
The model runs in the model service's single thread (``app.model_service``), so the event loop
keeps heartbeats and commits going while torch works; each line records the ``model_version``
that scored it.
"""
from datetime import datetime, timezone
from functools import lru_cache

from agents import deadletter
from app.faust_app import app, log_topic, models, scored_topic, settings
from app.inputs.records import parse_log_value, record_options
from model.eventtime import checked_zone, event_time, iso, parse_iso, stated_time
from model.online import scored_line
from model.structured import prepare
from tables.records import ScoredBatch

CHUNK_LINES = 512
CHUNK_BYTES = 1_000_000


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


@app.agent(log_topic, concurrency=1)
async def score_lines(stream):
    checked_zone(settings.timezone)   # an unknown CLOGS_TIMEZONE stops the agent at once, named
    options = record_options(settings)
    async for events in stream.take_events(settings.batch_size, within=settings.batch_timeout):
        good = []
        scored_at = now()
        for event in events:
            try:   # one odd record must never take its batch down with it (an agent crash acks it all)
                record, reason, detail = parse_log_value(event.value, event.message.headers, event.message.key,
                                                         **options)
                if record is not None:
                    text, record["line"], extras = prepare(record["line"])   # structured lines, wrappers
                    record.update(extras)
                    record["text"] = text
                    record["ingested_at"], record["event_time"] = times(record, scored_at)
                    record["line_no"] = line_number(record["line_no"])
            except (ValueError, TypeError, OverflowError) as exc:
                record, reason, detail = None, "not_object", f"unusable field: {type(exc).__name__}: {exc}"[:500]
            if record is None:
                await deadletter.send(reason, detail, message=event.message, value=event.value)
            else:
                good.append((record, event.message))
        if not good:
            continue
        model_version, results = await models.score([r["text"] for r, _ in good])
        by_source = {}
        for (record, message), result in zip(good, results):
            by_source.setdefault(record["source"], []).append(scored_line(
                record, result, model_version, message.topic, message.partition, message.offset, scored_at))
        for source, lines in by_source.items():
            for chunk in chunks(lines):
                await scored_topic.send(key=source, value=ScoredBatch(source=source, lines=chunk))


def line_number(value):
    """A record's line number as an int that every encoder on the way takes (64 bits)."""
    number = int(value or 0)
    if not -2**63 <= number < 2**63:
        raise OverflowError(f"line_no {str(number)[:30]}... is past 64 bits")
    return number


def chunks(lines):
    chunk, size = [], 0
    for line in lines:
        if chunk and (len(chunk) >= CHUNK_LINES or size + len(line["line"]) > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line["line"])
    if chunk:
        yield chunk
