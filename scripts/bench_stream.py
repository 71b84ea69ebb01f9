#!/usr/bin/env python3
"""End-to-end throughput of one worker, and how long a restarted worker takes to recover its table.

Ingests the sixteen Loghub samples (32,000 lines; ../shared/datasets/loghub, else the six in
data/loghub) as sixteen sources through one worker into Elasticsearch, on the local services,
and reports lines/s from the first line sent to the last document indexed.  Then stops the
worker (SIGTERM), starts it again and times until /stats/ answers with every source's count;
then the same after SIGKILL.  Uses its own topic, app id and index (bench-*), removed at the end.
Usage: python scripts/bench_stream.py [--loghub DIR]
"""
import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.streaming_helpers import Worker, es_count, run_cli, wait_for  # noqa: E402
from model.data import split_label  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = ROOT.parent / "shared" / "datasets" / "loghub"
    parser.add_argument("--loghub", default=str(default if default.is_dir() else ROOT / "data" / "loghub"))
    args = parser.parse_args()
    tag = str(int(time.time()))
    names = {"topic": f"bench-logs-{tag}", "app_id": f"bench-clogs-{tag}", "index": f"bench-clogs-{tag}"}
    work = Path(tempfile.mkdtemp(prefix="clogs-bench-"))
    expected = {}
    for path in sorted(Path(args.loghub).glob("*.log")):
        source = path.name.split("_")[0].lower()
        lines = path.read_text(errors="replace").splitlines()
        if source in ("bgl", "thunderbird"):
            lines = [split_label(line)[1] for line in lines]
        lines = [line for line in lines if line.strip()]
        (work / "logs" / f"log-{source}").mkdir(parents=True)
        (work / "logs" / f"log-{source}" / f"{source}.txt").write_text("\n".join(lines) + "\n")
        expected[f"log-{source}"] = len(lines)
    total = sum(expected.values())
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, work / "state", env={"CLOGS_TRAINER": "auto"}).start()  # learning and its trainer on
    try:
        started = time.monotonic()
        run_cli("ingest", "--base-dir", str(work / "logs"), "--topic", names["topic"])
        sent = time.monotonic() - started
        wait_for(lambda: es_count(names["index"]) >= total, timeout=1200, interval=0.25, what="all lines indexed")
        seconds = time.monotonic() - started
        print(f"{total} lines from {len(expected)} sources: ingest {sent:.1f} s, all indexed after {seconds:.1f} s "
              f"= {total / seconds:,.0f} lines/s end to end (one worker, 4 partitions)")

        def counts_match():
            stats = worker.stats()
            return all(stats.get(s, {}).get("count") == n for s, n in expected.items())

        wait_for(counts_match, timeout=120, what="statistics of every source")
        time.sleep(2.5)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            worker.stop(sig)
            t0 = time.monotonic()
            worker.start(wait=False)
            wait_for(counts_match, timeout=300, interval=0.1, what="recovered statistics")
            print(f"after {sig.name}: process start to /stats/ with all {len(expected)} sources recovered: "
                  f"{time.monotonic() - t0:.1f} s")
    finally:
        worker.stop(signal.SIGKILL)
        from agents.elastic import sync_client

        sync_client().indices.delete(index=names["index"], ignore_unavailable=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
