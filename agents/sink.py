"""Indexing into Elasticsearch: ``index_batch`` and the sink agent for the results topic.

Line documents (app/documents.py) go to ``CLOGS_INDEX`` with id = log topic-partition-offset;
incidents (model/incidents.py) to ``CLOGS_INCIDENTS_INDEX`` with id = incident id, each write the
incident's whole state, so the last write wins and a replay rewrites the same values.  A replayed
line gets the same id and overwrites its document, so Elasticsearch holds each line once.
``index_batch`` returns only after Elasticsearch accepted the batch, and its callers ack their
events only after it returned, so offsets never run ahead of the index:

* the threshold agent (agents/threshold.py) indexes the lines it decides, and the incidents they
  change, batch by batch itself (issue 11: a Kafka hop less per line);
* ``index_results`` indexes what the results topic carries: the incidents that the timer's ticks
  (silence, rate windows) and operators' feedback change (agents/incidents.py).

``--anomalies-only`` / CLOGS_ANOMALIES_ONLY=1 indexes anomalies only.
"""
from datetime import datetime, timezone

from agents import deadletter
from agents.elastic import INCIDENT_MAPPING, async_client, bulk_index, ensure_index
from app import settings
from app.documents import line_document
from app.faust_app import app, results_topic
from model.eventtime import iso

SINK_BATCH = 20     # result messages per bulk cycle
BULK_DOCS = 2000    # documents per bulk request


async def indexing_client():
    """The Elasticsearch client of an agent that indexes, with both indices there (made if missing)."""
    es = async_client()  # created when the worker starts the agent
    await ensure_index(es, settings.INDEX)
    await ensure_index(es, settings.INCIDENTS_INDEX, mapping=INCIDENT_MAPPING)
    return es


async def index_batch(es, docs, incidents):
    """Decided lines (model/online.py ``result_document``) and incident documents
    (app/documents.py ``incident_document``, in order: a later state of an incident replaces an
    earlier one) into their indices; rejected documents go to the dead-letter topic."""
    if settings.ANOMALIES_ONLY:
        docs = [d for d in docs if d["is_anomaly"]]
    indexed_at = iso(datetime.now(timezone.utc))
    docs = [line_document(doc) for doc in docs]   # new dicts: stamped in place
    for doc in docs:
        doc["indexed_at"] = indexed_at
    latest = {}
    for incident in incidents:
        latest[incident["incident_id"]] = dict(incident, id=incident["incident_id"])
    await index(es, settings.INDEX, docs)
    await index(es, settings.INCIDENTS_INDEX, list(latest.values()))


@app.agent(results_topic, concurrency=1)
async def index_results(stream):
    es = await indexing_client()
    async for messages in stream.take(SINK_BATCH, within=1.0):
        await index_batch(es, [doc for message in messages for doc in message["docs"]],
                          [incident for message in messages for incident in message.get("incidents") or ()])


async def index(es, name, docs):
    for start in range(0, len(docs), BULK_DOCS):
        for doc, error in await bulk_index(es, name, docs[start:start + BULK_DOCS]):
            await deadletter.send("index_rejected", str(error)[:2000], value=str(doc))
