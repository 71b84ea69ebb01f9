"""The line document as others read it: Elasticsearch (agents/sink.py) and the anomalies topic.

``line_document(doc)`` takes a decided line (model/online.py ``result_document``) and gives it
the field names Elastic users expect from the Elastic Common Schema -- ``@timestamp`` (the time
the line states, else its ingest time; ``timestamp_source`` says which), ``message``,
``host.name``, ``log.file.path``, ``log.level``, ``event.dataset`` (= the source),
``event.ingested`` -- beside clogs' own (``source``, ``anomaly_score``, ``is_anomaly``,
``threshold_used``, ``mean_score``, ``std_score``, ``incident_id``, ...).  The mapping is
agents/elastic.py ``MAPPING``; a test keeps the two in step.
"""
from model.incidents import LEVEL_NAMES

RENAMED = ("line", "host", "file", "level")


def line_document(doc):
    out = {k: v for k, v in doc.items() if k not in RENAMED}
    out["message"] = doc["line"]
    out["host"] = {"name": doc.get("host") or None}
    out["log"] = {"file": {"path": doc.get("file") or None}, "level": LEVEL_NAMES.get(doc.get("level"))}
    out["event"] = {"dataset": doc["source"], "ingested": doc.get("ingested_at")}
    return out
