"""Ingest: files under a base folder -> one Kafka record per line, keyed by source.

Source = the name of the ``log-*`` folder that holds the file.  Files are read line by
line (never whole), decoded as UTF-8 with replacement.  Empty lines and lines over
CLOGS_MAX_LINE_BYTES go straight to the dead-letter topic with their reason, so nothing is
lost silently; everything else goes to the log topic.
"""
import asyncio
import json
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from agents.parsing import dead_letter
from app import settings
from app.kafka_admin import FIX, BrokerUnreachable


def find_files(base_dir, pattern):
    base = Path(base_dir)
    if not base.is_dir():
        raise FileNotFoundError(f"--base-dir {base} is not a folder")
    files = sorted(p for p in base.glob(pattern) if p.is_file())
    out = []
    for path in files:
        parts = path.relative_to(base).parts
        source = next((p for p in parts[:-1] if p.startswith("log-")), parts[0] if len(parts) > 1 else base.name)
        out.append((source, path))
    return out


def dead_letter_doc(reason, detail, source, file, line_no, raw):
    return dead_letter(reason, detail, key=source, value=raw, size=len(raw)) | {"file": file, "line_no": line_no}


async def ingest(base_dir, pattern="log-*/**/*.txt", delay=0.0, batch=1000, topic=None, broker=None,
                 progress=True):
    """Send every line; returns a summary dict (lines, bytes, seconds, rate, dead_lettered, per source)."""
    topic = topic or settings.TOPIC
    deadletter_topic = f"{topic}-deadletter"
    files = find_files(base_dir, pattern)
    if not files:
        raise FileNotFoundError(f"no file matches {pattern!r} under {base_dir}")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap(broker), linger_ms=5,
                                max_batch_size=1 << 20, max_request_size=4_000_000, acks="all",
                                request_timeout_ms=30000)
    try:
        await asyncio.wait_for(producer.start(), 15)
    except Exception as exc:  # aiokafka raises several kinds when no broker answers
        await producer.stop()
        raise BrokerUnreachable(f"cannot reach Kafka at {settings.kafka_bootstrap(broker)} "
                                f"({type(exc).__name__}); {FIX}") from None
    host = socket.gethostname()
    summary = {"lines": 0, "bytes": 0, "dead_lettered": {}, "sources": {}, "files": len(files)}
    pending = []
    started = time.monotonic()
    total_bytes = sum(p.stat().st_size for _, p in files)
    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="ingest", disable=not progress)
    try:
        for source, path in files:
            rel = str(path.relative_to(base_dir))
            with open(path, "rb") as handle:
                for line_no, raw in enumerate(handle, 1):
                    bar.update(len(raw))
                    summary["bytes"] += len(raw)
                    raw = raw.rstrip(b"\r\n")
                    if len(raw) > settings.MAX_LINE_BYTES or not raw.strip():
                        reason = "too_large" if raw.strip() else "empty_line"
                        detail = f"{len(raw)} bytes > {settings.MAX_LINE_BYTES}" if raw.strip() else "empty line"
                        doc = dead_letter_doc(reason, detail, source, rel, line_no, raw)
                        pending.append(await producer.send(deadletter_topic, json.dumps(doc).encode(),
                                                           key=source.encode()))
                        summary["dead_lettered"][reason] = summary["dead_lettered"].get(reason, 0) + 1
                        continue
                    record = {"source": source, "file": rel, "line_no": line_no,
                              "line": raw.decode("utf-8", errors="replace"),
                              "ingested_at": datetime.now(timezone.utc).isoformat(), "host": host}
                    pending.append(await producer.send(topic, json.dumps(record).encode(), key=source.encode()))
                    summary["lines"] += 1
                    summary["sources"][source] = summary["sources"].get(source, 0) + 1
                    if len(pending) >= batch:
                        await asyncio.gather(*pending)
                        pending.clear()
                    if delay:
                        await asyncio.sleep(delay)
        if pending:
            await asyncio.gather(*pending)
        await producer.flush()
    finally:
        bar.close()
        await producer.stop()
    summary["seconds"] = time.monotonic() - started
    summary["rate"] = summary["lines"] / max(summary["seconds"], 1e-9)
    return summary
