"""Multi-line events through the real Kafka, a worker and Elasticsearch: the logs a real JVM and a
real CPython wrote (tests/data/traces) give one document per log event and one pattern per
exception call site; the last event is completed by the quiet timeout; a worker killed with
SIGKILL mid-event, or whose partitions move to another worker mid-event, neither loses nor
duplicates a line of it."""
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.streaming_helpers import ROOT, Worker, es_count, es_docs, run_cli, wait_for, write_logs

pytestmark = [pytest.mark.services, pytest.mark.slow]

TRACES = ROOT / "tests" / "data" / "traces"
JUL_FORMAT = "%1$tFT%1$tT.%1$tL %4$s %3$s - %5$s%6$s%n"   # one line per record, the exception after it


def java_service_lines(repeats):
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH")
    result = subprocess.run([java, f"-Djava.util.logging.SimpleFormatter.format={JUL_FORMAT}", "Shop.java",
                             str(repeats)], cwd=TRACES, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return (result.stdout + result.stderr).splitlines()   # java.util.logging writes to stderr


def python_service_lines(repeats):
    result = subprocess.run([sys.executable, "shop.py", str(repeats)], cwd=TRACES, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1   # its last exception is uncaught
    return result.stdout.splitlines() + result.stderr.splitlines()


def by_line(docs):
    return sorted(docs, key=lambda d: d["line_no"])


def test_java_and_python_services_give_one_document_per_event_and_one_pattern_per_call_site(services, names,
                                                                                           tmp_path):
    java, python = java_service_lines(50), python_service_lines(50)
    # 50 received, 40 priced, 10 NullPointerExceptions at one call site, a wrapped exception with its
    # cause, a NullPointerException at another call site, one more line, a thread's uncaught exception
    # and the last line
    java_events, python_events = 105, 104   # Python: ... 11 ZeroDivisionErrors (one in a JSON line) and 2 chains
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "2")
    worker = Worker(names, tmp_path / "state", partitions=2).start()
    try:
        write_logs(tmp_path / "logs", {"java-shop": java, "python-shop": python})
        run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= java_events + python_events, timeout=120,
                 what="every event indexed")
        time.sleep(3)   # nothing more comes: no frame is a document of its own
        docs = list(es_docs(names["index"]).values())
        incidents = list(es_docs(names["index"] + "-incidents").values())
    finally:
        worker.stop()
    jdocs = by_line(d for d in docs if d["source"] == "log-java-shop")
    pdocs = by_line(d for d in docs if d["source"] == "log-python-shop")
    assert (len(jdocs), len(pdocs)) == (java_events, python_events)
    assert sum(d.get("log", {}).get("multiline", {}).get("lines", 1) for d in jdocs) == \
        len([line for line in java if line.strip()])   # every line is in exactly one document

    site_a = [d for d in jdocs if d.get("call_site") == "Shop.priceOf (Shop.java:17)"]
    assert len(site_a) == 10 and len({d["pattern_id"] for d in site_a}) == 1
    first = site_a[0]
    assert first["error"]["type"] == "java.lang.NullPointerException"
    assert first["message"].startswith(java[first["line_no"] - 1]) and "SEVERE" in java[first["line_no"] - 1]
    assert "\tat Shop.priceOf(Shop.java:17)" in first["message"] and "\tat Shop.priceOf" in first["error"]["stack_trace"]
    site_b = [d for d in jdocs if d.get("call_site") == "Shop.discountOf (Shop.java:22)"]
    assert len(site_b) == 1 and site_b[0]["pattern_id"] != first["pattern_id"]
    wrapped = next(d for d in jdocs if d.get("error", {}).get("type") == "java.lang.IllegalStateException")
    assert "Caused by: java.net.ConnectException: Connection refused" in wrapped["message"]
    thread = next(d for d in jdocs if d["message"].startswith('Exception in thread "refund-worker"'))
    assert thread["error"]["type"] == "java.lang.UnsupportedOperationException"
    # one incident at most per call site, however often it threw
    assert len({d["incident_id"] for d in site_a if d.get("incident_id")}) <= 1
    opened = [i for i in incidents if i["pattern"] == first["pattern_id"]]
    assert len(opened) == (1 if any(d["is_anomaly"] for d in site_a) else 0)
    if opened:   # the explanation names the exception and its call site
        assert "java.lang.NullPointerException at Shop.priceOf (Shop.java:17)" in opened[0]["summary"]

    zero = [d for d in pdocs if d.get("error", {}).get("type") == "ZeroDivisionError"]
    assert len(zero) == 11 and len({d["pattern_id"] for d in zero}) == 1   # the JSON line's too: one call site
    assert any(d.get("fields", {}).get("name") == "shop.json" or d.get("log", {}).get("logger") == "shop.json"
               for d in zero)
    chained = next(d for d in pdocs if "charging order 2000 failed" in d["message"])
    assert chained["error"]["type"] == "RuntimeError" and "ConnectionRefusedError" in chained["message"]
    assert "The above exception was the direct cause" in chained["message"]
    uncaught = pdocs[-1]   # the last event: completed by the quiet timeout, with nothing after it
    assert uncaught["message"].startswith("Traceback (most recent call last):")
    assert uncaught["message"].endswith("ValueError: no refund record for order 2003")
    assert "During handling of the above exception" in uncaught["message"]
    assert uncaught["error"]["type"] == "ValueError" and uncaught["log"]["multiline"]["lines"] == 15


EVENT = ["2026-12-07T10:00:00.000 INFO shop.orders - order 1 received",
         "2026-12-07T10:00:01.000 SEVERE shop.orders - pricing order 1 failed",
         "java.lang.IllegalStateException: price service down"] + \
        [f"\tat com.example.shop.Pricing.step{i}(Pricing.java:{10 + i})" for i in range(12)]
AFTER = ["\tat com.example.shop.Main.main(Main.java:5)",
         "2026-12-07T10:00:02.000 INFO shop.orders - order 2 received"]


def indexed_lines(docs):
    """The log lines each document holds, by (first line number, count)."""
    return sorted((d["line_no"], d.get("log", {}).get("multiline", {}).get("lines", 1)) for d in docs)


@pytest.mark.parametrize("move", ["sigkill", "sigterm", "another_worker"])
def test_an_event_pending_when_its_worker_dies_or_its_partition_moves_loses_and_repeats_no_line(
        services, names, tmp_path, move):
    """The first part of an event is read by a worker that then dies (SIGKILL), stops (SIGTERM) or
    loses the partition to a second worker; the rest arrives after.  Every line ends up in exactly one
    document -- after a SIGKILL or a stop, the whole event in one (its records were never acked, so
    the next reader assembles it again); a rebalance completes the pending event as it is."""
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "1")
    slow = {"CLOGS_MULTILINE_TIMEOUT": "600"}   # only the next event (or a rebalance) completes one
    first = Worker(names, tmp_path / "a", partitions=1, env=slow).start()
    second = None
    try:
        write_logs(tmp_path / "part1", {"shop": EVENT})
        run_cli("ingest", "--base-dir", str(tmp_path / "part1"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= 1, timeout=120, what="the line before the event indexed")
        time.sleep(2)   # the event's lines are taken and held
        assert es_count(names["index"]) == 1
        if move in ("sigkill", "sigterm"):
            first.note(f"{move} mid-event")
            started = time.monotonic()
            first.stop(signal.SIGKILL if move == "sigkill" else signal.SIGTERM)
            assert time.monotonic() - started < 30   # a pending event does not hold a stopping worker
            second = Worker(names, tmp_path / "b", partitions=1, env=slow).start()
        else:
            second = Worker(names, tmp_path / "b", partitions=1, env=slow).start()
        write_logs(tmp_path / "part2", {"shop": AFTER})
        run_cli("ingest", "--base-dir", str(tmp_path / "part2"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= 2 and sum(
            n for _, n in indexed_lines(es_docs(names["index"]).values())) >= len(EVENT), timeout=120,
            what="the event indexed")
        time.sleep(3)
        docs = list(es_docs(names["index"]).values())
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
    lines = EVENT + AFTER[:1]   # the last line waits for its quiet timeout (600 s)
    held = indexed_lines(docs)
    assert sum(n for _, n in held) == len(lines)
    messages = "\n".join(d["message"] for d in sorted(docs, key=lambda d: d["kafka_offset"]))
    assert all(messages.count(line) == 1 for line in lines[1:])   # none lost, none twice
    if move in ("sigkill", "sigterm"):
        event = next(d for d in docs if "SEVERE" in d["message"])
        assert event["message"] == "\n".join(lines[1:]) and event["log"]["multiline"]["lines"] == len(lines) - 1
        assert len(docs) == 2


def test_after_a_sigkill_the_tail_of_another_source_s_event_sent_already_is_not_a_new_one(services, names, tmp_path):
    """Two sources in one partition, their events interleaved: billing's event is sent while shop's is
    pending, so the commit stays at shop's event's first record -- inside billing's event.  After a
    SIGKILL the replay starts there; billing's tail must not come back as an event of its own."""
    from datetime import datetime, timezone

    from tests.streaming_helpers import produce_raw

    def record(source, line_no, line):
        return source.encode(), json.dumps({"source": source, "file": f"{source}.log", "line_no": line_no,
                                            "line": line, "host": "test",
                                            "ingested_at": datetime.now(timezone.utc).isoformat()}).encode()

    first = [record("shop", 1, "2026-12-07T10:00:00.000 INFO shop - order 1 received"),
             record("billing", 1, "2026-12-07 10:00:00 ERROR billing: charging failed:"),
             record("shop", 2, "2026-12-07T10:00:01.000 SEVERE shop - pricing failed"),
             record("shop", 3, "java.lang.IllegalStateException: price service down"),
             record("billing", 2, "    card declined by issuer"),
             record("shop", 4, "\tat com.shop.Pricing.price(Pricing.java:10)"),
             record("billing", 3, "2026-12-07 10:00:02 INFO billing: next order")]
    rest = [record("shop", 5, "\tat com.shop.Main.main(Main.java:3)"),
            record("shop", 6, "2026-12-07T10:00:03.000 INFO shop - order 2 received")]
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "1")
    slow = {"CLOGS_MULTILINE_TIMEOUT": "600"}
    worker = Worker(names, tmp_path / "a", partitions=1, env=slow).start()
    second = None
    try:
        produce_raw(names["topic"], first)
        wait_for(lambda: es_count(names["index"]) >= 2, timeout=120, what="shop's first line and billing's event")
        time.sleep(2)
        worker.note("SIGKILL with shop's event pending")
        worker.stop(signal.SIGKILL)
        second = Worker(names, tmp_path / "b", partitions=1, env=slow).start()
        produce_raw(names["topic"], rest)
        wait_for(lambda: es_count(names["index"]) >= 3, timeout=120, what="shop's event indexed")
        time.sleep(3)
        docs = sorted(es_docs(names["index"]).values(), key=lambda d: d["kafka_offset"])
    finally:
        worker.stop()
        if second is not None:
            second.stop()
    assert [(d["source"], d["kafka_offset"], d.get("log", {}).get("multiline", {}).get("lines", 1)) for d in docs] == \
        [("shop", 0, 1), ("billing", 1, 2), ("shop", 2, 4)]
    assert docs[2]["error"]["type"] == "java.lang.IllegalStateException"
