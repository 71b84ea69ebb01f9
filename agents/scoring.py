"""The scoring agent: log topic -> micro-batches -> ``model.Scorer`` -> scored topic (key = source).

Lines are forwarded per source, in offset order, in chunks of at most ``CHUNK_LINES`` lines
and ``CHUNK_BYTES`` of text, so that no message outgrows the broker's limit.
The model runs in a single worker thread (``run_in_executor``), so the event loop keeps
heartbeats and commits going while torch works.  The scorer is loaded when the worker
imports this module: a missing or corrupt checkpoint stops the worker at once with a
message that names the file and the fix.
"""
import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from agents import deadletter
from agents.parsing import parse_log_value
from app import settings
from app.faust_app import app, log_topic, scored_topic
from model import CheckpointError, Scorer
from tables.records import ScoredBatch

try:
    scorer = Scorer.from_checkpoint(settings.CHECKPOINT_DIR, device=settings.DEVICE, threads=settings.TORCH_THREADS)
except CheckpointError as exc:
    sys.exit(f"clogs worker: {exc}")

executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clogs-scorer")
CHUNK_LINES = 512
CHUNK_BYTES = 1_000_000


def now():
    return datetime.now(timezone.utc).isoformat()


@app.agent(log_topic, concurrency=1)
async def score_lines(stream):
    loop = asyncio.get_running_loop()
    async for events in stream.take_events(settings.BATCH_SIZE, within=settings.BATCH_TIMEOUT):
        good = []
        for event in events:
            record, reason, detail = parse_log_value(event.value)
            if record is None:
                await deadletter.send(reason, detail, message=event.message, value=event.value)
            else:
                good.append((record, event.message))
        if not good:
            continue
        results = await loop.run_in_executor(executor, scorer.score_batch, [r["line"] for r, _ in good])
        scored_at = now()
        by_source = {}
        for (record, message), result in zip(good, results):
            by_source.setdefault(record["source"], []).append({
                "source": record["source"], "file": str(record["file"]), "line_no": int(record["line_no"] or 0),
                "line": record["line"], "ingested_at": record["ingested_at"] or scored_at, "host": str(record["host"]),
                "anomaly_score": result.score, "unknown_tokens": result.unknown, "top_tokens": result.top_tokens,
                "model_version": scorer.model_version, "kafka_topic": message.topic,
                "kafka_partition": message.partition, "kafka_offset": message.offset, "scored_at": scored_at})
        for source, lines in by_source.items():
            for chunk in chunks(lines):
                await scored_topic.send(key=source, value=ScoredBatch(source=source, lines=chunk))


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
