"""Incidents: flagged lines grouped by (source, kind, pattern), and what operators say about them.

An operator does not want 57 alerts for one new error: every flagged line of a source whose
pattern (``model.patterns.pattern_key``, the skeleton the learning memory already keys on) is the
same joins one incident of kind ``content``; a burst of lines joins the source's ``rate`` incident
and a source gone quiet its ``silence`` incident (model/rates.py).  An incident is a plain dict
(the value of the ``incidents`` table, keyed by its id, and the document of the incidents index):

    incident_id, source, kind, pattern, status, summary, first_seen, last_seen, updated_at,
    count, max_score, max_severity, threshold_used, top_tokens, level, examples [{doc_id, message,
    anomaly_score, at}], suppressed_until, observed, expected, offsets

Its id is a hash of (source, kind, pattern), so the same pattern of the same source always lands
in the same incident, on any worker, after any restart.  ``offsets`` holds, per log-topic
partition, the offset of the last line it counted: a replayed line (at-least-once delivery after a
crash) is at or below it and is not counted twice.

Status and feedback (``apply_feedback``): ``open`` alerts (its changes go to the anomalies topic);
``acknowledged`` keeps counting without alerting; ``suppressed`` likewise until
``suppressed_until``, then it is open again; ``normal`` means the pattern is normal for this
source: its lines are no longer flagged (and, with learning on, they are learned).  ``reopen``
returns any of them to open.  Times are ISO 8601 strings in UTC.
"""
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from .eventtime import parse_iso
from .severity import band, incident_severity

KINDS = ("content", "rate", "silence")
STATUSES = ("open", "acknowledged", "normal", "suppressed", "resolved")
LIVE = ("open", "acknowledged", "suppressed")   # the statuses that resolve by themselves
ACTIONS = {"normal": "normal", "suppress": "suppressed", "ack": "acknowledged", "reopen": "open"}
EXAMPLE_CHARS = 1000
MAX_SUPPRESS_DAYS = 365
TOP_TOKENS = 10
LEVEL_NAMES = {0: "debug", 1: "info", 2: "warning", 3: "error", 4: "fatal"}


def incident_id(source, kind, pattern):
    """A short stable id of (source, kind, pattern)."""
    return hashlib.blake2b(f"{source}\x00{kind}\x00{pattern}".encode("utf-8", "replace"), digest_size=8).hexdigest()


def new_incident(source, kind, pattern, at, summary=""):
    return {"incident_id": incident_id(source, kind, pattern), "source": source, "kind": kind, "pattern": pattern,
            "status": "open", "summary": summary, "first_seen": at, "last_seen": at, "updated_at": at, "count": 0,
            "max_score": None, "max_severity": 0, "threshold_used": None, "top_tokens": [], "level": None, "examples": [],
            "suppressed_until": None, "observed": None, "expected": None, "offsets": {}, "resolved_at": None,
            "reopened": 0}


def current_status(incident, now):
    """The status in force at ``now`` (a suppression that ran out is open again)."""
    if incident["status"] == "suppressed" and incident.get("suppressed_until") and incident["suppressed_until"] <= now:
        return "open"
    return incident["status"]


def expire(incident, now):
    """A suppression that ran out becomes open again (in place), so what is stored and indexed
    says what is in force."""
    if current_status(incident, now) != incident["status"]:
        incident["status"], incident["suppressed_until"] = "open", None
    return incident


def alerting(incident, now):
    return current_status(incident, now) == "open"


def count_line(incident, doc, max_examples):
    """Add a line of the incident's pattern (a result document of model/online.py) to its content
    incident, in place.  Returns False when the line was counted before (a replay)."""
    offset, partition = doc["kafka_offset"], str(doc.get("kafka_partition", 0))
    offsets = incident.setdefault("offsets", {})
    if offset <= offsets.get(partition, -1):
        return False
    at = doc["@timestamp"]
    offsets[partition] = offset
    incident["count"] += 1
    incident["first_seen"] = min(incident["first_seen"], at)
    incident["last_seen"] = max(incident["last_seen"], at)
    score = doc["anomaly_score"]
    if incident["max_score"] is None or score > incident["max_score"]:
        incident["max_score"] = score
        incident["threshold_used"] = doc["threshold_used"]
    incident["max_severity"] = max(incident.get("max_severity") or 0, doc.get("severity") or 0)
    for token in doc.get("top_tokens") or ():
        if token not in incident["top_tokens"] and len(incident["top_tokens"]) < TOP_TOKENS:
            incident["top_tokens"].append(token)
    if doc.get("level") is not None and doc["level"] >= 0:
        incident["level"] = LEVEL_NAMES.get(doc["level"])
    if len(incident["examples"]) < max_examples:
        incident["examples"].append({"doc_id": doc["id"], "message": clip(doc["line"], EXAMPLE_CHARS),
                                     "anomaly_score": score, "at": at})
    if not incident["summary"]:
        incident["summary"] = summary_of(doc)
    return True


def summary_of(doc):
    """One line for people: the kind of pattern and the line that opened it; for a stack trace, the
    exception, its call site and its message."""
    if doc.get("restart"):
        return f"restart: start-up lines of the source came back together: {clip(doc['line'], 160)}"
    if doc.get("error_type"):
        site = f" at {doc['call_site']}" if doc.get("call_site") else ""
        return f"new {doc['error_type']}{site}: {clip(str(doc.get('error') or doc['line'].splitlines()[0]), 160)}"
    level = LEVEL_NAMES.get(doc.get("level"), "")
    head = f"new {level + ' ' if level in ('warning', 'error', 'fatal') else ''}pattern"
    return f"{head}: {clip(doc['line'], 160)}"   # the explaining tokens travel apart (top_tokens)


def clip(text, limit):
    """At most about ``limit`` characters, cut at a space when one is near: a cut through the
    middle of a secret would leave a stub the redaction rules no longer recognise."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[:cut if cut > limit // 2 else limit] + " …"


@dataclass(frozen=True)
class Lifecycle:
    """When incidents end by themselves: a content incident resolves once its source's lines have
    gone ``content_quiet`` seconds (of their own event time) past its last line, a rate incident
    ``rate_quiet`` seconds (of arrival time) past its last burst, a silence as soon as lines come back;
    a resolved incident leaves the table ``retention`` seconds later; at most ``max_active`` of a
    source's incidents wait to resolve (past that, the least recently seen resolve first)."""
    content_quiet: float = 3600.0
    rate_quiet: float = 900.0
    retention: float = 7 * 86400.0
    max_active: int = 500

    @classmethod
    def of(cls, settings):
        return cls(content_quiet=settings.resolve_content_seconds, rate_quiet=settings.resolve_rate_seconds,
                   retention=settings.incident_retention_seconds, max_active=settings.incidents_per_source)


def resolve(incident, at):
    """The incident ends (in place): resolved at ``at``."""
    incident["status"], incident["resolved_at"], incident["suppressed_until"] = "resolved", at, None
    incident["updated_at"] = at
    return incident


def reopen(incident, at):
    """A resolved incident recurs (in place): open again, the same incident, one more reopening."""
    incident["status"], incident["resolved_at"] = "open", None
    incident["reopened"] = incident.get("reopened", 0) + 1
    incident["updated_at"] = at
    return incident


def track(book, incident):
    """Note in the source's book (model/state.py ``SourceIncidents``) where an incident stands."""
    iid = incident["incident_id"]
    if incident["status"] in LIVE:
        book.active[iid] = incident["last_seen"]
        book.resolved.pop(iid, None)
    elif incident["status"] == "resolved":
        book.active.pop(iid, None)
        book.resolved[iid] = incident["resolved_at"]
    else:   # normal: kept for good (it says a pattern is normal), out of the lifecycle
        book.active.pop(iid, None)
        book.resolved.pop(iid, None)


def age(book, lookup, policy, now_wall):
    """Resolve the source's incidents whose quiet period is over and forget those resolved longer
    than the retention.  ``lookup(id)`` -> the incident or None; ``now_wall``: the worker's clock
    (ISO), the time of rate and silence incidents.  Returns (the incidents resolved now, the ids that
    leave the table); ``book`` is updated in place."""
    resolved, gone = [], []
    by_age = sorted(book.active.items(), key=lambda item: item[1] or "")
    overflow = max(0, len(by_age) - policy.max_active)
    for position, (iid, last_seen) in enumerate(by_age):
        incident = lookup(iid)
        if incident is None or incident["status"] not in LIVE:
            book.active.pop(iid, None)
            if incident is not None:
                track(book, incident)
            continue
        clock = book.watermark if incident["kind"] == "content" else now_wall
        quiet = policy.content_quiet if incident["kind"] == "content" else policy.rate_quiet
        if position < overflow or (incident["kind"] != "silence" and _seconds(last_seen, clock) >= quiet):
            resolved.append(resolve(incident, max(clock, incident["last_seen"])))
            track(book, incident)
    for iid, at in list(book.resolved.items()):
        incident = lookup(iid)
        clock = book.watermark if incident is None or incident["kind"] == "content" else now_wall
        if incident is None or incident["status"] != "resolved" or _seconds(at, clock) >= policy.retention:
            book.resolved.pop(iid)
            if incident is not None and incident["status"] == "resolved":
                gone.append(iid)
            elif incident is not None:
                track(book, incident)
    return resolved, gone


def advance(book, docs, max_ahead=86400.0):
    """Move the source's watermark to the latest time its decided lines state -- but not past their
    arrival by more than ``max_ahead`` seconds: a date in a line's text ("valid until 2031") is no
    watermark, and would resolve every incident of the source at once."""
    arrived = parse_iso(max((doc.get("ingested_at") or "" for doc in docs), default=""))
    horizon = (arrived + timedelta(seconds=max_ahead)).isoformat(timespec="milliseconds") if arrived else None
    for doc in docs:
        stamp = doc.get("@timestamp")
        if stamp and stamp > book.watermark and (horizon is None or stamp <= horizon):
            book.watermark = stamp
    return book


def _seconds(earlier, later):
    """Seconds from one ISO time to another (0 when either is missing)."""
    start, end = parse_iso(earlier), parse_iso(later)
    return (end - start).total_seconds() if start and end else 0.0


def apply_feedback(incident, action, now, until=None):
    """Apply an operator's action to an incident, in place; returns it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown feedback action {action!r}: one of {', '.join(ACTIONS)}")
    incident["status"] = ACTIONS[action]
    incident["suppressed_until"] = until if action == "suppress" else None
    incident["updated_at"] = now
    return incident


def parse_duration(text):
    """'2h', '30m', '45s', '1d', '90' (seconds) -> timedelta."""
    text = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 30m, 2h, 1d)") from None
    if not 0 < seconds <= MAX_SUPPRESS_DAYS * 86400:   # also nan and inf
        raise ValueError(f"a duration between 1 s and {MAX_SUPPRESS_DAYS} days, not {text!r}")
    return timedelta(seconds=seconds)


def document(incident):
    """The incidents-index document: the incident with the ECS names Kibana expects, and its severity
    (``event.severity``, 0-100) and band (model/severity.py)."""
    doc = {k: v for k, v in incident.items() if k not in ("offsets", "level", "notified")}
    doc["@timestamp"] = incident["last_seen"]
    severity = incident_severity(incident)
    doc["event"] = {"dataset": incident["source"], "severity": severity}
    doc["severity_band"] = band(severity)
    doc["log"] = {"level": incident.get("level")}
    return doc
