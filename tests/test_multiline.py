"""Multi-line events (model/multiline.py, model/traces.py, model/events.py): each recognizer on the
output a real runtime wrote -- a JVM, CPython, Go and Node.js program that raises (tests/data/traces)
-- the container runtimes' wrappers with partial lines, users' Filebeat-style rules, the quiet
timeout, max_lines, and the Loghub logs left line by line."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model.events import prepare_event, read_events
from model.multiline import Assembler, Rule, assemble, rules_from
from model.traces import read_trace

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "tests" / "data" / "traces"
LOGHUB = ROOT.parent / "shared" / "datasets" / "loghub"
JUL_FORMAT = "%1$tFT%1$tT.%1$tL %4$s %3$s - %5$s%6$s%n"


def events_of(lines, **options):
    return list(read_events(((n, line, None) for n, line in enumerate(lines, 1)), Assembler(**options)))


def run(args, cwd=TRACES, ok=(0,), env=None):
    if shutil.which(args[0]) is None:
        pytest.skip(f"no {args[0]} on PATH")
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode in ok, result.stderr
    return (result.stdout + result.stderr).splitlines()


def with_trace(events):
    return [e for e in events if "error_type" in e["extras"]]


def test_a_jvm_s_exceptions_are_one_event_each_keyed_by_type_and_call_site():
    lines = run(["java", f"-Djava.util.logging.SimpleFormatter.format={JUL_FORMAT}", "Shop.java", "10"])
    events = events_of(lines)
    assert len(events) == 25   # 10 received, 8 priced, 2 NPEs, a wrapped exception, another NPE, 1 line, 1 uncaught, 1
    traces = with_trace(events)
    assert [e["extras"]["error_type"] for e in traces] == ["java.lang.NullPointerException"] * 2 + [
        "java.lang.IllegalStateException", "java.lang.NullPointerException", "java.lang.UnsupportedOperationException"]
    npe_a, npe_a2, wrapped, npe_b, uncaught = traces
    assert npe_a["extras"]["pattern"] == npe_a2["extras"]["pattern"] != npe_b["extras"]["pattern"]
    assert npe_a["extras"]["call_site"] == "Shop.priceOf (Shop.java:17)"
    assert npe_b["extras"]["call_site"] == "Shop.discountOf (Shop.java:22)"
    assert lines[npe_a["line_no"] - 1].endswith("pricing order 1000 failed") and npe_a["lines"] == 11
    assert npe_a["line"].split("\n")[1].startswith("java.lang.NullPointerException: Cannot invoke")
    assert "Caused by: java.net.ConnectException" in wrapped["line"] and wrapped["line"].endswith("... 8 more")
    assert wrapped["extras"]["error"] == "payment backend unavailable"
    assert uncaught["line"].startswith('Exception in thread "refund-worker" java.lang.UnsupportedOperationException')
    # the model reads what failed, not the frames
    assert "SEVERE" in npe_a["text"] and "NullPointerException" in npe_a["text"] and "\tat" not in npe_a["text"]
    assert sum(e["lines"] for e in events) == len([line for line in lines if line.strip()])


def test_python_s_tracebacks_chained_ones_and_one_inside_a_json_line():
    lines = run([sys.executable, "shop.py", "10"], ok=(1,))
    events = events_of(lines)
    traces = with_trace(events)
    types = [e["extras"]["error_type"] for e in traces]
    assert types == ["ZeroDivisionError", "ZeroDivisionError", "RuntimeError", "ValueError", "ZeroDivisionError",
                     "ValueError"]
    logged, _, chained, during, in_json, uncaught = traces
    assert logged["line"].splitlines()[1] == "Traceback (most recent call last):"
    assert logged["line"].endswith("ZeroDivisionError: integer division or modulo by zero")
    assert "The above exception was the direct cause of the following exception:" in chained["line"]
    assert chained["extras"]["error"] == "payment backend unavailable for order 2000"
    assert "During handling of the above exception, another exception occurred:" in during["line"]
    # a JSON line (python-json-logger's shape) with its traceback in exc_info: the same call site
    assert in_json["lines"] == 1 and in_json["line"] == "pricing order 2002 failed"
    assert in_json["extras"]["pattern"] == logged["extras"]["pattern"]
    assert in_json["extras"]["stack_trace"].startswith("Traceback") and in_json["extras"]["logger"] == "shop.json"
    assert uncaught["line"].startswith("Traceback") and uncaught["lines"] == 15
    assert uncaught["extras"]["call_site"].startswith("refund (") and uncaught["extras"]["error_type"] == "ValueError"


def test_a_go_panic_and_its_goroutine_trace_are_one_event():
    lines = run(["go", "run", "."], cwd=TRACES / "gopanic", ok=(1,), env={**os.environ, "GOTOOLCHAIN": "local"})
    events = events_of(lines)
    panic = events[-1]
    assert panic["line"].startswith("panic: runtime error: index out of range [4] with length 2")
    assert "goroutine 1 [running]:" in panic["line"] and panic["line"].endswith("exit status 2")
    assert panic["extras"]["error_type"] == "panic" and panic["extras"]["call_site"].startswith("main.pick (")
    assert [e["lines"] for e in events[:-1]] == [1] * (len(events) - 1)


def test_node_s_logged_and_uncaught_errors_are_one_event_each():
    lines = run(["node", "shop.js"], ok=(1,))
    events = events_of(lines)
    traces = with_trace(events)
    assert len(traces) == 2
    logged, uncaught = traces
    assert logged["line"].splitlines()[1].startswith("TypeError: Cannot read properties of undefined")
    assert logged["extras"]["call_site"].startswith("priceOf (") and logged["extras"]["error_type"] == "TypeError"
    assert uncaught["line"].endswith("Node.js " + run(["node", "--version"])[0])   # caret, error, stack, version
    assert uncaught["extras"]["pattern"] == logged["extras"]["pattern"]   # one call site
    assert events[-1] is uncaught


def test_dotnet_exceptions_with_inner_exceptions_are_one_event():
    # No .NET runtime on this machine: the shape .NET 8 prints for an unhandled exception.
    lines = ["info: Shop[0] order 7 received",
             "Unhandled exception. System.InvalidOperationException: pricing failed",
             " ---> System.NullReferenceException: Object reference not set to an instance of an object.",
             "   at Shop.Pricing.PriceOf(String id) in /src/Shop/Pricing.cs:line 17",
             "   --- End of inner exception stack trace ---",
             "   at Shop.Pricing.Quote(String id) in /src/Shop/Pricing.cs:line 25",
             "   at Shop.Program.Main(String[] args) in /src/Shop/Program.cs:line 9",
             "info: Shop[0] order 8 received"]
    events = events_of(lines)
    assert [e["lines"] for e in events] == [1, 6, 1]
    trace = events[1]["extras"]
    assert trace["error_type"] == "System.InvalidOperationException" and trace["error"] == "pricing failed"
    assert trace["call_site"] == "Shop.Pricing.PriceOf (/src/Shop/Pricing.cs:17)"


def test_indented_continuations_join_the_line_above_them():
    postgres = ["2026-12-07 10:00:00.000 UTC [811] LOG:  automatic vacuum of table \"shop.public.orders\": index scans: 1",
                "\tpages: 0 removed, 45 remain, 45 scanned (100.00% of total)",
                "\ttuples: 120 removed, 900 remain, 0 are dead but not yet removable",
                "2026-12-07 10:00:01.000 UTC [812] LOG:  checkpoint starting: time"]
    events = events_of(postgres)
    assert [e["lines"] for e in events] == [3, 1] and "error_type" not in events[0]["extras"]
    assert events[0]["text"].startswith("2026-12-07 10:00:00.000 UTC [811] LOG:  automatic vacuum")


def test_a_traceback_after_a_line_that_announces_nothing_starts_its_own_event():
    lines = ["2026-12-07 10:00:00 INFO shop: order 7 priced",
             "Traceback (most recent call last):",
             '  File "/srv/shop.py", line 3, in <module>',
             "    main()",
             "KeyError: 'price'",
             "2026-12-07 10:00:01 INFO shop: order 8 received"]
    assert [e["lines"] for e in events_of(lines)] == [1, 4, 1]


def test_docker_and_cri_partial_lines_are_joined_then_assembled():
    docker = [json.dumps({"log": "2026-12-07 ERROR shop - charging order 1 fail", "stream": "stderr",
                          "time": "2026-12-07T10:00:00.1Z"}),   # no newline: Docker split a long line
              json.dumps({"log": "ed\n", "stream": "stderr", "time": "2026-12-07T10:00:00.1Z"}),
              json.dumps({"log": "java.lang.IllegalStateException: down\n", "stream": "stderr", "time": "..."}),
              json.dumps({"log": "\tat com.shop.Pay.charge(Pay.java:9)\n", "stream": "stderr", "time": "..."}),
              json.dumps({"log": "2026-12-07 INFO shop - next\n", "stream": "stdout", "time": "..."})]
    events = events_of(docker)
    assert [e["lines"] for e in events] == [4, 1]
    assert events[0]["line"].splitlines()[0] == "2026-12-07 ERROR shop - charging order 1 failed"
    assert events[0]["extras"]["error_type"] == "java.lang.IllegalStateException"
    assert events[0]["extras"]["original"].splitlines()[0] == docker[0]   # as written, wrappers and all
    cri = ["2026-12-07T10:00:00.123456789Z stderr P Traceback (most rec",
           "2026-12-07T10:00:00.123456789Z stderr F ent call last):",
           '2026-12-07T10:00:00.123456789Z stderr F   File "/srv/shop.py", line 3, in <module>',
           "2026-12-07T10:00:00.123456789Z stderr F     main()",
           "2026-12-07T10:00:00.123456789Z stderr F KeyError: 'price'"]
    (event,) = events_of(cri)
    assert event["line"].splitlines()[0] == "Traceback (most recent call last):"
    assert event["extras"]["error_type"] == "KeyError" and event["extras"]["fields"] == {"stream": "stderr"}


@pytest.mark.parametrize("rule, groups", [
    # Filebeat's four combinations on the same lines
    ({"pattern": r"^\[", "negate": True, "match": "after"}, [3, 2]),    # a record starts with "["
    ({"pattern": r"^\+", "negate": False, "match": "after"}, [3, 1, 1]),  # "+" lines continue the one before
    ({"pattern": r"\\$", "negate": False, "match": "before"}, [2, 1, 2]),  # a trailing "\" continues into the next
    ({"pattern": r"^\[", "negate": True, "match": "before"}, [1, 3, 1]),  # non-record lines lead into the next
])
def test_users_rules_in_filebeat_s_shape(rule, groups):
    lines = ["[1] first \\", "+ more", "+ more", "[2] second \\", "tail"]
    assembler = Assembler(rules_from({"multiline": [dict(rule, source="app*")]}))
    events = list(assemble(enumerate(lines), "app-1", assembler))
    assert [len(e.lines) for e in events] == groups
    other = list(assemble(enumerate(lines), "other", Assembler(assembler.rules)))   # built-ins elsewhere
    assert [len(e.lines) for e in other] == [1, 1, 1, 1, 1]


def test_a_bad_rule_names_itself():
    with pytest.raises(ValueError, match="match.*after.*before"):
        Rule.of({"pattern": "x", "match": "sideways"})
    with pytest.raises(ValueError, match="not a regular expression"):
        Rule.of({"pattern": "("})


def test_max_lines_truncates_and_the_rest_follows_as_a_continued_event():
    lines = ["ERROR big dump:"] + [f"  row {i}" for i in range(12)] + ["INFO done"]
    events = events_of(lines, max_lines=5)
    assert [e["lines"] for e in events] == [5, 5, 3, 1]
    assert events[0]["extras"]["truncated"] and events[1]["extras"]["continued"] and events[1]["extras"]["truncated"]
    assert events[2]["extras"]["continued"] and "truncated" not in events[2]["extras"]
    assert sum(e["lines"] for e in events) == len(lines)   # nothing dropped


def test_the_quiet_timeout_and_a_gap_in_time_complete_an_event():
    assembler = Assembler(timeout=1.5)
    assert assembler.feed("s", "ERROR failed:", at=100.0, clock=10.0) == []
    assert assembler.feed("s", "  detail", at=100.1, clock=10.1) == []
    assert assembler.quiet(11.0) == []                  # 0.9 s of quiet
    (event,) = assembler.quiet(11.7)                    # 1.6 s
    assert event.lines == ["ERROR failed:", "  detail"] and not assembler.pending
    assembler.feed("s", "ERROR again:", at=200.0, clock=20.0)
    (done,) = assembler.feed("s", "  late detail", at=202.0, clock=20.1)   # 2 s after its line: its own event
    assert done.lines == ["ERROR again:"]


def test_loghub_logs_stay_one_event_per_line():
    files = sorted(LOGHUB.glob("*.log"))
    if not files:
        pytest.skip("no shared/datasets/loghub")
    for path in files:
        lines = path.read_text(errors="replace").splitlines()
        assert len(list(assemble(enumerate(lines), path.stem))) == len(lines), path.name


def test_a_trace_key_ignores_the_message_and_line_numbers_of_library_frames():
    a = ["java.lang.NullPointerException: customer 17 missing", "\tat com.shop.A.price(A.java:3)",
         "\tat java.base/java.lang.Thread.run(Thread.java:829)"]
    b = ["java.lang.NullPointerException: customer 99 missing", "\tat com.shop.A.price(A.java:3)",
         "\tat java.base/java.lang.Thread.run(Thread.java:840)"]
    c = ["java.lang.NullPointerException: customer 17 missing", "\tat com.shop.B.price(B.java:3)",
         "\tat java.base/java.lang.Thread.run(Thread.java:829)"]
    assert read_trace(a).key == read_trace(b).key != read_trace(c).key
    assert prepare_event(["plain line"])[2] == {}


def test_an_event_a_shipper_joined_already_is_read_as_its_lines():
    joined = "2026-12-07 ERROR shop - failed\njava.lang.IllegalStateException: down\n\tat com.shop.Pay.charge(Pay.java:9)"
    (event,) = events_of([joined])
    assert event["extras"]["error_type"] == "java.lang.IllegalStateException" and event["extras"]["event_lines"] == 3


def test_a_partial_line_that_never_gets_its_end_is_completed_by_the_quiet_timeout_or_its_size():
    assembler = Assembler(timeout=1.0, max_line_chars=10)
    assert assembler.feed("s", "progress: 10%", partial=True, clock=5.0) == []   # already past 10 characters
    assert "s" in assembler.pending and not assembler.partials
    assembler = Assembler(timeout=1.0)
    assert assembler.feed("s", "Downloading", partial=True, clock=5.0) == []
    assert assembler.quiet(5.5) == []
    (event,) = assembler.quiet(6.1)   # the container stopped mid-line: the line is taken as it is
    assert event.lines == ["Downloading"] and not assembler.partials and not assembler.pending
