"""Structured lines (model/structured.py): JSON and logfmt read without configuration -- from the
output of Go's own log/slog, run here --, the container runtimes' wrappers, and plain text left alone."""
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from model.structured import prepare, read_line, unwrap

ROOT = Path(__file__).resolve().parent.parent
LOGHUB = sorted(glob.glob(str(ROOT.parent / "shared" / "datasets" / "loghub" / "*.log")))


@pytest.fixture(scope="module")
def slog_lines():
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain on PATH")
    run = subprocess.run([go, "run", "."], cwd=ROOT / "tests" / "data" / "slog", capture_output=True, text=True,
                         timeout=300, env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"})
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_go_slog_json_and_text_lines_are_read(slog_lines):
    json_lines = [line for line in slog_lines if line.startswith("{")]
    text_lines = [line for line in slog_lines if line.startswith("time=")]
    assert len(json_lines) == 4 and len(text_lines) == 4
    placed = read_line(json_lines[0])
    assert (placed.format, placed.message, placed.level, placed.logger) == ("json", "order placed", "INFO", "payments.api")
    assert placed.time.startswith("20") and placed.fields == {"order_id": 4711, "amount": 12.5, "user": "u-17"}
    assert placed.text == "INFO order placed"
    failed = read_line(json_lines[-1])
    assert failed.level == "ERROR" and failed.error.endswith("connection refused")
    assert failed.text == "ERROR payment failed dial tcp 10.0.0.7:5432: connect: connection refused"
    logfmt = read_line(text_lines[0])
    assert (logfmt.format, logfmt.message, logfmt.level) == ("logfmt", "order placed", "INFO")
    assert logfmt.fields == {"order_id": "4711", "amount": "12.5", "user": "u-17"}
    retry = read_line(text_lines[-1])
    assert retry.level == "WARN" and retry.error.endswith("connection refused") and retry.fields == {"attempt": "2"}
    text, message, extras = prepare(json_lines[-1])
    assert text.startswith("ERROR payment failed") and message == "payment failed"
    assert extras["original"] == json_lines[-1] and extras["fields"]["password"] == "hunter2"


@pytest.mark.parametrize("line, message, level, time", [
    ('{"level":30,"time":1733562000000,"pid":7,"hostname":"web-1","msg":"request completed"}',   # pino
     "request completed", "info", 1733562000000),
    ('{"name":"api","hostname":"h","pid":1,"level":50,"msg":"db down","time":"2026-12-07T10:00:00.000Z","v":0}',  # bunyan
     "db down", "error", "2026-12-07T10:00:00.000Z"),
    ('{"@t":"2026-12-07T10:00:00.0000000Z","@mt":"Processed {Count} items","@l":"Warning","Count":3}',   # Serilog
     "Processed {Count} items", "Warning", "2026-12-07T10:00:00.0000000Z"),
    ('{"@timestamp":"2026-12-07T10:00:00.000Z","log.level":"ERROR","message":"query failed",'
     '"ecs.version":"1.2.0","log.logger":"org.example.Db","error.type":"java.sql.SQLException",'
     '"error.stack_trace":"java.sql.SQLException: timeout\\n\\tat org.example.Db.run(Db.java:42)"}',   # ECS
     "query failed", "ERROR", "2026-12-07T10:00:00.000Z"),
    ('{"event": "user logged in", "level": "info", "timestamp": "2026-12-07T10:00:00Z", "user": "bob"}',  # structlog
     "user logged in", "info", "2026-12-07T10:00:00Z"),
    ('time="2026-12-07T10:00:00Z" level=error msg="cannot open config" file=/etc/app.yml',   # logrus
     "cannot open config", "error", "2026-12-07T10:00:00Z"),
])
def test_the_usual_json_and_logfmt_shapes(line, message, level, time):
    found = read_line(line)
    assert (found.message, found.level, found.time) == (message, level, time)


def test_an_ecs_stack_trace_and_logger_are_kept():
    line = ('{"@timestamp":"2026-12-07T10:00:00.000Z","log.level":"ERROR","message":"query failed",'
            '"log.logger":"org.example.Db","error.stack_trace":"java.sql.SQLException: timeout\\n\\tat org.example.Db.run(Db.java:42)"}')
    found = read_line(line)
    assert found.logger == "org.example.Db" and found.error.splitlines()[1].strip().startswith("at org.example")
    assert found.text == "ERROR query failed java.sql.SQLException: timeout"


def test_a_line_without_a_message_is_scored_by_its_keys_and_values():
    found = read_line("ts=2026-12-07T10:00:00Z level=info component=gc heap_mb=512 pause_ms=12")
    assert found.message == "heap_mb=512 pause_ms=12" and found.text == "INFO heap_mb=512 pause_ms=12"
    assert found.logger == "gc"


def test_container_wrappers_are_unwrapped():
    assert unwrap('{"log":"2026-12-07 ERROR boom\\n","stream":"stderr","time":"2026-12-07T10:00:00.1Z"}') == \
        ("2026-12-07 ERROR boom", False, "stderr")
    assert unwrap('{"log":"a very long line cut by docker","stream":"stdout","time":"2026-12-07T10:00:00.1Z"}')[1]
    assert unwrap("2026-12-07T10:00:00.123456789Z stdout F hello world") == ("hello world", False, "stdout")
    assert unwrap("2026-12-07T10:00:00.1Z stderr P part one") == ("part one", True, "stderr")
    text, message, extras = prepare('{"log":"{\\"level\\":\\"info\\",\\"msg\\":\\"ready\\",\\"port\\":8080}\\n",'
                                    '"stream":"stdout","time":"2026-12-07T10:00:00.1Z"}')
    assert (text, message) == ("INFO ready", "ready") and extras["fields"] == {"port": 8080, "stream": "stdout"}


@pytest.mark.parametrize("line", ['{"not json', '{"a": 1', "{braces} in a message {too}", "[1, 2, 3]",
                                  "key=value but then a sentence that goes on and on for a while",
                                  "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user test from 52.80.34.196"])
def test_what_only_looks_structured_is_plain_text(line):
    assert read_line(line) is None and prepare(line) == (line, line, {})


@pytest.mark.skipif(not LOGHUB, reason="../shared/datasets/loghub is missing")
def test_no_loghub_line_is_taken_for_a_structured_one():
    lines = [line for path in LOGHUB for line in Path(path).read_text(errors="replace").splitlines()]
    assert len(lines) == 32_000
    assert [line for line in lines if read_line(line) is not None or unwrap(line)[2] is not None] == []
