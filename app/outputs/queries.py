"""Reading clogs' results back from Elasticsearch, and sending feedback: the one implementation
behind ``clogs report``, ``clogs feedback`` and the dashboard's API (app/web.py).

* ``incidents(es, index, status, source, size, min_severity)``: incidents, the most severe first
  (``event.severity``), then the newest (``last_seen``);
* ``find_incident(es, index, incident_id)``;
* ``series(es, index, source, minutes, buckets)``: per time bucket (by ingest time, so a replayed log
  charts when it arrived) the line count, anomalies, max and mean score and mean threshold;
* ``feedback_message(incident, action, duration)``: the feedback topic's record; its key is the
  incident's source (JSON, like the scored topic), so it reaches the worker that owns the source.
"""
import json
from datetime import datetime, timedelta, timezone

from elasticsearch import NotFoundError

from app.kafka.admin import start_client
from app.kafka.security import client_options
from app.settings import kafka_bootstrap, topics
from model.eventtime import iso
from model.incidents import ACTIONS, STATUSES, parse_duration


SEVERITY_FIRST = [{"event.severity": {"order": "desc", "missing": "_last", "unmapped_type": "long"}},
                  {"last_seen": "desc"}]


async def incidents(es, index, status="open", source=None, size=100, min_severity=0):
    """``status``: one of STATUSES, "all", or "active" (open or acknowledged); ``min_severity``:
    0-100, only incidents at least that severe."""
    filters = []
    if status == "active":
        filters.append({"terms": {"status": ["open", "acknowledged"]}})
    elif status != "all":
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: one of {', '.join(STATUSES)}, active, all")
        filters.append({"term": {"status": status}})
    if source:
        filters.append({"term": {"source": source}})
    if min_severity:
        filters.append({"range": {"event.severity": {"gte": int(min_severity)}}})
    try:
        result = await es.search(index=index, size=size, query={"bool": {"filter": filters}}, sort=SEVERITY_FIRST)
    except NotFoundError:
        return []   # no incident yet: the index is created when the worker starts
    return [hit["_source"] for hit in result["hits"]["hits"]]


async def find_incident(es, index, incident_id):
    try:
        return (await es.get(index=index, id=incident_id))["_source"]
    except NotFoundError:
        return None


async def series(es, index, source, minutes=30, buckets=60):
    end = datetime.now(timezone.utc)
    start = end - timedelta(minutes=minutes)
    interval = max(1, int(minutes * 60 / buckets))
    result = await es.search(
        index=index, size=0,
        query={"bool": {"filter": [{"term": {"source": source}},
                                   {"range": {"ingested_at": {"gte": iso(start), "lte": iso(end)}}}]}},
        aggs={"t": {"date_histogram": {"field": "ingested_at", "fixed_interval": f"{interval}s",
                                       "min_doc_count": 0, "extended_bounds": {"min": iso(start), "max": iso(end)}},
                    "aggs": {"anomalies": {"filter": {"term": {"is_anomaly": True}}},
                             "max_score": {"max": {"field": "anomaly_score"}},
                             "avg_score": {"avg": {"field": "anomaly_score"}},
                             "threshold": {"avg": {"field": "threshold_used"}}}}})
    points = [{"t": b["key_as_string"], "lines": b["doc_count"], "anomalies": b["anomalies"]["doc_count"],
               "max_score": b["max_score"]["value"], "avg_score": b["avg_score"]["value"],
               "threshold": b["threshold"]["value"]} for b in result["aggregations"]["t"]["buckets"]]
    return {"source": source, "interval_seconds": float(interval), "points": points}


def feedback_message(incident, action, duration=None, now=None):
    """(key, value) of a feedback record for ``incident`` (a document of the incidents index)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    now = now or datetime.now(timezone.utc)
    until = None
    if action == "suppress":
        until = iso(now + parse_duration(duration or "2h"))
    value = {"incident_id": incident["incident_id"], "source": incident["source"], "kind": incident["kind"],
             "pattern": incident["pattern"], "action": action, "until": until, "at": iso(now)}
    return incident["source"], value


async def send_feedback(settings, key, value):
    """Produce one feedback record (from the CLI; a worker's page uses its own producer)."""
    from aiokafka import AIOKafkaProducer
    from faust.serializers import codecs   # the worker's own key codec: the same partition as the source

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap(settings), acks="all", **client_options(settings))
    await start_client(settings, producer)
    try:
        await producer.send_and_wait(topics(settings).feedback, key=codecs.dumps("json", key),
                                     value=json.dumps(value).encode())
    finally:
        await producer.stop()
