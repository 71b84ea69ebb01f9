"""The line document as others read it: Elasticsearch (agents/sink.py) and the anomalies topic.

``line_document(doc)`` takes a decided line (model/online.py ``result_document``) and gives it
the field names Elastic users expect from the Elastic Common Schema -- ``@timestamp`` (the time
the line states, else its ingest time; ``timestamp_source`` says which), ``message``,
``host.name``, ``log.file.path``, ``log.level``, ``event.dataset`` (= the source),
``event.ingested`` -- beside clogs' own (``source``, ``anomaly_score``, ``is_anomaly``,
``threshold_used``, ``mean_score``, ``std_score``, ``incident_id``, ...).  The mapping is
agents/elastic.py ``MAPPING``; a test keeps the two in step.  ``incident_document`` does the
same for an incident (the incidents index and the anomalies topic).

Both go through redaction (app/redaction.py: secrets by default, CLOGS_REDACT) on their way
out: the message, an incident's summary and examples, and the tokens that explain a score.
"""
from app.redaction import redact_output
from model.incidents import LEVEL_NAMES, document

RENAMED = ("line", "host", "file", "level")


def line_document(doc):
    out = {k: v for k, v in doc.items() if k not in RENAMED}
    out["message"] = doc["line"]
    out["host"] = {"name": doc.get("host") or None}
    out["log"] = {"file": {"path": doc.get("file") or None}, "level": LEVEL_NAMES.get(doc.get("level"))}
    out["event"] = {"dataset": doc["source"], "ingested": doc.get("ingested_at")}
    out["top_tokens"] = list(doc.get("top_tokens") or ())
    redact_output(out)
    return out


def incident_document(incident):
    """The incidents-index document (model/incidents.py ``document``), redacted."""
    out = document(incident)
    out["examples"] = [dict(e) for e in out.get("examples") or ()]
    out["top_tokens"] = list(out.get("top_tokens") or ())
    redact_output(out)
    return out
