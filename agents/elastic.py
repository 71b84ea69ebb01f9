"""Elasticsearch: the client from settings, the index mappings, and a bulk write that retries what
is retryable and stops, saying why, on what is not (``bulk_index``, ``write_health``)."""
import asyncio
import logging
import time

from elasticsearch import AsyncElasticsearch, Elasticsearch
from elasticsearch import ApiError, ConnectionError as ESConnectionError, TransportError
from elasticsearch.serializer import OrjsonSerializer

from app import settings
from app.jsonio import dumps

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
        # "index": False: kept, sortable and aggregatable (doc values), but no search structure -- for
        # fields people read and chart but never filter on (less work per document, issue 11)
        "line_no": {"type": "long", "index": False},
        "ingested_at": {"type": "date"},
        "scored_at": {"type": "date", "index": False},
        "indexed_at": {"type": "date", "index": False},
        "anomaly_score": {"type": "float"},
        "model_score": {"type": "float", "index": False},
        "pattern_id": {"type": "keyword"},
        "pattern_seen": {"type": "integer", "index": False},
        "is_anomaly": {"type": "boolean"},
        "threshold_used": {"type": "float"},
        "mean_score": {"type": "float"},
        "std_score": {"type": "float"},
        "threshold_mode": {"type": "keyword"},
        "top_tokens": {"type": "keyword"},
        "unknown_tokens": {"type": "integer", "index": False},
        "model_version": {"type": "keyword"},
        "incident_id": {"type": "keyword"},
        "kafka_topic": {"type": "keyword", "index": False},
        "kafka_partition": {"type": "integer", "index": False},
        "kafka_offset": {"type": "long", "index": False},
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
INDEX_SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": settings.ES_REFRESH_INTERVAL}


def client_options(url=None):
    # orjson for requests and responses: the standard library's json was a tenth of the worker's time (issue 11)
    options = {"hosts": [url or settings.ES_URL], "request_timeout": 30, "serializer": OrjsonSerializer()}
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


# --- failure classes ------------------------------------------------------------------
# retryable: connection errors, timeouts, 429 and 5xx -- retried with capped back-off, one log line
# per burst.  blocking: 401/403 (credentials, privileges, an index write block), 413 (a single
# document over http.max_content_length; a larger bulk is split first) and mapping conflicts (the
# index was made with another mapping) -- nothing is skipped: the sink stops, /health turns red
# with the reason, and the same documents are tried again every CLOGS_ES_BLOCKED_PROBE seconds
# until the cause is fixed; offsets are never committed past them.  Any other 4xx of one document
# is that document's fault: it is dead-lettered with Elasticsearch's reason.
MAPPING_ERRORS = ("mapper_parsing_exception", "document_parsing_exception", "strict_dynamic_mapping_exception",
                  "mapper_exception")
INDEX_ERRORS = ("index_closed_exception", "index_not_found_exception", "cluster_block_exception")
FIXES = {
    401: "Elasticsearch rejected the credentials: check CLOGS_ES_USER / CLOGS_ES_PASSWORD or CLOGS_ES_API_KEY",
    403: "Elasticsearch forbids writing to {index}: check the user's index privileges and the index's "
         "write block (index.blocks.write)",
    413: "a document is larger than Elasticsearch's http.max_content_length: raise it, or lower "
         "CLOGS_MAX_LINE_BYTES so such lines are dead-lettered before scoring",
    "mapping": "the index {index} has a mapping clogs cannot write to ({error}): delete or reindex it, "
               "or point CLOGS_INDEX at a new index",
    "index": "the index {index} cannot take writes ({error}): open it, or let the worker create it again "
             "(restart it), or allow index creation (action.auto_create_index)",
}


class WriteHealth:
    """Whether this worker's writes to Elasticsearch are blocked, and why (for /health)."""

    def __init__(self):
        self.blocked, self.since = None, None

    def block(self, reason):
        if self.blocked != reason:
            log.error("INDEXING STOPPED: %s. Nothing is skipped; retrying every %.0f s until fixed.",
                      reason, settings.ES_BLOCKED_PROBE)
            self.blocked, self.since = reason, time.time()

    def clear(self):
        if self.blocked:
            log.warning("indexing resumed after %.0f s (was: %s)", time.time() - self.since, self.blocked)
        self.blocked, self.since = None, None


write_health = WriteHealth()


def error_type(error):
    """The ``type`` of an Elasticsearch error (an item's ``error`` dict or an ApiError)."""
    if isinstance(error, ApiError):
        body = error.body if isinstance(error.body, dict) else {}
        error = body.get("error", {})
    if isinstance(error, dict):
        return str(error.get("type", ""))
    return ""


def blocking_reason(status, kind, index, error=""):
    """The reason writes cannot go on (status and error type of a failure), or None."""
    if status in (401, 403, 413):
        return f"{status}: " + FIXES[status].format(index=index)
    if status == 400 and kind in MAPPING_ERRORS:
        return "400: " + FIXES["mapping"].format(index=index, error=f"{kind}: {str(error)[:200]}")
    if kind in INDEX_ERRORS:   # the whole index, not one document: dead-lettering would empty the stream
        return f"{status}: " + FIXES["index"].format(index=index, error=f"{kind}: {str(error)[:200]}")
    return None


class Backoff:
    """Capped exponential back-off that logs once per burst of failures."""

    def __init__(self, what, max_delay=30.0):
        self.what, self.max_delay = what, max_delay
        self.delay, self.failures, self.started = 0.5, 0, None

    async def failed(self, detail):
        if self.failures == 0:
            self.started = time.monotonic()
            log.warning("%s failed (%s); retrying with back-off up to %.0f s", self.what, detail, self.max_delay)
        self.failures += 1
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.max_delay)

    def succeeded(self):
        if self.failures:
            log.warning("%s succeeded after %d failed attempts in %.1f s", self.what, self.failures,
                        time.monotonic() - self.started)
        self.delay, self.failures = 0.5, 0


async def ensure_index(es, index, max_delay=30.0, mapping=None):
    """Create the index with the explicit mapping (the line documents' unless ``mapping``) if it
    is missing; wait while ES is unreachable or refuses (401/403: /health says why)."""
    backoff = Backoff(f"creating or checking index {index}", max_delay)
    while True:
        try:
            if not await es.indices.exists(index=index):
                await es.indices.create(index=index, mappings=mapping or MAPPING, settings=INDEX_SETTINGS)
                log.info("created Elasticsearch index %s", index)
            backoff.succeeded()
            write_health.clear()
            return
        except ApiError as exc:
            if exc.meta.status == 400 and "resource_already_exists" in str(exc):
                return
            reason = blocking_reason(exc.meta.status, error_type(exc), index, exc)
            if reason:
                write_health.block(reason)
                await asyncio.sleep(settings.ES_BLOCKED_PROBE)
                continue
            await backoff.failed(exc)
        except (ESConnectionError, TransportError) as exc:
            await backoff.failed(f"Elasticsearch unreachable at {settings.ES_URL}: {exc}")


# What a bulk response keeps: each item's id, status and error -- not its index, version, shards
# and sequence numbers, which the sink never reads (a third of the response to parse).
BULK_RESPONSE = ["errors", "items.*._id", "items.*.status", "items.*.error"]


def bulk_body(index, docs):
    """The NDJSON body of a bulk index request, encoded once (``docs``: id -> document with its "id")."""
    parts = []
    for doc_id, doc in docs.items():
        parts.append(dumps({"index": {"_index": index, "_id": doc_id}}))
        del doc["id"]   # encoded without its "id" (no copy of each document), then given it back
        try:
            parts.append(dumps(doc))
        finally:
            doc["id"] = doc_id
    parts.append(b"")
    return b"\n".join(parts)


async def bulk_index(es, index, docs, max_delay=30.0):
    """Index docs (each with an "id") until Elasticsearch has accepted all of them.

    Returns the documents Elasticsearch rejected for good, each with its error (a 4xx of that
    document alone), so the caller can dead-letter them.  Never raises, never gives up on a
    document for a cause outside it: retryable failures are retried with back-off, blocking ones
    (see above) stop here, with /health red, until fixed -- so offsets are committed only after
    indexing.  A bulk refused as too large (413) is split in halves.
    """
    pending = {doc["id"]: doc for doc in docs}
    rejected = []
    backoff = Backoff(f"bulk of {len(pending)} documents into {index}", max_delay)
    while pending:
        try:
            response = await es.bulk(operations=bulk_body(index, pending), filter_path=BULK_RESPONSE)
        except ApiError as exc:
            status = exc.meta.status
            if status == 413 and len(pending) > 1:
                docs = list(pending.values())
                half = len(docs) // 2
                return rejected + await bulk_index(es, index, docs[:half], max_delay) + \
                    await bulk_index(es, index, docs[half:], max_delay)
            reason = blocking_reason(status, error_type(exc), index, exc)
            if reason:
                write_health.block(reason)
                await asyncio.sleep(settings.ES_BLOCKED_PROBE)
            else:
                await backoff.failed(f"{status} {error_type(exc)}")
            continue
        except (ESConnectionError, TransportError) as exc:
            await backoff.failed(f"Elasticsearch unreachable at {settings.ES_URL}: {type(exc).__name__}")
            continue
        retry, reason = {}, None
        for item in response["items"] if response.get("errors") else ():
            result = item["index"]
            doc_id, status = result["_id"], result.get("status", 500)
            if status < 300:
                continue
            error = result.get("error")
            blocking = blocking_reason(status, error_type(error), index, error)
            if blocking or status == 429 or status >= 500:
                retry[doc_id] = pending[doc_id]
                reason = reason or blocking
            else:
                rejected.append((pending[doc_id], error))
        pending = retry
        if reason:
            write_health.block(reason)
            await asyncio.sleep(settings.ES_BLOCKED_PROBE)
        elif pending:
            await backoff.failed(f"{len(pending)} documents not accepted yet (429/5xx)")
        else:
            backoff.succeeded()
            write_health.clear()
    return rejected
