#!/usr/bin/env python3
"""How fast bare Faust reads the log topic on this machine: the ceiling of one worker.

Puts the sixteen Loghub samples (32,000 records, as `clogs ingest` writes them) into a topic of
their own, then starts a Faust worker whose only agent takes them in batches of 1,024
(`take_events`, as the scoring agent does) and decodes each record's JSON -- nothing else: no
model, no tables, no output.  Prints the records per second from its first batch to its last and
the CPU seconds the process used meanwhile (both from its first batch on, so start-up and
the time Kafka took to answer the first fetch are left out).  Whatever the clogs worker does per line
comes on top of this, on the same interpreter.  Uses the local services; removes its topic.
With clogs' Faust fixes (app/faust_fixes.py) loaded, as the worker has them; ``--without-fixes``
measures plain Faust 0.15.3.
Usage: python scripts/bench_faust_floor.py [--loghub DIR] [--partitions 4] [--without-fixes]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TAKE = 1024


def worker_app(topic, expected, port, fixes):
    """The bare Faust app (run in the child process)."""
    import faust
    import orjson

    from app.settings import Settings
    settings = Settings.from_env()
    if fixes:
        from app import faust_fixes

        faust_fixes.apply(settings.fetch_max_wait)   # as a clogs worker does

    app = faust.App(f"{topic}-app", broker=settings.broker, store="memory://", key_serializer="raw",
                    value_serializer="raw", consumer_auto_offset_reset="earliest", web_port=port, autodiscover=False)
    source = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    seen = {"n": 0, "first": None, "cpu": 0.0}

    @app.agent(source)
    async def read(stream):
        async for events in stream.take_events(TAKE, within=0.2):
            if seen["first"] is None:
                cpu = os.times()
                seen["first"], seen["cpu"] = time.time(), cpu.user + cpu.system
            for event in events:
                orjson.loads(event.value)
            seen["n"] += len(events)
            if seen["n"] >= expected:
                seconds, cpu = time.time() - seen["first"], os.times()
                print(f"FLOOR {seen['n']} {seconds:.3f} {cpu.user + cpu.system - seen['cpu']:.2f}", flush=True)
                os._exit(0)

    return app


def main():
    default = ROOT.parent / "shared" / "datasets" / "loghub"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loghub", default=str(default if default.is_dir() else ROOT / "data" / "loghub"))
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--without-fixes", action="store_true",
                        help="plain Faust 0.15.3, without clogs' app/faust_fixes.py (which the worker runs)")
    parser.add_argument("--child", nargs=4, metavar=("TOPIC", "EXPECTED", "PORT", "FIXES"), help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        topic, expected, port, fixes = args.child
        sys.argv = [sys.argv[0], *rest]
        worker_app(topic, int(expected), int(port), fixes == "1").main()
        return

    from scripts.bench_stream import write_sources
    from tests.conftest import remove_leftovers
    from tests.streaming_helpers import free_port, run_cli

    tag = str(int(time.time()))
    names = {"topic": f"bench-floor-{tag}", "app_id": f"bench-floor-{tag}", "index": f"bench-floor-{tag}"}
    work = Path(tempfile.mkdtemp(prefix="clogs-floor-"))
    try:
        total = sum(write_sources(args.loghub, work / "logs").values())
        run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", str(args.partitions))
        run_cli("ingest", "--base-dir", str(work / "logs"), "--topic", names["topic"])   # all in Kafka first
        out = subprocess.run([sys.executable, __file__, "--child", names["topic"], str(total), str(free_port()),
                              "0" if args.without_fixes else "1", "worker", "-l", "warn"],
                             cwd=work, capture_output=True, text=True, timeout=600)
        found = [line.split("FLOOR ", 1)[1].split() for line in (out.stdout + out.stderr).splitlines() if "FLOOR " in line]
        if not found:
            raise SystemExit(f"the bare worker did not finish:\n{(out.stdout + out.stderr)[-3000:]}")
        n, seconds, cpu = int(found[-1][0]), float(found[-1][1]), float(found[-1][2])
        plain = " (no clogs fixes)" if args.without_fixes else ""
        print(f"bare Faust{plain} read {n} records ({args.partitions} partitions, take_events({TAKE}), JSON decoded) in "
              f"{seconds:.2f} s from its first batch = {n / seconds:,.0f} records/s, using {cpu:.2f} CPU s meanwhile "
              f"= {cpu / n * 1e6:.0f} us a record")
    finally:
        remove_leftovers(names)


if __name__ == "__main__":
    main()
