"""Notifications on the real Kafka and Elasticsearch, to a real local HTTP receiver and a real
Prometheus Alertmanager (Debian's `prometheus-alertmanager`): fifty repeats of a new error are one
signed webhook notification with its severity; Alertmanager shows the alert, then its resolution;
a worker killed with SIGKILL while a notification is in flight loses none."""
import asyncio
import hashlib
import hmac
import json
import shutil
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web

from app.inputs.traffic import failure_line, service_lines
from tests.streaming_helpers import Worker, free_port, get_json, run_cli, stop_process, wait_for, write_logs

pytestmark = [pytest.mark.services, pytest.mark.slow]
SECRET = "webhook-secret-for-tests"
START = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)


class Receiver:
    """A real HTTP server that records what it is sent (and can hold its answers back)."""

    def __init__(self):
        self.received, self.holding, self.port = [], False, free_port()
        self.loop = asyncio.new_event_loop()
        self.released = asyncio.Event()

    async def handle(self, request):
        body = await request.read()
        self.received.append({"path": request.path, "headers": dict(request.headers), "body": body,
                              "json": json.loads(body), "at": time.time()})
        if self.holding:   # the answer waits until let_go()
            await self.released.wait()
        return web.json_response({"ok": True})

    def hold(self):
        self.holding = True

    def let_go(self):
        self.holding = False
        self.loop.call_soon_threadsafe(self.released.set)

    def __enter__(self):
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.let_go()
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def notes(self, path="/hook"):
        """(notification, its incident) of every webhook message received on ``path``."""
        return [(n, n["incident"]) for r in self.received if r["path"] == path for n in r["json"]["notifications"]]


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def alertmanager(tmp_path, receiver):
    """A real Alertmanager whose only receiver is the test's HTTP receiver (/am)."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("no prometheus-alertmanager on PATH (apt-get install prometheus-alertmanager)")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route: {{receiver: test, group_by: [incident_id], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}
receivers:
  - name: test
    webhook_configs: [{{url: "{receiver.url('/am')}", send_resolved: true}}]
""")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "alertmanager.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: get_json(f"{url}/api/v2/status"), timeout=30, what="Alertmanager")
    yield url
    stop_process(proc)


def traffic(errors_from=300, errors=50, normal=1200, seed=21):
    """Normal payments traffic, one line a second from START, with `errors` repeats of one new error
    every 18 lines after the learning period; each line stamped in order."""
    lines = service_lines("payments", normal, seed=seed, start=START)
    out = lines[:errors_from]
    for i in range(errors):
        at = errors_from + 18 * i
        out += [failure_line("payments", seed=100 + i, when=START + timedelta(seconds=at))] + lines[at:at + 18]
    return out


def signed(record):
    expected = "sha256=" + hmac.new(SECRET.encode(), record["body"], hashlib.sha256).hexdigest()
    return record["headers"].get("X-Clogs-Signature") == expected


def test_fifty_repeats_are_one_notification_and_alertmanager_shows_the_alert_then_its_end(
        services, names, tmp_path, receiver, alertmanager):
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "2")
    env = {"CLOGS_WEBHOOK_URL": receiver.url("/hook"), "CLOGS_WEBHOOK_SECRET": SECRET,
           "CLOGS_ALERTMANAGER_URL": alertmanager, "CLOGS_RESOLVE_CONTENT_SECONDS": "120", "CLOGS_TICK_SECONDS": "1"}
    worker = Worker(names, tmp_path / "state", extra=("--learning-lines", "100"), partitions=2, env=env).start()
    try:
        lines = traffic()
        errors = {line for line in lines if "ledger write rejected" in line}
        write_logs(tmp_path / "one", {"payments": lines})
        sent = time.time()
        run_cli("ingest", "--base-dir", str(tmp_path / "one"), "--topic", names["topic"])

        def error_notes():
            found = [(n, i) for n, i in receiver.notes() if "ledger write rejected" in (i.get("summary") or "")]
            return found or None
        (note, incident), *more = wait_for(error_notes, timeout=120, what="the error's notification")
        time.sleep(5)   # whatever else would come for it
        assert [n["state"] for n, i in error_notes()] == ["opened"], error_notes()
        assert incident["count"] >= 1 and 0 <= incident["event"]["severity"] <= 100
        assert note["severity"] == incident["event"]["severity"] and note["band"] == incident["severity_band"]
        assert all(signed(r) for r in receiver.received if r["path"] == "/hook")
        first = next(r["at"] for r in receiver.received if r["path"] == "/hook")
        print(f"first notification {first - sent:.1f} s after the ingest started")
        messages = [r for r in receiver.received if r["path"] == "/hook" and any(
            n["incident_id"] == note["incident_id"] for n in r["json"]["notifications"])]
        assert len(messages) == 1 and messages[0]["headers"]["X-Clogs-Idempotency-Key"]

        # Alertmanager holds it as an active alert and tells its receiver
        active = wait_for(lambda: [a for a in get_json(f"{alertmanager}/api/v2/alerts")
                                   if a["labels"]["incident_id"] == note["incident_id"]], timeout=30,
                          what="the alert in Alertmanager")
        assert active[0]["status"]["state"] == "active" and active[0]["labels"]["source"] == "log-payments"
        assert active[0]["labels"]["severity"] == note["band"]
        wait_for(lambda: [r for r in receiver.received if r["path"] == "/am" and r["json"]["status"] == "firing"],
                 timeout=30, what="Alertmanager's firing message")

        # the source moves on (its lines' own time) past the quiet period: resolved, told, ended
        later = service_lines("payments", 60, seed=22, start=START + timedelta(hours=1))
        write_logs(tmp_path / "two", {"payments": later})
        run_cli("ingest", "--base-dir", str(tmp_path / "two"), "--topic", names["topic"])
        wait_for(lambda: [n for n, _ in error_notes() if n["state"] == "resolved"], timeout=60,
                 what="the resolved notification")
        wait_for(lambda: not [a for a in get_json(f"{alertmanager}/api/v2/alerts")
                              if a["labels"]["incident_id"] == note["incident_id"]], timeout=30,
                 what="the alert to leave Alertmanager's active alerts")
        resolved = wait_for(lambda: [r for r in receiver.received if r["path"] == "/am" and r["json"]["status"] ==
                                     "resolved"], timeout=60, what="Alertmanager's resolved message")
        assert resolved[0]["json"]["alerts"][0]["labels"]["incident_id"] == note["incident_id"]
        assert errors
    finally:
        worker.stop()


@pytest.mark.parametrize("successor", ["the same worker", "another worker"])
def test_a_sigkill_while_a_notification_is_in_flight_loses_none(services, names, tmp_path, receiver, successor):
    """Killed with SIGKILL while its message is in flight, the worker is restarted -- or another worker,
    with no local state of its own, takes its partitions over and recovers the tables from their
    changelogs: what was in flight is told again with the same keys, nothing else twice."""
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "2")
    env = {"CLOGS_WEBHOOK_URL": receiver.url("/hook"), "CLOGS_NOTIFY_RETRIES": "20"}
    worker = Worker(names, tmp_path / "state", extra=("--learning-lines", "100"), partitions=2, env=env).start()
    receiver.hold()   # the worker's request stays in flight
    try:
        write_logs(tmp_path / "one", {"payments": traffic(errors=5)})
        run_cli("ingest", "--base-dir", str(tmp_path / "one"), "--topic", names["topic"])
        wait_for(lambda: receiver.received, timeout=120, what="a notification in flight")
        in_flight = {n["key"] for r in receiver.received for n in r["json"]["notifications"]}
        worker.stop(signal.SIGKILL)
        receiver.let_go()
        folder = tmp_path / ("state" if successor == "the same worker" else "state-of-another")
        worker = Worker(names, folder, extra=("--learning-lines", "100"), partitions=2, env=env).start()

        def told():
            return [n["key"] for r in receiver.received for n in r["json"]["notifications"]]
        wait_for(lambda: len(told()) > len(in_flight), timeout=120, what="the notifications again after the restart")
        time.sleep(5)
        keys = told()
        # nothing lost: what was in flight came again, with the same keys (incident, state, version), for
        # a receiver to drop; nothing that was not in flight came twice
        assert in_flight <= set(keys[len(in_flight):]), (in_flight, keys)
        assert all(keys.count(k) == (2 if k in in_flight else 1) for k in set(keys)), keys
    finally:
        worker.stop()
