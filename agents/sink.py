"""The Elasticsearch sink agent: results topic -> bulk index.

Line documents (app/documents.py) go to ``CLOGS_INDEX`` with id = log topic-partition-offset;
incidents (model/incidents.py) to ``CLOGS_INCIDENTS_INDEX`` with id = incident id, each write the
incident's whole state, so the last write wins and a replay rewrites the same values.  A replayed
line gets the same id and overwrites its document, so Elasticsearch holds each line once.  The
body of each batch returns only after Elasticsearch accepted the batch; Faust acks (and then
commits) a batch's events only after its body, so offsets never run ahead of the index.
``--anomalies-only`` / CLOGS_ANOMALIES_ONLY=1 indexes anomalies only.
"""
from datetime import datetime, timezone

from agents import deadletter
from agents.elastic import INCIDENT_MAPPING, async_client, bulk_index, ensure_index
from app import settings
from app.documents import line_document
from app.faust_app import app, results_topic
from model.eventtime import iso

SINK_BATCH = 20     # result messages (each up to a micro-batch of one source) per bulk cycle
BULK_DOCS = 2000    # documents per bulk request


@app.agent(results_topic, concurrency=1)
async def index_results(stream):
    es = async_client()  # created when the worker starts the agent
    await ensure_index(es, settings.INDEX)
    await ensure_index(es, settings.INCIDENTS_INDEX, mapping=INCIDENT_MAPPING)
    async for messages in stream.take(SINK_BATCH, within=1.0):
        docs = [doc for message in messages for doc in message["docs"]]
        if settings.ANOMALIES_ONLY:
            docs = [d for d in docs if d["is_anomaly"]]
        indexed_at = iso(datetime.now(timezone.utc))
        docs = [dict(line_document(doc), indexed_at=indexed_at) for doc in docs]
        incidents = {}
        for message in messages:   # in order: a later state of an incident replaces an earlier one
            for incident in message.get("incidents") or ():
                incidents[incident["incident_id"]] = dict(incident, id=incident["incident_id"])
        await index(es, settings.INDEX, docs)
        await index(es, settings.INCIDENTS_INDEX, list(incidents.values()))


async def index(es, name, docs):
    for start in range(0, len(docs), BULK_DOCS):
        for doc, error in await bulk_index(es, name, docs[start:start + BULK_DOCS]):
            await deadletter.send("index_rejected", str(error)[:2000], value=str(doc))
