#!/usr/bin/env python3
"""Worker memory and recovery with a large learning state: 1,000 sources x 1,000 patterns.

Writes the learning memory of N sources (each with P patterns and P/4 learned tokens, the
shape a busy source reaches) straight into the memory table's changelog topic, starts one worker
on a fresh data folder, and times the table's recovery; then sends one line per source (every
memory is read, updated and written back) and samples the worker's resident memory (RSS, the
worker and its trainer) every second.  Then SIGKILL, restart, and the recovery time again.
Uses its own topic, app id and index (bench-*), on the local services.
Usage: python scripts/bench_memory.py [--sources 1000] [--patterns 1000]
"""
import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.settings import Settings, changelog_topic, kafka_bootstrap  # noqa: E402
from model.state import SourceMemory  # noqa: E402
from tables.records import MEMORY  # noqa: E402
from tests.streaming_helpers import Worker, es_count, run_cli, wait_for, write_logs  # noqa: E402


def rss_mb(pid, children=False):
    """Resident memory of a process (or of its children), in MB."""
    which = ["--ppid", str(pid)] if children else ["-p", str(pid)]
    out = subprocess.run(["ps", "-o", "rss=", *which], capture_output=True, text=True)
    return sum(int(v) for v in out.stdout.split()) / 1024


def memory_value(i, patterns):
    memory = SourceMemory(patterns={f"{i:04x}{p:08x}": [p % 7 + 1, p] for p in range(patterns)},
                          tokens={f"token-{i}-{t}": [1, t] for t in range(patterns // 4)},
                          last_offset=-1, candidates=patterns)
    return MEMORY.dumps(memory)   # as the worker's memory table stores it


async def fill_changelog(settings, topic, sources, patterns):
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap(settings), max_request_size=8 << 20,
                                linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    size = 0
    try:
        pending = []
        for i in range(sources):
            value = memory_value(i, patterns)
            size += len(value)
            pending.append(await producer.send(topic, value, key=json.dumps(f"log-s{i}").encode()))
            if len(pending) >= 100:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--patterns", type=int, default=1000)
    args = parser.parse_args()
    settings = Settings.from_env()
    tag = str(int(time.time()))
    names = {"topic": f"bench-mem-{tag}", "app_id": f"bench-mem-{tag}", "index": f"bench-mem-{tag}"}
    work = Path(tempfile.mkdtemp(prefix="clogs-bench-mem-"))
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    env = {"CLOGS_TRAINER": "auto", "CLOGS_MEMORY_PATTERNS": str(max(args.patterns, settings.memory_patterns))}
    worker = Worker(names, work / "state", env=env).start()  # declares the app's topics
    worker.stop()
    changelog = changelog_topic(settings.replace(app_id=names["app_id"]), "source-memory")
    size = asyncio.run(fill_changelog(settings, changelog, args.sources, args.patterns))
    print(f"changelog filled: {args.sources} sources x {args.patterns} patterns, {size / 1e6:.1f} MB "
          f"({size / args.sources / 1e3:.1f} kB per source: what one table write of a source costs)")
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            if worker.proc and worker.proc.poll() is None:
                samples.append((rss_mb(worker.proc.pid), rss_mb(worker.proc.pid, children=True)))
            time.sleep(1)

    threading.Thread(target=sample, daemon=True).start()
    try:
        for state in ("fresh", "kill"):
            if state == "kill":
                worker.stop(signal.SIGKILL)
            t0 = time.monotonic()
            worker.start()
            print(f"recovery ({'the whole changelog' if state == 'fresh' else 'after SIGKILL'}): "
                  f"process start to healthy {time.monotonic() - t0:.1f} s")
            if state == "fresh":
                lines = {f"s{i}": [f"2026-11-28T10:00:00Z INFO probe line from source {i}"] for i in range(args.sources)}
                total = write_logs(work / "logs", lines)
                run_cli("ingest", "--base-dir", str(work / "logs"), "--topic", names["topic"])
                wait_for(lambda: es_count(names["index"]) >= total, timeout=900, what="one line per source indexed")
                stats = worker.stats()
                print(f"one line through each of {len(stats)} sources; patterns remembered by the first: "
                      f"{stats['log-s0']['patterns']}")
        time.sleep(5)
    finally:
        stop.set()
        worker.stop(signal.SIGKILL)
        from tests.conftest import remove_leftovers

        remove_leftovers(names)   # its topics (log, internal, changelogs) and indices
    print(f"RSS sampled every second ({len(samples)} samples): worker peak {max(w for w, _ in samples):.0f} MB, "
          f"last {samples[-1][0]:.0f} MB; its trainer process peak {max(t for _, t in samples):.0f} MB")


if __name__ == "__main__":
    main()
