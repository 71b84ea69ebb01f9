"""Web inspection on the Faust web server.

GET /health                -> worker status, model version, dead-letter counters
GET /stats/                -> {source: {count, mean, std, threshold, mode, anomalies, patterns, ...}} for every source,
                              gathered from every worker that owns a part of the table
GET /stats/local/          -> the sources of this worker's partitions only
GET /stats/{source}/       -> one source, routed to the worker that owns its partition
GET /deadletter/           -> dead-letter counters of this worker, by reason
"""
import hashlib
import json

import aiohttp

from agents import deadletter
from agents.threshold import policy
from app import settings
from app.faust_app import app, models
from model.online import decide
from tables.stats import memory_table, stats_table


def describe(source, stats):
    calibration, _ = models.scale_of(stats.model_version)
    decision = decide(stats, calibration, policy())
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
    scorer = models.scorer
    return web.json({"status": "ok" if scorer else "starting", "app_id": settings.APP_ID,
                     "model_version": scorer.model_version if scorer else None, "model_swaps": models.swaps,
                     "learning": settings.LEARNING, "url": str(app.conf.canonical_url),
                     "deadletter": dict(deadletter.counters)})


@app.page("/deadletter/")
async def deadletter_counts(web, request):
    return web.json(dict(deadletter.counters))


@app.page("/stats/local/")
async def stats_local(web, request):
    return web.json(local_stats())


@app.page("/stats/")
async def stats_all(web, request):
    merged = local_stats()
    me = str(app.conf.canonical_url).rstrip("/")
    others = {str(url).rstrip("/") for url in app.router.table_metadata(stats_table.name)} - {me}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for url in sorted(others):
            try:
                async with session.get(f"{url}/stats/local/") as response:
                    merged.update(await response.json())
            except (aiohttp.ClientError, TimeoutError) as exc:
                merged.setdefault("_unreachable", []).append(f"{url}: {exc}")
    return web.json(dict(sorted(merged.items())))


@app.page("/stats/{source}/")
@app.table_route(table=stats_table, match_info="source")
async def stats_one(web, request, source):
    if source not in stats_table:
        return web.json({"error": f"unknown source {source!r}"}, status=404)
    return web.json({source: describe(source, stats_table[source])})
