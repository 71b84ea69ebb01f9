"""Ingest: log lines -> one Kafka record per line, keyed by source.

Three inputs share one sending path (``LineSender``: record building, dead-lettering, batching):

- ``ingest()``: every line of the files under a base folder, once.  Source = the name of the
  ``log-*`` folder that holds the file.  Files are read line by line (never whole).
- ``ingest_stream()``: the lines of a stream (``clogs ingest -``: stdin), under one source.
- ``ingest_follow()``: the files under a base folder followed as ``tail -F`` does (app/inputs/follow.py),
  their positions saved once the broker has acknowledged the lines.

Lines are decoded as UTF-8 with replacement; empty lines and lines over CLOGS_MAX_LINE_BYTES go to
the dead-letter topic with their reason.
"""
import asyncio
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from app import jsonio
from app.inputs.follow import Follower, default_pattern, load_state, matching_files, source_of
from app.inputs.records import dead_letter
from app.kafka.admin import start_client
from app.kafka.security import client_options
from app.outputs.redaction import Redactor
from app.settings import ingest_state_file, kafka_bootstrap, topics


def find_files(base_dir, pattern):
    base = Path(base_dir)
    if not base.is_dir():
        raise FileNotFoundError(f"--base-dir {base} is not a folder")
    return [(source_of(base, path), path) for path, _ in matching_files(base, pattern)]


async def start_producer(settings):
    """A started producer, or BrokerUnreachable naming the fix (fail fast: 15 s)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap(settings), linger_ms=5,
                                max_batch_size=1 << 20, max_request_size=4_000_000, acks="all",
                                request_timeout_ms=30000, **client_options(settings))
    return await start_client(settings, producer)


class LineSender:
    """Turns raw lines into log-topic records (or dead letters) and keeps the summary.

    ``send()`` waits for the broker once ``batch`` records are in flight; ``drain()`` waits for
    all of them: after it returns, every line sent so far is acknowledged."""

    def __init__(self, producer, settings, batch=1000, delay=0.0):
        self.producer = producer
        names = topics(settings)
        self.topic, self.deadletter_topic = names.log, names.deadletter
        self.max_bytes, self.redactor = settings.max_line_bytes, Redactor.from_settings(settings)
        self.batch, self.delay = batch, delay
        self.paced_from, self.paced = None, 0   # with a delay: one line per delay on average from the first
        self.host = socket.gethostname()
        self.pending = []
        self.summary = {"lines": 0, "bytes": 0, "dead_lettered": {}, "sources": {}, "files": 0}

    async def send(self, source, file, line_no, raw):
        """One line as read (its line end, if any, is dropped)."""
        summary = self.summary
        summary["bytes"] += len(raw)
        raw = raw.rstrip(b"\r\n")
        if len(raw) > self.max_bytes or not raw.strip():
            reason = "too_large" if raw.strip() else "empty_line"
            detail = f"{len(raw)} bytes > {self.max_bytes}" if raw.strip() else "empty line"
            doc = dead_letter(reason, detail, self.redactor, key=source, value=raw, size=len(raw)) | \
                {"file": file, "line_no": line_no}
            self.pending.append(await self.producer.send(self.deadletter_topic, jsonio.dumps(doc),
                                                         key=source.encode()))
            summary["dead_lettered"][reason] = summary["dead_lettered"].get(reason, 0) + 1
        else:
            record = {"source": source, "file": file, "line_no": line_no,
                      "line": raw.decode("utf-8", errors="replace"),
                      "ingested_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "host": self.host}
            self.pending.append(await self.producer.send(self.topic, jsonio.dumps(record),
                                                         key=source.encode()))
            summary["lines"] += 1
            summary["sources"][source] = summary["sources"].get(source, 0) + 1
        if len(self.pending) >= self.batch:
            await self.drain()
        if self.delay:   # paced on a schedule, so a delay of 1/N s gives N lines/s (--rate), however short
            self.paced += 1
            self.paced_from = self.paced_from or time.monotonic()
            wait = self.paced_from + self.paced * self.delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def drain(self):
        if self.pending:
            await asyncio.gather(*self.pending)
            self.pending.clear()

    async def finish(self):
        await self.drain()
        await self.producer.flush()


def _finished(summary, started):
    summary["seconds"] = time.monotonic() - started
    summary["rate"] = summary["lines"] / max(summary["seconds"], 1e-9)
    return summary


async def ingest(settings, base_dir, pattern=None, delay=0.0, batch=1000, progress=True):
    """Send every line; returns a summary dict (lines, bytes, seconds, rate, dead_lettered, per source)."""
    files = find_files(base_dir, pattern)
    if not files:
        raise FileNotFoundError(f"no file matches {pattern or default_pattern(base_dir)!r} under {base_dir}")
    producer = await start_producer(settings)
    sender = LineSender(producer, settings, batch, delay)
    sender.summary["files"] = len(files)
    started = time.monotonic()
    total_bytes = sum(p.stat().st_size for _, p in files)
    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="ingest", disable=not progress)
    try:
        for source, path in files:
            rel = str(path.relative_to(base_dir))
            with open(path, "rb") as handle:
                for line_no, raw in enumerate(handle, 1):
                    bar.update(len(raw))
                    await sender.send(source, rel, line_no, raw)
        await sender.finish()
    finally:
        bar.close()
        await producer.stop()
    return _finished(sender.summary, started)


async def ingest_stream(settings, stream, source="stdin", delay=0.0, batch=1000, file="-", stop=None):
    """Send every line of a binary stream (``sys.stdin.buffer``) under ``source`` until its end
    (or ``stop``, an asyncio.Event, is set); a last line without a newline is sent too.

    The stream is read in a daemon thread (a blocked read never holds up the exit), at most
    ``batch`` lines ahead of the sending."""
    producer = await start_producer(settings)
    sender = LineSender(producer, settings, batch, delay)
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(maxsize=max(1, batch))

    def reader():
        try:
            for raw in iter(stream.readline, b""):
                asyncio.run_coroutine_threadsafe(queue.put(raw), loop).result()
        except Exception:  # the loop is gone (stopped), or the stream broke: end of input either way
            pass
        finally:
            try:
                asyncio.run_coroutine_threadsafe(queue.put(None), loop)   # the end, once there is room
            except RuntimeError:
                pass

    threading.Thread(target=reader, name="clogs-ingest-stdin", daemon=True).start()
    try:
        line_no = 0
        while True:
            get = asyncio.ensure_future(queue.get())
            waits = {get} if stop is None else {get, asyncio.ensure_future(stop.wait())}
            done, rest = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in rest:
                task.cancel()
            if get not in done:
                break   # stopped
            raw = get.result()
            if raw is None:
                break   # end of input
            line_no += 1
            await sender.send(source, file, line_no, raw)
        await sender.finish()
    finally:
        await producer.stop()
    sender.summary["files"] = 1
    return _finished(sender.summary, started)


async def ingest_follow(settings, base_dir, pattern=None, state_file=None, follow_for=None, stop=None,
                        delay=0.0, batch=1000, from_end=False, interval=0.25, rotated_grace=5.0):
    """Follow the matching files until ``stop`` (an asyncio.Event) is set or ``follow_for`` seconds
    have passed; after each poll the lines are acknowledged, then their positions saved to
    ``state_file`` (atomically), so that a restart resumes where this run stopped."""
    state_file = state_file or ingest_state_file(settings)
    follower = Follower(base_dir, pattern, load_state(state_file), from_end=from_end, rotated_grace=rotated_grace,
                        max_line=settings.max_line_bytes)
    producer = await start_producer(settings)
    sender = LineSender(producer, settings, batch, delay)
    started = time.monotonic()
    deadline = None if follow_for is None else started + follow_for
    seen = set()
    try:
        while not (stop is not None and stop.is_set()) and (deadline is None or time.monotonic() < deadline):
            lines = follower.poll()
            for line in lines:
                seen.add(line.path)
                await sender.send(line.source, str(Path(line.path).relative_to(base_dir)), line.line_no, line.raw)
            await sender.drain()             # acknowledged: now the positions may be saved
            for line in lines:
                follower.commit(line.position)
            if lines or not Path(state_file).exists():
                follower.save(state_file)
            if not lines:
                timeout = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
                if stop is None:
                    await asyncio.sleep(timeout)
                else:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout)
                    except asyncio.TimeoutError:
                        pass
        await sender.finish()
        follower.save(state_file)
    finally:
        follower.close()
        await producer.stop()
    sender.summary["files"] = len(seen)
    sender.summary["state_file"] = state_file
    return _finished(sender.summary, started)
