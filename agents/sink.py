"""Indexing into Elasticsearch: ``index_batch`` (decided lines by log topic-partition-offset, incidents
by id: a replay overwrites, never duplicates), used by the threshold agent for its own batches, and
the sink agent that indexes what the results topic carries (the incidents that ticks and feedback
change).  Both return only after Elasticsearch accepted the batch, so offsets never run ahead of it.
"""
import time
from datetime import datetime, timezone

from agents import deadletter
from app.faust_app import app, elastic, metrics, redactor, results_topic, settings
from app.outputs.documents import line_document
from app.outputs.mappings import INCIDENT_MAPPING
from app.settings import incidents_index
from model.eventtime import iso, parse_iso

SINK_BATCH = 20     # result messages per bulk cycle
BULK_DOCS = 2000    # documents per bulk request


async def indexing_client():
    """The worker's Elasticsearch writer, with both indices there (made if missing)."""
    writer = elastic()
    await writer.ensure_index(settings.index)
    await writer.ensure_index(incidents_index(settings), mapping=INCIDENT_MAPPING)
    return writer


async def index_batch(writer, docs, incidents):
    """Decided lines (model/online.py ``result_document``) and incident documents
    (app/outputs/documents.py ``incident_document``, in order: a later state of an incident replaces an
    earlier one) into their indices; rejected documents go to the dead-letter topic."""
    if settings.anomalies_only:
        docs = [d for d in docs if d["is_anomaly"]]
    indexed_at = iso(datetime.now(timezone.utc))
    docs = [line_document(doc, redactor()) for doc in docs]   # new dicts: stamped in place
    for doc in docs:
        doc["indexed_at"] = indexed_at
    latest = {}
    for incident in incidents:
        latest[incident["incident_id"]] = dict(incident, id=incident["incident_id"])
    await index(writer, settings.index, docs)
    await index(writer, incidents_index(settings), list(latest.values()))
    observe_lag(docs)


def observe_lag(docs):
    """Each indexed line's lag, from its ingest to now (its bulk request was accepted)."""
    now, stamps, histogram = time.time(), {}, metrics().lag_seconds
    for doc in docs:
        text = doc.get("ingested_at")
        if text not in stamps:
            stamp = parse_iso(text)
            stamps[text] = stamp.timestamp() if stamp else None
        if stamps[text] is not None:
            histogram.observe(max(0.0, now - stamps[text]))


@app.agent(results_topic, concurrency=1)
async def index_results(stream):
    writer = await indexing_client()
    async for messages in stream.take(SINK_BATCH, within=1.0):
        await index_batch(writer, [doc for message in messages for doc in message["docs"]],
                          [incident for message in messages for incident in message.get("incidents") or ()])
        deleted = [iid for message in messages for iid in message.get("deleted") or ()]
        if deleted:   # incidents that left the table after their retention leave the index too
            await writer.bulk_delete(incidents_index(settings), deleted)


async def index(writer, name, docs):
    for start in range(0, len(docs), BULK_DOCS):
        for doc, error in await writer.bulk_index(name, docs[start:start + BULK_DOCS]):
            await deadletter.send("index_rejected", str(error)[:2000], value=str(doc))
