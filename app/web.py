"""Web inspection on the Faust web server.

GET /health                -> worker status, model version, dead-letter counters
GET /stats/                -> {source: {count, mean, std, threshold, mode, anomalies, patterns, ...}} for every source,
                              gathered from every worker that owns a part of the table
GET /stats/local/          -> the sources of this worker's partitions only
GET /stats/{source}/       -> one source, routed to the worker that owns its partition
GET /deadletter/           -> dead-letter counters of this worker, by reason
GET /metrics               -> Prometheus metrics of this worker (app/outputs/metrics.py)

The dashboard (``GET /``: app/static/, no build step, nothing from the internet) and its API:
GET  /api/sources          -> {"sources": /stats/ of every worker}
GET  /api/series?source=S&minutes=30&buckets=60 -> score, threshold and line rate over time (Elasticsearch)
GET  /api/incidents?status=open|active|all|...&source=S&min_severity=0-100&size=N -> incidents, the most
                              severe first, then the newest
POST /api/feedback {"incident_id", "action": normal|suppress|ack|reopen, "for": "2h"} -> the feedback topic
"""
import hashlib
import json
from pathlib import Path

import aiohttp
import faust
from elasticsearch import ApiError, ConnectionError as ESConnectionError, TransportError

from agents import deadletter
from app.faust_app import app, elastic, feedback_topic, metrics, models, names, redactor, settings
from app.outputs import queries
from app.settings import incidents_index
from app.webauth import auth_headers
from model.incidents import STATUSES
from model.online import Policy, decide
from model.severity import BANDS, band, incident_severity
from prometheus_client.core import GaugeMetricFamily

from tables.stats import incidents_table, memory_table, stats_table

POLICY = Policy.of(settings)
BAND_NAMES = [name for name, _ in reversed(BANDS)]


def describe(source, stats):
    calibration, _ = models.scale_of(stats.model_version)
    decision = decide(stats, calibration, POLICY)
    memory = memory_table.get(source)
    return {"count": stats.count, "mean": stats.mean, "std": stats.std, "threshold": decision.threshold,
            "mode": decision.mode, "anomalies": stats.anomalies, "baseline_lines": stats.n,
            "last_offset": stats.last_offset, "model_version": stats.model_version,
            "patterns": len(memory.patterns) if memory else 0, "learned_tokens": len(memory.tokens) if memory else 0,
            "memory_digest": memory_digest(memory)}


def memory_digest(memory):
    """A short fingerprint of a source's learning memory: equal digests, equal memories."""
    if not memory:
        return None
    payload = json.dumps([memory.patterns, memory.tokens, memory.last_offset, memory.candidates], sort_keys=True)
    return hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()


def local_stats():
    return {source: describe(source, stats) for source, stats in stats_table.items()}


@app.page("/health")
async def health(web, request):
    """200 with status "ok" (or "starting" while the model loads); 503 with status "red" and the
    reason while indexing is stopped (app/outputs/elastic.py: credentials, write block, mapping...)."""
    scorer, health = models.scorer, elastic().health
    if health.blocked:
        return web.json({"status": "red", "reason": health.blocked, "since": health.since,
                         "app_id": settings.app_id, "model_version": scorer.model_version if scorer else None,
                         "deadletter": dict(deadletter.counters)}, status=503)
    return web.json({"status": "ok" if scorer else "starting", "app_id": settings.app_id,
                     "model_version": scorer.model_version if scorer else None, "model_swaps": models.swaps,
                     "learning": settings.learning, "url": str(app.conf.canonical_url),
                     "deadletter": dict(deadletter.counters), "redactions": dict(redactor().counts)})


def worker_metrics():
    """The families only the worker's tables and consumer know, gathered at each scrape: open
    incidents per severity band, incidents held per status, each named source's learning progress,
    consumer lag per partition."""
    open_by_band = dict.fromkeys(BAND_NAMES, 0)
    held = dict.fromkeys(STATUSES, 0)
    for incident in incidents_table.values():
        held[incident.get("status")] = held.get(incident.get("status"), 0) + 1
        if incident.get("status") == "open":
            open_by_band[band(incident_severity(incident))] += 1
    opened = GaugeMetricFamily("clogs_open_incidents", "Open incidents of this worker's sources, by severity band",
                               labels=["band"])
    for name, count in open_by_band.items():
        opened.add_metric([name], count)
    yield opened
    table = GaugeMetricFamily("clogs_incidents_held", "Incidents in this worker's table, by status (resolved ones "
                              "leave it after CLOGS_INCIDENT_RETENTION_SECONDS)", labels=["status"])
    for status, count in held.items():
        table.add_metric([status], count)
    yield table
    learning = GaugeMetricFamily("clogs_source_learning_progress", "Share of a new source's learning period "
                                 "done (1: its own statistics judge it), named sources only", labels=["source"])
    named = metrics().sources.labels
    for source, stats in stats_table.items():
        if source in named:
            learning.add_metric([source], min(1.0, stats.count / max(settings.learning_lines, 1)))
    yield learning
    lag = GaugeMetricFamily("clogs_consumer_lag", "Records not yet committed, per topic partition this worker "
                            "reads", labels=["topic", "partition"])
    consumer = app.consumer
    for tp in sorted(consumer.assignment()):
        if tp.topic in (names.log, names.scored):
            committed, end = consumer._committed_offset.get(tp), consumer.highwater(tp)
            if committed is not None and end is not None:
                lag.add_metric([tp.topic, str(tp.partition)], max(0, end - committed))
    yield lag


metrics().hooks.append(worker_metrics)


@app.page("/metrics")
async def prometheus_metrics(web, request):
    body, content_type = metrics().render()
    return web.bytes(body, headers={"Content-Type": content_type})


@app.page("/deadletter/")
async def deadletter_counts(web, request):
    return web.json(dict(deadletter.counters))


@app.page("/stats/local/")
async def stats_local(web, request):
    return web.json(local_stats())


async def all_stats():
    """/stats/ of every worker that owns a part of the table, merged."""
    merged = local_stats()
    me = str(app.conf.canonical_url).rstrip("/")
    others = {str(url).rstrip("/") for url in app.router.table_metadata(stats_table.name)} - {me}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), headers=auth_headers(settings.web_token)) as session:
        for url in sorted(others):
            try:
                async with session.get(f"{url}/stats/local/") as response:
                    merged.update(await response.json())
            except (aiohttp.ClientError, TimeoutError) as exc:
                merged.setdefault("_unreachable", []).append(f"{url}: {exc}")
    return dict(sorted(merged.items()))


@app.page("/stats/")
async def stats_all(web, request):
    return web.json(await all_stats())


@app.page("/stats/{source}/")
@app.table_route(table=stats_table, match_info="source")
async def stats_one(web, request, source):
    if source not in stats_table:
        return web.json({"error": f"unknown source {source!r}"}, status=404)
    return web.json({source: describe(source, stats_table[source])})


# --- the dashboard ----------------------------------------------------------------------
STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".html": "text/html", ".js": "application/javascript", ".css": "text/css", ".png": "image/png"}


def es():
    """The web pages' Elasticsearch client: the worker's writer's, made on first use (never at import)."""
    return elastic().es


def static_response(web, name):
    path = STATIC / name
    if path.parent != STATIC or not path.is_file():
        return web.json({"error": f"no such file {name!r}"}, status=404)
    return web.bytes(path.read_bytes(), content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"))


@app.page("/")
async def dashboard(web, request):
    return static_response(web, "dashboard.html")


@app.page("/static/{name}")
async def static_file(web, request, name):
    return static_response(web, name)


def query_int(request, name, default, low, high):
    try:
        return min(high, max(low, int(request.query.get(name, default))))
    except ValueError:
        return default


async def from_elasticsearch(web, call):
    try:
        return web.json(await call)
    except ValueError as exc:
        return web.json({"error": str(exc)}, status=400)
    except (ESConnectionError, TransportError, ApiError) as exc:
        return web.json({"error": f"Elasticsearch at {settings.es_url}: {exc}"}, status=502)


@app.page("/api/sources")
async def api_sources(web, request):
    merged = await all_stats()
    return web.json({"sources": {k: v for k, v in merged.items() if not k.startswith("_")},
                     "unreachable": merged.get("_unreachable", [])})


@app.page("/api/series")
async def api_series(web, request):
    source = request.query.get("source")
    if not source:
        return web.json({"error": "source= is required"}, status=400)
    return await from_elasticsearch(web, queries.series(es(), settings.index, source, query_int(request, "minutes", 30, 1, 7 * 24 * 60),
                                                        query_int(request, "buckets", 60, 1, 500)))


@app.page("/api/incidents")
async def api_incidents(web, request):
    async def listing():
        return {"incidents": await queries.incidents(es(), incidents_index(settings), request.query.get("status", "open"),
                                                     request.query.get("source") or None,
                                                     query_int(request, "size", 100, 1, 1000),
                                                     query_int(request, "min_severity", 0, 0, 100))}
    return await from_elasticsearch(web, listing())


@app.page("/api/feedback")
class FeedbackView(faust.web.View):
    """POST: an operator's feedback on an incident, through the feedback topic to its source's worker."""

    async def post(self, request):
        if request.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            # a cross-site form or no-cors fetch cannot send this type without a CORS preflight,
            # which this server does not grant: another site cannot make a browser send feedback
            return self.json({"error": "send JSON with Content-Type: application/json"}, status=415)
        try:
            body = await request.json()
            incident = await queries.find_incident(es(), incidents_index(settings), str(body.get("incident_id", "")))
            if incident is None:
                return self.json({"error": f"unknown incident {body.get('incident_id')!r}"}, status=404)
            key, value = queries.feedback_message(incident, body.get("action"), body.get("for"))
        except (ValueError, AttributeError, OverflowError) as exc:
            return self.json({"error": str(exc)}, status=400)
        except (ESConnectionError, TransportError, ApiError) as exc:
            return self.json({"error": f"Elasticsearch at {settings.es_url}: {exc}"}, status=502)
        await feedback_topic.send(key=key, value=value)
        return self.json({"ok": True, "incident_id": incident["incident_id"], "action": value["action"],
                          "until": value["until"]})
