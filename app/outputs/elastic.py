"""Elasticsearch: the clients of the settings, and ``Elastic``, the one writer -- index creation and
bulk writes under one retry policy (``Elastic.until_done``): connection errors, timeouts, 429 and
5xx back off; what blocks every write (401/403, 413, a mapping conflict, a closed index) stops
indexing with the reason on /health, tried again every CLOGS_ES_BLOCKED_PROBE s; a document that
Elasticsearch refuses for its own sake is returned, to be dead-lettered.  Nothing is skipped, so
the callers commit offsets only after indexing.
"""
import asyncio
import logging
import time

from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError, TransportError
from elasticsearch.serializer import OrjsonSerializer

from app.jsonio import dumps
from app.outputs.mappings import MAPPING, index_settings

log = logging.getLogger(__name__)


def client_options(settings, url=None):
    # orjson for requests and responses: the standard library's json was a tenth of the worker's time (issue 11)
    options = {"hosts": [url or settings.es_url], "request_timeout": 30, "serializer": OrjsonSerializer()}
    if settings.es_api_key:
        options["api_key"] = settings.es_api_key
    elif settings.es_user:
        options["basic_auth"] = (settings.es_user, settings.es_password or "")
    if settings.es_ca_certs:
        options["ca_certs"] = settings.es_ca_certs
    return options


def sync_client(settings, url=None):
    return Elasticsearch(**client_options(settings, url))


def async_client(settings, url=None):
    return AsyncElasticsearch(**client_options(settings, url))


# --- failure classes ------------------------------------------------------------------
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


def retryable(status):
    """Whether a document's failure is tried again as it is: 429 and 5xx."""
    return status == 429 or status >= 500


class WriteHealth:
    """Whether this worker's writes to Elasticsearch are blocked, and why (for /health)."""

    def __init__(self, probe_seconds=15.0):
        self.probe_seconds = probe_seconds
        self.blocked, self.since = None, None

    def block(self, reason):
        if self.blocked != reason:
            log.error("INDEXING STOPPED: %s. Nothing is skipped; retrying every %.0f s until fixed.",
                      reason, self.probe_seconds)
            self.blocked, self.since = reason, time.time()

    def clear(self):
        if self.blocked:
            log.warning("indexing resumed after %.0f s (was: %s)", time.time() - self.since, self.blocked)
        self.blocked, self.since = None, None


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


class NotDone(Exception):
    """Raised by an attempt that Elasticsearch answered, but not for all of it: what failed is tried
    again (``status``, ``kind`` and ``error``: of the first blocking failure, if any)."""

    def __init__(self, message, status, kind, error):
        super().__init__(message)
        self.status, self.kind, self.error = status, kind, error


# What a bulk response keeps: each item's id, status and error -- not its index, version, shards
# and sequence numbers, which the writer never reads (a third of the response to parse).
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


class Elastic:
    """clogs' writes to Elasticsearch: its client, its write health, its retry policy."""

    def __init__(self, settings, client=None, max_delay=30.0, metrics=None):
        self.es = client or async_client(settings)
        self.metrics = metrics   # app/outputs/metrics.py: bulk latency and failures
        self.url, self.max_delay = settings.es_url, max_delay
        self.health = WriteHealth(settings.es_blocked_probe)
        self.index_settings = index_settings(settings)

    async def until_done(self, what, index, attempt):
        """The retry policy: ``await attempt()`` until it returns, and return its result.  Connection
        errors, timeouts, 429, 5xx and other failures of a whole request back off (up to
        ``max_delay`` s, one log line per burst); a blocking failure (``blocking_reason``) turns
        /health red and is tried again every ``health.probe_seconds``."""
        backoff = Backoff(what, self.max_delay)
        while True:
            try:
                result = await attempt()
            except ApiError as exc:
                status, kind, error, detail = exc.meta.status, error_type(exc), exc, f"{exc.meta.status} {error_type(exc)}"
            except (ESConnectionError, TransportError) as exc:
                status, kind, error = None, "", exc
                detail = f"Elasticsearch unreachable at {self.url}: {type(exc).__name__}"
            except NotDone as exc:
                status, kind, error, detail = exc.status, exc.kind, exc.error, str(exc)
            else:
                backoff.succeeded()
                self.health.clear()
                return result
            reason = blocking_reason(status, kind, index, error) if status else None
            if self.metrics is not None:
                failure = "blocked" if reason else ("unreachable" if status is None else "retryable")
                self.metrics.bulk_failures.labels(kind=failure).inc()
            if reason:
                self.health.block(reason)
                await asyncio.sleep(self.health.probe_seconds)
            else:
                await backoff.failed(detail)

    async def ensure_index(self, index, mapping=None):
        """Create the index with its explicit mapping (the line documents' unless ``mapping``) if it
        is missing; wait while Elasticsearch is unreachable or refuses."""
        async def attempt():
            try:
                if not await self.es.indices.exists(index=index):
                    await self.es.indices.create(index=index, mappings=mapping or MAPPING, settings=self.index_settings)
                    log.info("created Elasticsearch index %s", index)
                else:   # an index of an earlier version gets the fields added since (adding is all ES allows)
                    try:
                        await self.es.indices.put_mapping(index=index, properties=(mapping or MAPPING)["properties"])
                    except BadRequestError as exc:   # a field of another type: indexing names the fix
                        log.warning("index %s keeps its own mapping: %s", index, exc)
            except ApiError as exc:
                if not (exc.meta.status == 400 and "resource_already_exists" in str(exc)):
                    raise

        await self.until_done(f"creating or checking index {index}", index, attempt)

    async def bulk_delete(self, index, ids):
        """Delete documents by id under the retry policy (one that is gone already is no failure)."""
        body = b"\n".join([dumps({"delete": {"_index": index, "_id": doc_id}}) for doc_id in ids] + [b""])

        async def attempt():
            response = await self.es.bulk(operations=body, filter_path=BULK_RESPONSE)
            for item in response["items"] if response.get("errors") else ():
                result = item["delete"]
                status = result.get("status", 500)
                if status >= 300 and status != 404:
                    raise NotDone(f"deleting {result['_id']} failed", status, error_type(result.get("error")),
                                  result.get("error"))

        await self.until_done(f"deleting {len(ids)} documents from {index}", index, attempt)

    async def bulk_index(self, index, docs):
        """Index docs (each with an "id") until Elasticsearch has accepted all of them, under the
        retry policy; a bulk refused as too large (413) is split in halves.  Returns the documents
        Elasticsearch rejected for good, each with its error (a 4xx of that document alone)."""
        pending = {doc["id"]: doc for doc in docs}
        rejected = []

        async def attempt():
            nonlocal pending
            started = time.perf_counter()
            try:
                response = await self.es.bulk(operations=bulk_body(index, pending), filter_path=BULK_RESPONSE)
            except ApiError as exc:
                if exc.meta.status == 413 and len(pending) > 1:
                    halves = list(pending.values())
                    half = len(halves) // 2
                    pending = {}
                    rejected.extend(await self.bulk_index(index, halves[:half]))
                    rejected.extend(await self.bulk_index(index, halves[half:]))
                    return
                raise
            if self.metrics is not None:
                self.metrics.bulk_seconds.observe(time.perf_counter() - started)
            retry, failure = {}, None
            for item in response["items"] if response.get("errors") else ():
                result = item["index"]
                doc_id, status = result["_id"], result.get("status", 500)
                if status < 300:
                    continue
                error = result.get("error")
                blocking = blocking_reason(status, error_type(error), index, error)
                if blocking or retryable(status):
                    retry[doc_id] = pending[doc_id]
                    if failure is None or (blocking and not failure[3]):
                        failure = (status, error_type(error), error, blocking)
                else:
                    rejected.append((pending[doc_id], error))
                    if self.metrics is not None:
                        self.metrics.bulk_failures.labels(kind="rejected").inc()
            pending = retry
            if pending:
                status, kind, error, _ = failure
                raise NotDone(f"{len(pending)} documents not accepted yet (429/5xx)", status, kind, error)

        await self.until_done(f"bulk of {len(pending)} documents into {index}", index, attempt)
        return rejected
