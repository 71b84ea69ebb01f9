"""The live dashboard page (app/static) in headless Chromium, against a canned API.

A tiny aiohttp server serves the three static files and canned JSON shaped like the
worker's API; no Kafka, Elasticsearch or worker is needed. Skips without Chromium.
With CLOGS_SCREENSHOTS=1 the screenshot goes to docs/dashboard.png.
"""
import asyncio
import copy
import math
import os
import socket
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser, find_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "app" / "static"
CHARTS = 4   # 2 sources x (score chart + rate chart)

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="no chromium/chromium-browser/google-chrome on PATH (apt-get install chromium)")

XSS_SUMMARY = "odd line <script>window.__pwned = 1</script> & <b>bold</b>"
XSS_MESSAGE = 'GET /login?next=<img src=x onerror="window.__pwned = 2"> & done'

STATUS_OF = {"normal": "normal", "suppress": "suppressed", "ack": "acknowledged", "reopen": "open"}


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


def canned_series(source, now, n=30):
    points = []
    phase = 0.0 if source == "api-gateway" else 1.3
    for i in range(n):
        t = now - timedelta(minutes=n - i)
        lines = int(120 + 60 * math.sin(i / 4 + phase)) + (150 if i == 22 else 0)
        anomalies = 3 if i in (9, 22) else 0
        empty = source == "auth-service" and i in (14, 15)    # buckets with no lines: null scores
        score = None if empty else round(0.3 + 0.1 * math.sin(i / 3 + phase) + (0.6 if anomalies else 0), 3)
        points.append({"t": iso(t), "lines": 0 if empty else lines, "anomalies": anomalies, "max_score": score,
                       "avg_score": None if empty else round(score * 0.6, 3),
                       "threshold": None if empty else round(0.7 + 0.02 * math.cos(i / 5), 3)})
    return {"source": source, "interval_seconds": 60.0, "points": points}


def canned_incidents(now):
    return [
        {"incident_id": "inc-1", "source": "api-gateway", "kind": "content", "status": "open",
         "pattern": "GET /login?next=<*> & done", "summary": XSS_SUMMARY,
         "first_seen": iso(now - timedelta(minutes=20)), "last_seen": iso(now - timedelta(minutes=8)), "count": 7,
         "max_score": 0.934, "top_tokens": ["<img", "onerror", "&"], "suppressed_until": None,
         "event": {"dataset": "api-gateway", "severity": 82}, "severity_band": "critical",
         "examples": [{"doc_id": "d1", "message": XSS_MESSAGE, "anomaly_score": 0.934, "at": iso(now - timedelta(minutes=8))},
                      {"doc_id": "d2", "message": "<script>alert(1)</script>", "anomaly_score": 0.81,
                       "at": iso(now - timedelta(minutes=12))}]},
        {"incident_id": "inc-2", "source": "auth-service", "kind": "rate", "status": "open",
         "pattern": "", "summary": "line rate 3.1x the baseline", "first_seen": iso(now - timedelta(minutes=9)),
         "last_seen": iso(now - timedelta(minutes=2)), "count": 2, "max_score": None, "top_tokens": [],
         "suppressed_until": None, "examples": [], "event": {"dataset": "auth-service", "severity": 40},
         "severity_band": "minor"},
        {"incident_id": "inc-3", "source": "auth-service", "kind": "content", "status": "open",
         "pattern": "ERROR token store <*> unreachable", "summary": "new error pattern: ERROR token store unreachable",
         "first_seen": iso(now - timedelta(minutes=3)), "last_seen": iso(now - timedelta(minutes=1)), "count": 12,
         "max_score": 2.41, "top_tokens": ["unreachable"], "suppressed_until": None,
         "examples": [{"doc_id": "d3", "message": "ERROR token store redis-1 unreachable", "anomaly_score": 2.41,
                       "at": iso(now - timedelta(minutes=1))}],
         "event": {"dataset": "auth-service", "severity": 82}, "severity_band": "critical"},
    ]


class CannedAPI:
    """The worker's API with canned data; feedback changes an incident's status after a delay, like Kafka."""

    def __init__(self, feedback_delay=1.5):
        self.feedback_delay = feedback_delay
        self.reset()

    def reset(self):
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.series = {s: canned_series(s, now) for s in ("auth-service", "api-gateway")}
        self.incidents = canned_incidents(now)
        self.feedback = []
        self.requests = []

    def app(self):
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/health", self.health)
        app.router.add_get("/api/sources", self.sources)
        app.router.add_get("/api/series", self.series_view)
        app.router.add_get("/api/incidents", self.incidents_view)
        app.router.add_post("/api/feedback", self.feedback_view)
        return app

    async def index(self, request):
        return web.FileResponse(STATIC / "dashboard.html")

    async def health(self, request):
        return web.json_response({"status": "ok", "app_id": "clogs-test", "model_version": "v3-abc123", "learning": True})

    async def sources(self, request):
        self.requests.append(str(request.rel_url))
        out = {}
        for name, series in self.series.items():
            pts = series["points"]
            out[name] = {"count": sum(p["lines"] for p in pts), "anomalies": sum(p["anomalies"] for p in pts),
                         "threshold": pts[-1]["threshold"], "mode": "adaptive", "mean": 0.31, "std": 0.08, "patterns": 42}
        return web.json_response({"sources": out})

    async def series_view(self, request):
        self.requests.append(str(request.rel_url))
        source = request.query.get("source")
        if source not in self.series:
            return web.json_response({"error": f"unknown source {source}"}, status=404)
        return web.json_response(self.series[source])

    async def incidents_view(self, request):
        self.requests.append(str(request.rel_url))
        status, source = request.query.get("status", "open"), request.query.get("source")
        least = int(request.query.get("min_severity", "0"))
        found = [i for i in self.incidents if (status == "all" or i["status"] == status)
                 and (not source or i["source"] == source) and i["event"]["severity"] >= least]
        return web.json_response({"incidents": copy.deepcopy(found)})

    async def feedback_view(self, request):
        body = await request.json()
        self.feedback.append(body)
        incident = next((i for i in self.incidents if i["incident_id"] == body.get("incident_id")), None)
        if incident is None or body.get("action") not in STATUS_OF:
            return web.json_response({"error": "unknown incident or action"}, status=400)
        asyncio.get_running_loop().call_later(self.feedback_delay, incident.update, {"status": STATUS_OF[body["action"]]})
        return web.json_response({"ok": True, "incident_id": incident["incident_id"], "action": body["action"]})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api():
    api = CannedAPI()
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(api.app(), access_log=None)

    async def start():
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{port}"
    yield api
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture
def page(api, browser):
    """The dashboard, freshly loaded against reset canned data, after its first complete refresh."""
    api.reset()
    browser._errors.clear()
    browser.open(api.url + "/?refresh=3")
    browser.wait_for("document.body.dataset.loaded === '1'", timeout=15)
    browser.wait_for(f"document.querySelectorAll('canvas.chart[data-drawn]').length === {CHARTS}", timeout=10)
    return browser


# counts pixels that differ from the canvas's top-left pixel: > 0 means something was drawn
INK = """[...document.querySelectorAll('canvas.chart')].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 0; i < d.length; i += 4)
    if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2] || d[i + 3] !== d[3]) ink++;
  return {source: c.closest('.card').dataset.source, chart: c.dataset.chart, drawn: +c.dataset.drawn, ink};
})"""


def test_page_loads_and_draws(page, api):
    assert page.console_errors() == []
    assert page.evaluate("document.body.dataset.errors") == "0"
    assert page.evaluate("document.getElementById('health-status').textContent") == "ok"
    assert page.evaluate("document.getElementById('model-version').textContent") == "v3-abc123"
    assert page.evaluate("[...document.querySelectorAll('.card')].map(c => c.dataset.source)") == \
        ["api-gateway", "auth-service"]
    charts = page.evaluate(INK)
    assert len(charts) == CHARTS
    for chart in charts:
        assert chart["drawn"] > 0, chart
        assert chart["ink"] > 200, chart
    assert any("minutes=30" in r and "buckets=60" in r for r in api.requests if r.startswith("/api/series"))


def test_api_strings_are_text_not_html(page):
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("document.querySelectorAll('#incidents tbody script, #incidents tbody img, #incidents tbody b').length") == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 1     # only dashboard.js
    row = 'tr[data-incident-id="inc-1"]'
    assert page.evaluate(f"document.querySelector('{row} td.summary').textContent").startswith(XSS_SUMMARY)
    page.click(f"{row} details summary")
    page.wait_for(f"document.querySelector('{row} details').open")
    assert page.evaluate(f"document.querySelector('{row} ul.examples code').textContent") == XSS_MESSAGE
    assert page.evaluate("document.body.innerText").count("<script>") >= 2
    assert page.evaluate("window.__pwned === undefined")
    assert page.console_errors() == []


def test_feedback_normal_changes_status(page, api):
    row = 'tr[data-incident-id="inc-1"]'
    assert page.evaluate("[...document.querySelectorAll('#incidents tbody tr')].map(r => r.dataset.incidentId)") == \
        ["inc-3", "inc-1", "inc-2"]    # the most severe first, then the newest
    assert page.evaluate(f"document.querySelector('{row} .status').textContent") == "open"
    page.click(f'{row} button[data-action="normal"]')
    page.wait_for(f"document.querySelector('{row} .status').textContent === 'normal'", timeout=8)
    assert api.feedback == [{"incident_id": "inc-1", "action": "normal"}]
    assert page.evaluate(f"document.querySelector('{row} button[data-action=normal]').disabled")
    # the other incident is untouched; the status filter switches to all incidents
    assert page.evaluate("document.querySelector('tr[data-incident-id=\"inc-2\"] .status').textContent") == "open"
    page.evaluate("(() => { const s = document.getElementById('status-filter'); s.value = 'all';"
                  " s.dispatchEvent(new Event('change')); })()")
    page.wait_for("document.getElementById('incident-count').textContent.includes('shown')")
    assert any(r.startswith("/api/incidents?status=all") for r in api.requests)
    assert page.console_errors() == []


def test_incidents_sort_by_severity_and_filter_by_source_and_severity(page, api):
    rows = "[...document.querySelectorAll('#incidents tbody tr')].map(r => r.dataset.incidentId)"
    assert page.evaluate(rows) == ["inc-3", "inc-1", "inc-2"]
    assert page.evaluate("document.querySelector('tr[data-incident-id=\"inc-2\"] td.severity').textContent") == \
        "40minor"
    page.evaluate("(() => { const s = document.getElementById('severity-filter'); s.value = '50';"
                  " s.dispatchEvent(new Event('change')); })()")
    page.wait_for(f"{rows}.length === 2")
    assert page.evaluate(rows) == ["inc-3", "inc-1"]
    assert any("min_severity=50" in r for r in api.requests)
    page.wait_for("[...document.getElementById('source-filter').options].length === 3")   # all + two sources
    page.evaluate("(() => { const s = document.getElementById('source-filter'); s.value = 'auth-service';"
                  " s.dispatchEvent(new Event('change')); })()")
    page.wait_for(f"{rows}.length === 1")
    assert page.evaluate(rows) == ["inc-3"]
    assert any("source=auth-service" in r for r in api.requests)
    assert page.console_errors() == []


def test_screenshot(page, tmp_path):
    page.click('tr[data-incident-id="inc-1"] details summary')
    page.wait_for("document.querySelector('tr[data-incident-id=\"inc-1\"] details').open")
    target = ROOT / "docs" / "dashboard.png" if os.environ.get("CLOGS_SCREENSHOTS") == "1" else tmp_path / "dashboard.png"
    path = page.screenshot(target, 1280, 900)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert page.console_errors() == []
