"""Elasticsearch: the client from settings, the index mapping, and a bulk write that retries until accepted."""
import asyncio
import logging

from elasticsearch import AsyncElasticsearch, Elasticsearch
from elasticsearch import ApiError, ConnectionError as ESConnectionError, TransportError

from app import settings

log = logging.getLogger(__name__)

MAPPING = {
    "dynamic": "false",
    "properties": {
        # Elastic Common Schema names (agents/documents.py fills them in)
        "@timestamp": {"type": "date"},          # the time the line states, else the ingest time
        "timestamp_source": {"type": "keyword"},  # "line" or "ingest": where @timestamp came from
        "message": {"type": "text"},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "log": {"properties": {"file": {"properties": {"path": {"type": "keyword"}}},
                               "level": {"type": "keyword"}}},
        "event": {"properties": {"dataset": {"type": "keyword"}, "ingested": {"type": "date"}}},
        # clogs' own
        "source": {"type": "keyword"},
        "line_no": {"type": "long"},
        "ingested_at": {"type": "date"},
        "scored_at": {"type": "date"},
        "indexed_at": {"type": "date"},
        "anomaly_score": {"type": "float"},
        "model_score": {"type": "float"},
        "pattern_id": {"type": "keyword"},
        "pattern_seen": {"type": "integer"},
        "is_anomaly": {"type": "boolean"},
        "threshold_used": {"type": "float"},
        "mean_score": {"type": "float"},
        "std_score": {"type": "float"},
        "threshold_mode": {"type": "keyword"},
        "top_tokens": {"type": "keyword"},
        "unknown_tokens": {"type": "integer"},
        "model_version": {"type": "keyword"},
        "incident_id": {"type": "keyword"},
        "kafka_topic": {"type": "keyword"},
        "kafka_partition": {"type": "integer"},
        "kafka_offset": {"type": "long"},
    },
}
INCIDENT_MAPPING = {
    "dynamic": "false",
    "properties": {
        "@timestamp": {"type": "date"},        # = last_seen, so Kibana's time filter shows live incidents
        "incident_id": {"type": "keyword"},
        "source": {"type": "keyword"},
        "event": {"properties": {"dataset": {"type": "keyword"}}},
        "kind": {"type": "keyword"},           # content | rate | silence
        "status": {"type": "keyword"},         # open | acknowledged | normal | suppressed
        "pattern": {"type": "keyword"},
        "summary": {"type": "text"},
        "first_seen": {"type": "date"},
        "last_seen": {"type": "date"},
        "updated_at": {"type": "date"},
        "suppressed_until": {"type": "date"},
        "count": {"type": "long"},
        "max_score": {"type": "float"},
        "threshold_used": {"type": "float"},
        "top_tokens": {"type": "keyword"},
        "log": {"properties": {"level": {"type": "keyword"}}},
        "observed": {"type": "float"},         # rate: lines in the window; silence: seconds without a line
        "expected": {"type": "float"},         # rate: usual lines per window; silence: the usual longest gap
        "examples": {"type": "object", "enabled": False},  # [{doc_id, message, anomaly_score, at}]
    },
}
INDEX_SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"}


def client_options(url=None):
    options = {"hosts": [url or settings.ES_URL], "request_timeout": 30}
    if settings.ES_API_KEY:
        options["api_key"] = settings.ES_API_KEY
    elif settings.ES_USER:
        options["basic_auth"] = (settings.ES_USER, settings.ES_PASSWORD or "")
    if settings.ES_CA_CERTS:
        options["ca_certs"] = settings.ES_CA_CERTS
    return options


def sync_client(url=None):
    return Elasticsearch(**client_options(url))


def async_client(url=None):
    return AsyncElasticsearch(**client_options(url))


async def ensure_index(es, index, max_delay=30.0, mapping=None):
    """Create the index with the explicit mapping (the line documents' unless ``mapping``) if it
    is missing; wait while ES is unreachable."""
    delay = 0.5
    while True:
        try:
            if not await es.indices.exists(index=index):
                await es.indices.create(index=index, mappings=mapping or MAPPING, settings=INDEX_SETTINGS)
                log.info("created Elasticsearch index %s", index)
            return
        except ApiError as exc:
            if exc.meta.status == 400 and "resource_already_exists" in str(exc):
                return
            log.warning("Elasticsearch refused to create %s (%s); retrying in %.1f s", index, exc, delay)
        except (ESConnectionError, TransportError) as exc:
            log.warning("Elasticsearch unreachable at %s (%s); retrying in %.1f s", settings.ES_URL, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)


async def bulk_index(es, index, docs, max_delay=30.0):
    """Index docs (each with an "id") until Elasticsearch has accepted all of them.

    Returns the documents Elasticsearch rejected for good (4xx other than 429, e.g. a mapping
    conflict), so the caller can dead-letter them.  Never raises for an unreachable cluster:
    it waits with exponential back-off, so the offsets are committed only after indexing.
    """
    pending = {doc["id"]: doc for doc in docs}
    rejected = []
    delay = 0.5
    while pending:
        operations = []
        for doc_id, doc in pending.items():
            operations.append({"index": {"_index": index, "_id": doc_id}})
            operations.append({k: v for k, v in doc.items() if k != "id"})
        try:
            response = await es.bulk(operations=operations)
        except (ESConnectionError, TransportError, ApiError) as exc:
            log.warning("bulk of %d documents failed (%s); retrying in %.1f s", len(pending), exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        retry = {}
        for item in response["items"]:
            result = item["index"]
            doc_id, status = result["_id"], result.get("status", 500)
            if status < 300:
                continue
            if status == 429 or status >= 500:
                retry[doc_id] = pending[doc_id]
            else:
                rejected.append((pending[doc_id], result.get("error")))
        pending = retry
        if pending:
            log.warning("%d documents not accepted yet; retrying in %.1f s", len(pending), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
    return rejected
