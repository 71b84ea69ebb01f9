#!/usr/bin/env python3
"""End-to-end throughput and latency of the workers, and how long a restarted worker takes to recover.

Ingests the sixteen Loghub samples (32,000 lines; ../shared/datasets/loghub, else the six in
data/loghub) as sixteen sources through the worker(s) into Elasticsearch, on the local services,
with online learning and the worker's trainer on, as a user runs it.

* Throughput: lines / (first line sent -> every document searchable), polled every half second
  with a refresh, so the figure includes up to half a second of polling.
* Latency (with ``--rate``: lines per second, ingest paced): p50 / p99 over the documents of
  ``indexed_at - ingested_at``: from the ingest's send to the sink's bulk request that indexes it
  (the request itself, 0.1-0.5 s, and the index refresh, at most 1 s, come on top before a search sees it).
* Memory: the largest resident set of each worker process (and of its trainer), sampled.
* Recovery (one worker, unless ``--no-recovery``): the worker is stopped (SIGTERM), started again
  and timed until /stats/ answers with every source's count; then the same after SIGKILL.

Uses its own topic, app id and index (bench-*), removed at the end (topics too).  Also prints the
CPU seconds the workers, their trainers, Kafka and Elasticsearch used while the lines flowed.
``--json FILE`` appends the figures as one JSON line (scripts/bench_scaling.py collects them).  ``--profile FILE`` samples the
(first) worker with py-spy (``pip install py-spy``) while the lines flow and prints where its time
went, by part (``profile_summary``).
Usage: python scripts/bench_stream.py [--partitions 4] [--workers 1] [--rate 0] [--no-recovery]
"""
import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import _services_module, remove_leftovers  # noqa: E402
from tests.streaming_helpers import Worker, es_client, es_count, run_cli, wait_for  # noqa: E402
from model.data import split_label  # noqa: E402


def write_sources(loghub, folder):
    """The Loghub samples as log-<source>/<source>.txt (labels stripped); returns {source: lines}."""
    expected = {}
    for path in sorted(Path(loghub).glob("*.log")):
        source = path.name.split("_")[0].lower()
        lines = path.read_text(errors="replace").splitlines()
        if source in ("bgl", "thunderbird"):
            lines = [split_label(line)[1] for line in lines]
        lines = [line for line in lines if line.strip()]
        (folder / f"log-{source}").mkdir(parents=True)
        (folder / f"log-{source}" / f"{source}.txt").write_text("\n".join(lines) + "\n")
        expected[f"log-{source}"] = len(lines)
    return expected


def latency(index, started):
    """(p50, p99) in seconds of indexed_at - ingested_at over the index's documents, and the
    timeline: p50 / p99 of each stamp (ingested, scored, indexed) in seconds after ``started``."""
    from model.eventtime import parse_iso

    es = es_client()
    es.indices.refresh(index=index)
    delays, stamps = [], {"ingested_at": [], "scored_at": [], "indexed_at": []}
    page = es.search(index=index, scroll="2m", size=5000, source=list(stamps))
    while page["hits"]["hits"]:
        for hit in page["hits"]["hits"]:
            doc = hit["_source"]
            delays.append((parse_iso(doc["indexed_at"]) - parse_iso(doc["ingested_at"])).total_seconds())
            for name, values in stamps.items():
                values.append(parse_iso(doc[name]).timestamp() - started)
        page = es.scroll(scroll_id=page["_scroll_id"], scroll="2m")
    es.clear_scroll(scroll_id=page["_scroll_id"])
    timeline = {name: (percentile(values, 0.5), percentile(values, 0.99)) for name, values in stamps.items()}
    return percentile(delays, 0.5), percentile(delays, 0.99), timeline


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


class MemoryWatch:
    """Samples the resident memory of the workers' processes (and their children) every half second."""

    def __init__(self, workers):
        self.workers, self.peak, self.stop = workers, {}, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(0.5):
            for i, worker in enumerate(self.workers):
                for pid, role in processes_of(worker.proc.pid):
                    key = f"worker{i + 1}" + ("-trainer" if role == "trainer" else "")
                    self.peak[key] = max(self.peak.get(key, 0), rss_mb(pid))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def stat_fields(stat):
    """The fields of a /proc/PID/stat file after the command name: state, parent, ... (proc(5))."""
    return stat.read_text().rsplit(")", 1)[1].split()


def processes_of(pid):
    """The worker process and its children (the trainer): [(pid, "worker" | "trainer")]."""
    found = [(pid, "worker")]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat_fields(stat)[1]) != pid:   # the field after the state: the parent
                continue
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        found.append((int(stat.parent.name), "trainer" if b"app.trainer" in cmd else "worker"))
    return found


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = stat_fields(Path(f"/proc/{pid}/stat"))
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_snapshot(workers):
    """CPU seconds so far of the workers (their trainers apart) and of the local Kafka and Elasticsearch."""
    taken = collections.Counter()
    for worker in workers:
        for pid, role in processes_of(worker.proc.pid):
            taken["trainers" if role == "trainer" else "workers"] += cpu_seconds(pid)
    services = _services_module()
    for service in ("kafka", "elasticsearch"):
        pid = services.running_pid(service)
        if pid:   # None: services started elsewhere, not counted
            taken[service] += cpu_seconds(pid)
    return taken


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


PARTS = [   # (part, substrings of a sampled frame's file), the first that matches the innermost frame
    ("model: torch", ("torch/", "model/autoencoder")),
    ("model: masking, scoring bookkeeping", ("model/",)),
    ("JSON (orjson, json, Faust codecs)", ("json", "faust/serializers", "faust/models")),
    ("clogs agents and tables", ("agents/", "app/", "tables/")),
    ("Elasticsearch client, HTTP", ("elasticsearch/", "elastic_transport/", "aiohttp/", "yarl/", "multidict/")),
    ("aiokafka", ("aiokafka/",)),
    ("Faust, mode (streams, tables, RocksDB)", ("faust/", "mode/", "rocksdict")),
    ("asyncio, sockets, selectors", ("asyncio/", "selectors", "socket", "ssl")),
    ("logging", ("logging/",)),
]


def profile_summary(raw_file):
    """Share of the worker's sampled time per part (py-spy raw stacks: "frame;frame;... count")."""
    totals, threads, overall = collections.Counter(), collections.Counter(), 0
    for line in Path(raw_file).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, count = stack.split(";"), int(count)
        overall += count
        threads["model thread" if any("concurrent/futures/thread.py" in f for f in frames) else
                "event loop and others"] += count
        leaf = frames[-1]
        totals[next((part for part, keys in PARTS if any(k in leaf for k in keys)), "other")] += count
    lines = [f"profile of the worker ({overall} samples at 100 Hz; "
             + ", ".join(f"{name} {n / overall:.0%}" for name, n in threads.most_common()) + "):"]
    lines += [f"  {n / overall:6.1%}  {part}" for part, n in totals.most_common()]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = ROOT.parent / "shared" / "datasets" / "loghub"
    parser.add_argument("--loghub", default=str(default if default.is_dir() else ROOT / "data" / "loghub"))
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0, help="ingest at this many lines/s (0 = as fast as it goes)")
    parser.add_argument("--no-recovery", action="store_true", help="skip the restart timings")
    parser.add_argument("--json", help="append the figures to this file as one JSON line")
    parser.add_argument("--profile", help="record the worker with py-spy into this file (raw stacks) and summarise")
    args = parser.parse_args()
    tag = str(int(time.time()))
    names = {"topic": f"bench-logs-{tag}", "app_id": f"bench-clogs-{tag}", "index": f"bench-clogs-{tag}"}
    work = Path(tempfile.mkdtemp(prefix="clogs-bench-"))
    expected = write_sources(args.loghub, work / "logs")
    total = sum(expected.values())
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", str(args.partitions))
    workers = [Worker(names, work / f"state{i}", env={"CLOGS_TRAINER": "auto"}, partitions=args.partitions)
               for i in range(args.workers)]   # learning and its trainer on, as users run it
    for worker in workers:
        worker.start(wait=False)
    for worker in workers:
        wait_for(worker.healthy, timeout=120, what=f"worker on port {worker.port}")
    figures = {"lines": total, "sources": len(expected), "partitions": args.partitions, "workers": args.workers,
               "rate": args.rate}
    try:
        time.sleep(3 if args.workers > 1 else 0)   # let a second worker's rebalance settle first
        with MemoryWatch(workers) as memory:
            spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            spy = subprocess.Popen([spy_bin, "record", "--pid", str(workers[0].proc.pid), "--rate", "100",
                                    "--nonblocking", "--format", "raw", "-o", args.profile],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if args.profile else None
            cpu_before = cpu_snapshot(workers)
            started = time.time()
            ingest = ["ingest", "--base-dir", str(work / "logs"), "--topic", names["topic"]]
            run_cli(*ingest, *(["--rate", str(args.rate)] if args.rate else []), timeout=1800)
            sent = time.time() - started
            wait_for(lambda: es_count(names["index"]) >= total, timeout=1200, interval=0.5, what="all lines indexed")
            seconds = time.time() - started
            cpu = {k: round(v - cpu_before.get(k, 0.0), 1) for k, v in cpu_snapshot(workers).items()}
            if spy:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
        p50, p99, timeline = latency(names["index"], started)
        figures.update(ingest_s=round(sent, 2), seconds=round(seconds, 2), lines_per_s=round(total / seconds),
                       latency_p50_s=round(p50, 3), latency_p99_s=round(p99, 3),
                       rss_mb={k: round(v) for k, v in sorted(memory.peak.items())}, cpu_s=cpu)
        print(f"{total} lines from {len(expected)} sources, {args.partitions} partitions, {args.workers} worker(s)"
              f"{f', ingest paced at {args.rate:,.0f} lines/s' if args.rate else ''}: ingest {sent:.1f} s, "
              f"all indexed after {seconds:.1f} s = {total / seconds:,.0f} lines/s end to end")
        print(f"latency ingest -> sink's bulk request: p50 {p50:.2f} s, p99 {p99:.2f} s")
        print("timeline, seconds after the first send (p50 / p99 of the lines): " + ", ".join(
            f"{name[:-3]} {a:.1f} / {b:.1f}" for name, (a, b) in timeline.items()))
        print(f"CPU seconds while the lines flowed ({os.cpu_count()} cores x {seconds:.1f} s = "
              f"{os.cpu_count() * seconds:.1f}): " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
              + f" (ingest and this script not counted)")
        print("largest resident memory: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(memory.peak.items())))

        def counts_match():
            merged = {}
            for worker in workers:
                merged.update({s: v for s, v in worker.stats().items() if isinstance(v, dict)})
            return all(merged.get(s, {}).get("count") == n for s, n in expected.items())

        if args.workers == 1 and not args.no_recovery:
            worker = workers[0]
            wait_for(counts_match, timeout=120, what="statistics of every source")
            time.sleep(2.5)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                worker.stop(sig)
                t0 = time.monotonic()
                worker.start(wait=False)
                wait_for(counts_match, timeout=300, interval=0.1, what="recovered statistics")
                recovered = time.monotonic() - t0
                figures[f"recovery_{sig.name.lower()}_s"] = round(recovered, 1)
                print(f"after {sig.name}: process start to /stats/ with all {len(expected)} sources recovered: "
                      f"{recovered:.1f} s")
        if args.profile:
            print(profile_summary(args.profile))
        if args.json:
            with open(args.json, "a") as out:
                out.write(json.dumps(figures) + "\n")
    finally:
        for worker in workers:
            worker.stop(signal.SIGKILL)
        remove_leftovers(names)   # the topics (log, internal, changelogs) and the index
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
