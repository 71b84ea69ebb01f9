"""Incidents on the real Kafka and Elasticsearch: 50 repeats of a new error make one incident (also
across a SIGKILL), line documents carry the time their line states, operators' feedback takes effect
on a running worker, a burst raises a ``rate`` and a quiet source a ``silence`` incident, and the
dashboard works in a real headless Chromium."""
import asyncio
import json
import os
import signal
import threading
import time
import uuid

import pytest

from app.inputs.traffic import failure_line, service_lines
from tests.streaming_helpers import (ROOT, Worker, consume_all, es_client, es_count, es_docs, run_cli, wait_for,
                                     write_logs)

pytestmark = [pytest.mark.services, pytest.mark.slow]


def sample(name, n):
    return (ROOT / "data" / "loghub" / name).read_text(errors="replace").splitlines()[:n]


def incidents_of(names, **term):
    es = es_client()
    index = names["index"] + "-incidents"
    if not es.indices.exists(index=index):
        return []
    es.indices.refresh(index=index)
    query = {"bool": {"filter": [{"term": {k: v}} for k, v in term.items()]}}
    return [h["_source"] for h in es.search(index=index, size=1000, query=query)["hits"]["hits"]]


def topic(names):
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")


def test_fifty_repeats_of_a_new_error_make_one_incident_even_across_a_sigkill(services, names, tmp_path):
    normal = service_lines("payments", 1200, seed=21)
    errors = [failure_line("payments", seed=100 + i) for i in range(50)]
    lines = normal[:300]
    for i, error in enumerate(errors):   # after the learning period, one error every 18 lines
        lines += [error] + normal[300 + 18 * i: 300 + 18 * (i + 1)]
    half = len(lines) // 2
    hdfs = sample("HDFS_2k.log", 200)    # a replayed Loghub sample: its lines state 2008's times
    topic(names)
    worker = Worker(names, tmp_path / "state", extra=("--learning-lines", "100")).start()
    try:
        first = write_logs(tmp_path / "round1", {"payments": lines[:half], "hdfs": hdfs})
        run_cli("ingest", "--base-dir", str(tmp_path / "round1"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= first, timeout=120, what="the first half indexed")
        # Let the offsets of the first half be committed (every second) before the kill.  A line
        # replayed after a crash is decided again with the memory that has already learned it, so
        # a replayed *first* occurrence of a new error is no longer flagged and its re-indexed
        # document says so (a known limit, noted in issue 11's closing note: once the worker got
        # faster, a kill right after indexing replayed the whole first half, first error included).
        time.sleep(3)
        worker.stop(signal.SIGKILL)   # no flush: the restart replays what was not committed yet
        worker = Worker(names, tmp_path / "state", extra=("--learning-lines", "100")).start()
        second = write_logs(tmp_path / "round2", {"payments": lines[half:]})
        run_cli("ingest", "--base-dir", str(tmp_path / "round2"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= first + second, timeout=180, what="everything indexed")
        time.sleep(2)
        docs = es_docs(names["index"])
        assert len(docs) == first + second
        error_docs = sorted((d for d in docs.values() if d["message"] in set(errors)),
                            key=lambda d: (d["kafka_partition"], d["kafka_offset"]))
        assert len(error_docs) == 50 and error_docs[0]["is_anomaly"]
        assert len({d["incident_id"] for d in error_docs}) == 1
        iid = error_docs[0]["incident_id"]
        incident = wait_for(lambda: [i for i in incidents_of(names, incident_id=iid) if i["count"] == 50],
                            timeout=30, what="the incident's count to reach 50")[0]
        assert incident["kind"] == "content" and incident["status"] == "open" and incident["source"] == "log-payments"
        assert incident["max_score"] >= max(d["anomaly_score"] for d in error_docs) - 1e-6
        assert 1 <= len(incident["examples"]) <= 5 and incident["examples"][0]["message"] in errors
        assert incident["examples"][0]["doc_id"] in docs and incident["top_tokens"]
        # severity (model/severity.py): the first, flagged occurrence of a new error is at least minor;
        # the incident is its worst line's, raised by its 50 repeats, and carries its band
        first_severity = error_docs[0]["event"]["severity"]
        assert 25 <= first_severity <= 100 and all(0 <= d["event"]["severity"] <= 100 for d in docs.values())
        assert incident["event"]["severity"] == min(100, incident["max_severity"] + 7) >= first_severity
        assert incident["severity_band"] in ("minor", "major", "critical")
        content = incidents_of(names, source="log-payments", kind="content")
        assert sum(i["pattern"] == incident["pattern"] for i in content) == 1
        assert worker.stats("/stats/log-payments/")["log-payments"]["count"] == len(lines)

        replayed = [d for d in docs.values() if d["source"] == "log-hdfs"]
        assert {d["timestamp_source"] for d in replayed} == {"line"}
        by_line = {d["message"]: d for d in replayed}
        assert hdfs[0].startswith("081109 203615 ")   # the sample's first line: 2008-11-09 20:36:15
        assert by_line[hdfs[0]]["@timestamp"] == "2008-11-09T20:36:15.000+00:00"
        assert by_line[hdfs[0]]["ingested_at"] > "2026"
        assert all(d["host"]["name"] and d["event"]["dataset"] == "log-hdfs" for d in replayed)
    finally:
        worker.stop(signal.SIGKILL)


class Traffic:
    """Lines for several sources, produced from a background thread: steady sources get
    ``per_tick`` lines every ``tick`` seconds until paused; ``send`` adds lines at once."""

    def __init__(self, topic, tick=0.25, per_tick=5):
        self.topic, self.tick, self.per_tick = topic, tick, per_tick
        self.steady = {}          # source -> iterator of lines
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.producer = None

    def __enter__(self):
        from aiokafka import AIOKafkaProducer

        from tests.streaming_helpers import bootstrap

        self.thread.start()

        async def make():
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), linger_ms=5)
            await producer.start()
            return producer
        self.producer = self._run(make())
        self.pacer = asyncio.run_coroutine_threadsafe(self._pace(), self.loop)
        return self

    def __exit__(self, *exc):
        self.pacer.cancel()
        self._run(self.producer.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _pace(self):
        while True:
            for source, lines in list(self.steady.items()):
                for _ in range(self.per_tick):
                    await self._send(source, next(lines))
            await asyncio.sleep(self.tick)

    async def _send(self, source, line):
        record = {"source": source, "line": line, "file": f"{source}.log", "host": "test-host"}
        await self.producer.send(self.topic, json.dumps(record).encode(), key=source.encode())

    def send(self, source, lines):
        async def go():
            for line in lines:
                await self._send(source, line)
            await self.producer.flush()
        self._run(go())


def endless(service, seed):
    while True:
        yield from service_lines(service, 1000, seed=seed)
        seed += 1


FAST_RATES = {"CLOGS_RATE_WINDOW": "1", "CLOGS_RATE_MIN_WINDOWS": "5", "CLOGS_SILENCE_MIN_SECONDS": "4",
              "CLOGS_SILENCE_FACTOR": "5", "CLOGS_TICK_SECONDS": "1", "CLOGS_LEARNING_LINES": "100"}


@pytest.fixture(scope="module")
def live(services, tmp_path_factory):
    """One worker with second-long rate windows, fed steady traffic by two sources."""
    tag = uuid.uuid4().hex[:10]
    names = {"topic": f"test-logs-{tag}", "app_id": f"test-clogs-{tag}", "index": f"test-clogs-{tag}", "tag": tag}
    topic(names)
    worker = Worker(names, tmp_path_factory.mktemp("live") / "state", env=FAST_RATES).start()
    try:
        with Traffic(names["topic"]) as traffic:
            traffic.steady["payments"] = endless("payments", 1)
            traffic.steady["inventory"] = endless("inventory", 1)
            wait_for(lambda: all(worker.stats().get(s, {}).get("count", 0) >= 300 for s in ("payments", "inventory")),
                     timeout=120, what="both sources past their learning period")
            yield names, worker, traffic
    finally:
        worker.stop(signal.SIGKILL)


def flagged_once(names, traffic, source, line):
    """Send one line; returns its indexed document (with its id) once it is there."""
    traffic.send(source, [line])
    return wait_for(lambda: next((dict(d, id=i) for i, d in es_docs(names["index"], query={
        "match_phrase": {"message": line}}).items() if d["message"] == line), None), timeout=60,
        what=f"{line[:40]}... indexed")


def settle_in_one_window(worker, traffic, source, service, lines=2, window=50):
    """Wait until the paused source's count stops moving, then, if its next ``lines`` lines would
    straddle a familiarity window (CLOGS_WINDOW_LINES, 50), send fillers: a pattern's repeat in the
    same window is judged as its first occurrence was."""
    def stable():
        first = worker.stats()[source]["count"]
        time.sleep(1.0)
        return first == worker.stats()[source]["count"] and first
    count = wait_for(stable, timeout=30, what=f"{source} quiet")
    fillers = (-count) % window if count % window > window - lines else 0
    if fillers:
        traffic.send(source, service_lines(service, fillers, seed=77))
        wait_for(lambda: worker.stats()[source]["count"] == count + fillers, timeout=30, what="fillers counted")


def feedback(names, *args):
    return run_cli("feedback", *args, "--app-id", names["app_id"], env={"CLOGS_INDEX": names["index"]})


def status_becomes(names, iid, status):
    return wait_for(lambda: [i for i in incidents_of(names, incident_id=iid) if i["status"] == status],
                    timeout=30, what=f"incident {iid} {status}")[0]


def test_feedback_normal_and_suppress_take_effect_on_a_running_worker(live):
    names, worker, traffic = live
    traffic.steady.pop("payments")   # the source's next lines are the test's own: same 50-line window
    settle_in_one_window(worker, traffic, "payments", "payments")
    first = flagged_once(names, traffic, "payments", failure_line("payments", seed=7))
    assert first["is_anomaly"] and first["incident_id"]
    iid = first["incident_id"]
    started = time.monotonic()
    out = feedback(names, "normal", iid)
    assert "sent: normal" in out
    status_becomes(names, iid, "normal")
    assert time.monotonic() - started < 15, "feedback must take effect within seconds"
    again = flagged_once(names, traffic, "payments", failure_line("payments", seed=8))
    assert not again["is_anomaly"] and again["incident_id"] == iid   # normal now: not flagged
    assert again["pattern_seen"] == 0 and again["anomaly_score"] > again["threshold_used"]   # would have been

    traffic.steady.pop("inventory")
    settle_in_one_window(worker, traffic, "inventory", "inventory")
    first = flagged_once(names, traffic, "inventory", failure_line("inventory", seed=7))
    assert first["is_anomaly"]
    iid = first["incident_id"]
    feedback(names, "suppress", iid, "--for", "2h")
    incident = status_becomes(names, iid, "suppressed")
    assert incident["suppressed_until"] > incident["updated_at"]
    again = flagged_once(names, traffic, "inventory", failure_line("inventory", seed=8))
    assert again["is_anomaly"] and again["incident_id"] == iid      # still scored, flagged and indexed ...
    time.sleep(2)
    alerts = consume_all(names["topic"] + "-anomalies", expected=10 ** 6, timeout=5)
    lines = {a["id"] for a in alerts if a["type"] == "line"}
    assert first["id"] in lines and again["id"] not in lines   # ... but no alert
    assert wait_for(lambda: incidents_of(names, incident_id=iid)[0]["count"] == 2, timeout=20, what="count 2")
    feedback(names, "reopen", iid)
    status_becomes(names, iid, "open")
    with pytest.raises(AssertionError, match="no incident"):
        feedback(names, "normal", "0123456789abcdef")


def test_a_burst_raises_a_rate_incident_and_a_quiet_source_a_silence_incident(live):
    names, worker, traffic = live
    traffic.steady["bursty"] = endless("payments", 50)
    wait_for(lambda: worker.stats().get("bursty", {}).get("count", 0) >= 200, timeout=60, what="bursty steady")
    time.sleep(3)   # a few more one-second windows of its usual rate
    traffic.send("bursty", service_lines("payments", 600, seed=99))
    rate = wait_for(lambda: incidents_of(names, source="bursty", kind="rate"), timeout=30, what="a rate incident")[0]
    # >= 1: on a loaded machine a stalled worker can read a few seconds of steady traffic as one burst too
    assert rate["count"] >= 1 and rate["observed"] > 3 * rate["expected"] and rate["status"] == "open"
    assert not incidents_of(names, source="bursty", kind="silence")
    traffic.steady.pop("bursty")   # and now it goes quiet
    quiet_since = time.monotonic()
    silence = wait_for(lambda: incidents_of(names, source="bursty", kind="silence"), timeout=60,
                       what="a silence incident")[0]
    assert 4 <= time.monotonic() - quiet_since <= 40
    assert silence["count"] >= 1 and silence["observed"] >= 4 and silence["status"] == "open"
    alerts = consume_all(names["topic"] + "-anomalies", expected=10 ** 6, timeout=5)
    kinds = {a["kind"] for a in alerts if a["type"] == "incident" and a["source"] == "bursty"}
    assert {"rate", "silence"} <= kinds


def test_the_dashboard_shows_sources_and_incidents_and_takes_feedback(live, tmp_path):
    from tests.browser import Browser, find_chromium

    if not find_chromium():
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    names, worker, traffic = live
    if not incidents_of(names, status="open"):   # run alone: make one
        flagged_once(names, traffic, "payments", failure_line("payments", seed=31))
    wait_for(lambda: incidents_of(names, status="open"), timeout=30, what="an open incident")
    with Browser() as browser:
        browser.open(worker.url + "/?refresh=2")
        browser.wait_for("document.body.dataset.loaded === '1'", timeout=30)
        assert browser.evaluate("document.body.dataset.errors") in ("0", None)
        drawn = browser.wait_for("""(() => { const c = [...document.querySelectorAll('canvas')];
            return c.length >= 2 && c.every(x => Number(x.dataset.drawn) > 0) && c.length; })()""", timeout=30)
        assert drawn >= 2
        iid = browser.wait_for("""(() => { const r = [...document.querySelectorAll('tr[data-incident-id]')]
            .find(r => r.querySelector('.status').textContent.trim() === 'open'
                       && r.querySelector('button[data-action=normal]'));
            return r && r.dataset.incidentId; })()""", timeout=30)
        browser.click(f"tr[data-incident-id='{iid}'] button[data-action=normal]")
        browser.wait_for(f"""document.querySelector("tr[data-incident-id='{iid}'] .status")
            .textContent.trim() === 'normal'""", timeout=30)
        assert not browser.console_errors()
        shot = (ROOT / "docs" / "dashboard.png") if os.environ.get("CLOGS_SCREENSHOTS") else tmp_path / "dashboard.png"
        browser.screenshot(shot, 1280, 900)
    assert status_becomes(names, iid, "normal")
