"""Structured lines through the real Kafka, a worker and Elasticsearch: the JSON and logfmt lines Go's
log/slog writes are indexed with their own message, level, logger, time and fields (a password field
redacted), and the line as written kept in event.original."""
import os
import shutil
import subprocess

import pytest

from tests.streaming_helpers import ROOT, Worker, es_count, es_docs, run_cli, wait_for, write_logs

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_go_slog_lines_are_indexed_with_their_own_message_level_and_time(services, names, tmp_path):
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain on PATH")
    lines = subprocess.run([go, "run", "."], cwd=ROOT / "tests" / "data" / "slog", capture_output=True, text=True,
                           timeout=300, env={**os.environ, "GOTOOLCHAIN": "local"}, check=True).stdout.splitlines()
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "2")
    worker = Worker(names, tmp_path / "state", partitions=2).start()
    try:
        write_logs(tmp_path / "logs", {"payments": lines})
        run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= len(lines), timeout=120, what="every line indexed")
        docs = sorted(es_docs(names["index"]).values(), key=lambda d: d["line_no"])
    finally:
        worker.stop()
    assert [d["message"] for d in docs] == ["order placed"] * 6 + ["payment failed", "retrying payment"]
    failed, retry = docs[-2], docs[-1]
    assert failed["log"]["level"] == "error" and failed["log"]["logger"] == "payments.api"
    assert failed["timestamp_source"] == "line" and failed["@timestamp"][:10] == lines[-2][9:19]
    assert failed["error"]["message"].endswith("connection refused")
    assert failed["fields"]["order_id"] == 4712 and failed["fields"]["password"] == "[REDACTED]"
    assert "hunter2" not in failed["event"]["original"] and '"msg":"payment failed"' in failed["event"]["original"]
    assert retry["log"]["level"] == "warning" and retry["fields"] == {"attempt": "2"}
    assert all(d["event"]["original"] == line for d, line in zip(docs[:6], lines[:6]) if "password" not in line)
