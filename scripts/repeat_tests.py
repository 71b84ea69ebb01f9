#!/usr/bin/env python3
"""Run the same tests N times, each in a fresh pytest process, and count passes and failures.

    .venv/bin/python scripts/repeat_tests.py                      # tests/test_streaming.py tests/test_services.py, 30 times
    .venv/bin/python scripts/repeat_tests.py -n 5 tests/test_streaming.py::test_two_workers_share_partitions_and_survive_losing_one
    .venv/bin/python scripts/repeat_tests.py -n 10 tests/test_streaming.py -- -k two_workers -x

One line per run (PASS/FAIL, seconds, pytest's summary, the failed test ids), then the counts.
A failing run keeps its whole pytest output (``run-NNN.log``) and its pytest temporary folder
(``run-NNN/``: the workers' logs and table state) under ``--out``; a passing run's are deleted.
It starts no services itself: the tests' ``services`` fixture reuses running ones or starts
(and afterwards stops) them, as in ``make test``.  Exit status 0 only if every run passed.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = ["tests/test_streaming.py", "tests/test_services.py"]


def run_once(index, args, targets, extra):
    log_path = args.out / f"run-{index:03d}.log"
    basetemp = args.out / f"run-{index:03d}"
    cmd = [args.python, "-m", "pytest", *targets, "-ra", "-p", "no:cacheprovider", f"--basetemp={basetemp}", *extra]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        log.write((" ".join(cmd) + "\n\n").encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # pytest and the workers it started
            proc.wait()
            rc = None
    seconds = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    summary = re.findall(r"^=+ (.*? in [\d.]+s.*?) =+$", text, re.M)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)
    ok = rc == 0
    if ok and not args.keep_all:
        log_path.unlink()
        shutil.rmtree(basetemp, ignore_errors=True)
    what = summary[-1] if summary else ("timed out" if rc is None else f"exit {rc}")
    if rc is None:
        what = f"killed after {args.timeout} s"
    line = f"run {index}/{args.n}: {'PASS' if ok else 'FAIL'} in {seconds:.0f} s ({what})"
    if failed:
        line += " " + " ".join(failed)
    if not ok:
        line += f" -> {log_path}"
    print(line, flush=True)
    return ok


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:  # everything after -- goes to pytest as it is
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help=f"pytest node ids or files (default: {' '.join(DEFAULT_TARGETS)})")
    parser.add_argument("-n", type=int, default=30, help="how many runs (default 30)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for failing runs' output (default: out/repeat-<date-time>)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed and counted failed")
    parser.add_argument("--stop-on-fail", action="store_true", help="stop after the first failing run")
    parser.add_argument("--keep-all", action="store_true", help="keep passing runs' output too")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs pytest")
    args = parser.parse_args(argv)
    targets = args.targets or DEFAULT_TARGETS
    args.out = (args.out or ROOT / "out" / f"repeat-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"repeating {' '.join(targets + extra)} {args.n} times; failing runs' output goes to {args.out}", flush=True)
    passed = failed = streak = best = 0
    started = time.monotonic()
    for index in range(1, args.n + 1):
        if run_once(index, args, targets, extra):
            passed += 1
            streak += 1
            best = max(best, streak)
        else:
            failed += 1
            streak = 0
            if args.stop_on_fail:
                break
    print(f"{passed} passed, {failed} failed of {passed + failed} runs ({best} consecutive passes at most) "
          f"in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    if not failed and not any(args.out.iterdir()):
        args.out.rmdir()
    return 0 if failed == 0 and passed == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
