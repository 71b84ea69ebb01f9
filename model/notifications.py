"""Notifications of incident state changes: which change of an incident is worth telling (``notice``:
opened, escalated to a higher severity band, resolved, reopened), its idempotency key (incident,
state, version), which routes take it, and the bodies a generic JSON webhook, Slack and
Prometheus Alertmanager expect.  Pure: the worker's notifier agent (agents/notify.py) sends them.
"""
import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta

from .rules import load_rules_file
from .severity import BANDS, band, incident_severity

RANK = {name: rank for rank, (name, _) in enumerate(reversed(BANDS))}   # warning 0 ... critical 3
TARGETS = ("webhook", "slack", "alertmanager")


def notice(incident):
    """The notification an incident's change calls for, or None; the incident remembers what it was
    last told (``notified``: status, band, version), in place, so each change is told once."""
    status = incident["status"]
    now_band = band(incident_severity(incident))
    last = incident.get("notified") or {}
    state = None
    if status == "open":
        if not last:
            state = "opened"
        elif last.get("status") == "resolved":
            state = "reopened"
        elif RANK[now_band] > RANK.get(last.get("band"), 0):   # open, or back from acknowledged / suppressed
            state = "escalated"
    elif status == "resolved" and last and last.get("status") != "resolved":
        state = "resolved"
    if state is None:
        # acknowledged, suppressed, normal: noted, not told -- but an incident told resolved stays
        # resolved for what it was told (an ack on it must not make its next resolution news)
        if last and status != last.get("status") and last.get("status") != "resolved":
            incident["notified"] = dict(last, status=status)
        return None
    version = int(last.get("version", 0)) + 1
    severity = incident_severity(incident)
    if state == "resolved":   # an end is as severe as what was told of the incident
        severity, now_band = last.get("severity", severity), last.get("band", now_band)
    note = {"key": f"{incident['incident_id']}:{state}:{version}", "state": state, "version": version,
            "incident_id": incident["incident_id"], "source": incident["source"], "severity": severity,
            "band": now_band}
    incident["notified"] = {"status": status, "band": now_band, "version": version, "severity": severity, "note": note}
    return note


def undelivered(incident, delivered_version):
    """The incident's last notification if it is not delivered yet (its version above the one the
    notifier recorded), else None: what a crash between deciding and sending left untold."""
    told = incident.get("notified") or {}
    note = told.get("note")
    return note if note and told.get("version", 0) > (delivered_version or 0) else None


@dataclass(frozen=True)
class Route:
    """Where notifications go: a target (webhook, slack, alertmanager) at ``url``, for the sources
    matching ``sources`` (shell patterns; empty: all) at or above ``min_severity``."""
    target: str
    url: str
    min_severity: int = 25
    sources: tuple = ()
    secret: str = field(default=None, repr=False)   # webhook: HMAC-SHA256 key of the signature header

    def takes(self, note):
        if note["severity"] < self.min_severity:   # a resolution carries the severity it was told at
            return False
        return not self.sources or any(fnmatch.fnmatchcase(note["source"], p) for p in self.sources)


def routes_from(settings, file_routes=None):
    """The routes of the settings (CLOGS_WEBHOOK_URL, CLOGS_SLACK_WEBHOOK_URL, CLOGS_ALERTMANAGER_URL,
    with CLOGS_NOTIFY_MIN_SEVERITY and CLOGS_NOTIFY_SOURCES) and of a routes file (a list of
    {"target", "url", "min_severity", "sources", "secret"}): ``file_routes``, else the file
    CLOGS_NOTIFY_ROUTES names, if any."""
    if file_routes is None:
        file_routes = load_rules_file(settings.notify_routes, "notification routes") if settings.notify_routes else []
    sources = tuple(p.strip() for p in (settings.notify_sources or "").split(",") if p.strip())
    routes = [Route(target, url, settings.notify_min_severity, sources, settings.webhook_secret if target == "webhook"
                    else None)
              for target, url in (("webhook", settings.webhook_url), ("slack", settings.slack_webhook_url),
                                  ("alertmanager", settings.alertmanager_url)) if url]
    if not isinstance(file_routes, (list, tuple)):
        raise ValueError("the notification routes file must hold a list of routes")
    for item in file_routes:
        if not isinstance(item, dict) or item.get("target") not in TARGETS or not item.get("url"):
            raise ValueError(f"notification route {item!r}: needs a target ({', '.join(TARGETS)}) and a url")
        try:
            routes.append(Route(item["target"], item["url"], int(item.get("min_severity", settings.notify_min_severity)),
                                tuple(item.get("sources") or ()), item.get("secret")))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"notification route {item!r}: {exc}") from None
    return routes


def coalesce(notes):
    """A group's notifications in order, an escalation folded into the notification before it of the
    same incident (an incident that opened and escalated within a group just opened, with the later
    severity); an end and a new start are both told."""
    out, last = [], {}
    for note in notes:
        before = last.get(note["incident_id"])
        if note["state"] == "escalated" and before is not None and out[before]["state"] != "resolved":
            out[before] = dict(note, state=out[before]["state"])
        else:
            last[note["incident_id"]] = len(out)
            out.append(note)
    return out


def group_key(notes):
    """The idempotency key of a message that carries these notifications."""
    return hashlib.blake2b("|".join(sorted(n["key"] for n in notes)).encode(), digest_size=12).hexdigest()


def webhook_body(source, notes, incidents):
    """The generic JSON webhook: one message per source and group, each notification with its incident."""
    return {"source": source, "idempotency_key": group_key(notes),
            "notifications": [dict(note, incident=incidents[note["incident_id"]]) for note in notes]}


def slack_body(source, notes, incidents, dashboard_url):
    """A Slack incoming-webhook message: source, summary, severity and a link to the dashboard."""
    lines = []
    for note in notes:
        incident = incidents[note["incident_id"]]
        lines.append(f"*{note['state']}* · severity *{note['severity']}* ({note['band']}) · {incident['kind']} · "
                     f"x{incident.get('count', 0)}\n>{str(incident.get('summary') or '')[:300]}")
    text = f"clogs: {len(notes)} incident change{'s' if len(notes) != 1 else ''} in *{source}*"
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": text + "\n" + "\n".join(lines)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{dashboard_url}|open the dashboard>"}]}]}


def alertmanager_alerts(notes, incidents, now, hold_seconds, dashboard_url):
    """Alertmanager's POST /api/v2/alerts body: one alert per incident, firing until ``now`` +
    ``hold_seconds`` (re-sent on each change) or ended at ``now`` when resolved.  ``now``: a datetime."""
    alerts = []
    for note in notes:
        incident = incidents[note["incident_id"]]
        ends = now if note["state"] == "resolved" else now + timedelta(seconds=hold_seconds)
        alert = {
            "labels": {"alertname": "ClogsIncident", "source": note["source"], "kind": incident["kind"],
                       "incident_id": note["incident_id"], "severity": note["band"]},
            "annotations": {"summary": str(incident.get("summary") or "")[:500], "severity": str(note["severity"]),
                            "state": note["state"], "count": str(incident.get("count", 0)), "dashboard": dashboard_url},
            "endsAt": _rfc3339(ends), "generatorURL": dashboard_url}
        if note["state"] in ("opened", "reopened"):   # a later change keeps the alert's first start
            alert["startsAt"] = _rfc3339(now)
        alerts.append(alert)
    return alerts


def _rfc3339(stamp):
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def encode(body):
    """The bytes sent (the HMAC signature is over exactly these)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
