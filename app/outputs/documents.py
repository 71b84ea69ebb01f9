"""The documents clogs writes out, with the field names Elastic users expect (ECS: ``@timestamp``,
``message``, ``host.name``, ``log.file.path``, ``log.level``, ``event.dataset``, ``event.ingested``)
beside clogs' own: a decided line (``line_document``) and an incident (``incident_document``), both
redacted.  Their mappings are app/outputs/mappings.py (a test keeps them in step).
"""
from model.incidents import LEVEL_NAMES, document

RENAMED = frozenset(("line", "host", "file", "level", "severity", "original", "logger", "error", "error_type",
                     "stack_trace", "event_lines", "truncated", "continued"))


def line_document(doc, redactor):
    """A decided line (model/online.py ``result_document``) as indexed and alerted."""
    out = {k: v for k, v in doc.items() if k not in RENAMED}
    out["message"] = doc["line"]
    out["host"] = {"name": doc.get("host") or None}
    out["log"] = {"file": {"path": doc.get("file") or None}, "level": LEVEL_NAMES.get(doc.get("level"))}
    out["event"] = {"dataset": doc["source"], "ingested": doc.get("ingested_at"), "severity": doc.get("severity")}
    if doc.get("logger"):
        out["log"]["logger"] = doc["logger"]
    if doc.get("original"):   # the line as written, when clogs read a structured or wrapped line
        out["event"]["original"] = doc["original"]
    if doc.get("error") or doc.get("error_type"):
        error = str(doc.get("error") or "")
        out["error"] = {"message": error.splitlines()[0][:1000] if error.strip() else error}
        trace = doc.get("stack_trace") or (error if "\n" in error.strip() else None)
        if trace:
            out["error"]["stack_trace"] = trace
        if doc.get("error_type"):
            out["error"]["type"] = doc["error_type"]
    if doc.get("event_lines") or doc.get("truncated") or doc.get("continued"):   # a multi-line event
        out["log"]["multiline"] = {"lines": doc.get("event_lines") or 1, "truncated": bool(doc.get("truncated")),
                                   "continued": bool(doc.get("continued"))}
    out["top_tokens"] = list(doc.get("top_tokens") or ())
    redactor.redact_document(out)
    return out


def incident_document(incident, redactor):
    """The incidents-index document (model/incidents.py ``document``), redacted."""
    out = document(incident)
    out["examples"] = [dict(e) for e in out.get("examples") or ()]
    out["top_tokens"] = list(out.get("top_tokens") or ())
    redactor.redact_document(out)
    return out
