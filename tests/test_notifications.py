"""Notifications of incident changes (model/notifications.py) and their HTTP requests
(app/outputs/notify.py): which change is told, once; routes; the bodies; the signature."""
import hashlib
import hmac
import json
from datetime import datetime, timezone

from app.outputs.notify import Delivery
from app.settings import Settings
from model.incidents import apply_feedback, new_incident, reopen, resolve
from model.notifications import Route, alertmanager_alerts, coalesce, notice, routes_from, slack_body, webhook_body


def incident(severity=60, **fields):
    found = dict(new_incident("payments", "content", "p", "2026-01-05T10:00:00.000+00:00"), max_severity=severity,
                 count=1, summary="new error pattern: ledger write rejected")
    found.update(fields)
    return found


def test_each_change_is_told_once_opened_escalated_resolved_reopened():
    one = incident(40)
    assert notice(one)["state"] == "opened" and notice(one) is None           # told once
    one["max_severity"] = 45
    assert notice(one) is None                                                 # the same band (minor)
    one["max_severity"] = 80
    escalated = notice(one)
    assert escalated["state"] == "escalated" and escalated["band"] == "critical" and escalated["version"] == 2
    resolve(one, "2026-01-05T11:00:00.000+00:00")
    assert notice(one)["state"] == "resolved" and notice(one) is None
    reopen(one, "2026-01-05T12:00:00.000+00:00")
    again = notice(one)
    assert again["state"] == "reopened" and again["key"] == f"{one['incident_id']}:reopened:4"


def test_feedback_silences_notifications_until_the_incident_opens_again():
    one = incident(60)
    notice(one)
    one["status"] = "acknowledged"
    one["max_severity"] = 90
    assert notice(one) is None and one["notified"]["status"] == "acknowledged"
    one["status"] = "open"                                                     # reopened by the operator
    assert notice(one)["state"] == "escalated"


def test_a_group_tells_an_incident_once_opened_and_escalated_is_opened():
    notes = [{"incident_id": "a", "state": "opened", "version": 1}, {"incident_id": "b", "state": "resolved", "version": 3},
             {"incident_id": "a", "state": "escalated", "version": 2, "severity": 80}]
    assert coalesce(notes) == [{"incident_id": "a", "state": "opened", "version": 2, "severity": 80},
                               {"incident_id": "b", "state": "resolved", "version": 3}]
    again = [{"incident_id": "c", "state": "resolved", "version": 2}, {"incident_id": "c", "state": "reopened", "version": 3},
             {"incident_id": "c", "state": "escalated", "version": 4}]
    assert [(n["state"], n["version"]) for n in coalesce(again)] == [("resolved", 2), ("reopened", 4)]


def test_an_ack_on_a_resolved_incident_does_not_make_its_next_resolution_news():
    one = incident(60)
    notice(one)
    resolve(one, "2026-01-05T11:00:00.000+00:00")
    assert notice(one)["state"] == "resolved"
    apply_feedback(one, "ack", "2026-01-05T11:01:00.000+00:00")
    assert notice(one) is None
    resolve(one, "2026-01-05T11:02:00.000+00:00")
    assert notice(one) is None
    reopen(one, "2026-01-05T12:00:00.000+00:00")
    assert notice(one)["state"] == "reopened"


def test_a_bad_routes_file_is_named():
    import pytest

    for bad in ([{"target": "webhook", "url": "http://x", "min_severity": "high"}], ["webhook"], {"target": "slack"}):
        with pytest.raises(ValueError, match="route"):
            routes_from(Settings.from_env({}), bad)


def test_routes_filter_by_severity_and_source_and_come_from_settings_and_a_file():
    settings = Settings.from_env({"CLOGS_WEBHOOK_URL": "http://hook", "CLOGS_WEBHOOK_SECRET": "k",
                                  "CLOGS_NOTIFY_MIN_SEVERITY": "50", "CLOGS_NOTIFY_SOURCES": "pay*, /var/log/*"})
    routes = routes_from(settings, [{"target": "slack", "url": "http://slack", "min_severity": 75}])
    assert [(r.target, r.min_severity, r.secret) for r in routes] == [("webhook", 50, "k"), ("slack", 75, None)]
    hook, slack = routes
    note = {"source": "payments", "state": "opened", "severity": 60}
    assert hook.takes(note) and not slack.takes(note)
    assert not hook.takes(dict(note, source="inventory")) and not hook.takes(dict(note, severity=49))
    assert hook.takes(dict(note, state="resolved"))     # an end carries the severity it was told at
    assert not hook.takes(dict(note, severity=10, state="resolved"))   # never told: its end is not either
    assert routes_from(Settings.from_env({})) == []


def test_bodies_and_the_signature():
    one = incident(80, count=50)
    note = notice(one)
    incidents = {one["incident_id"]: {"incident_id": one["incident_id"], "kind": "content", "count": 50,
                                      "summary": one["summary"], "event": {"severity": note["severity"]}}}
    hook = webhook_body("payments", [note], incidents)
    assert hook["notifications"][0]["incident"]["event"]["severity"] == note["severity"] == 87
    slack = slack_body("payments", [note], incidents, "http://dash/")
    assert "payments" in slack["text"] and "87" in slack["blocks"][0]["text"]["text"]
    assert "http://dash/" in slack["blocks"][1]["elements"][0]["text"]
    now = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)
    alert = alertmanager_alerts([note], incidents, now, 3600, "http://dash/")[0]
    assert alert["labels"]["severity"] == "critical" and alert["startsAt"] == "2026-01-05T12:00:00.000Z"
    assert alert["endsAt"] == "2026-01-05T13:00:00.000Z"
    delivery = Delivery(Settings.from_env({}))
    url, data, headers = delivery.request(Route("webhook", "http://hook", secret="k"), hook, "key-1")
    assert headers["X-Clogs-Signature"] == "sha256=" + hmac.new(b"k", data, hashlib.sha256).hexdigest()
    assert json.loads(data) == hook and headers["X-Clogs-Idempotency-Key"] == "key-1"
    assert delivery.request(Route("alertmanager", "http://am:9093/"), [], "k")[0] == "http://am:9093/api/v2/alerts"


def test_delivery_retries_5xx_and_429_but_not_other_4xx_and_counts_each_outcome():
    """app/outputs/notify.py against a real local HTTP server: 503, 429, then 200 is delivered on
    the third try; a 400 is not tried again; a server that keeps failing is given up after the tries."""
    import asyncio
    import socket

    from aiohttp import web

    from app.outputs.metrics import Metrics

    answers, seen = {"/flaky": [503, 429, 200], "/bad": [400, 200], "/down": [500] * 10}, []

    async def handle(request):
        seen.append(request.path)
        return web.Response(status=answers[request.path].pop(0))

    async def scenario():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app = web.Application()
        app.router.add_post("/{path}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        metrics = Metrics()
        delivery = Delivery(Settings.from_env({"CLOGS_NOTIFY_RETRIES": "2"}), metrics)
        note = {"key": "i:opened:1", "state": "opened", "incident_id": "i", "source": "s", "severity": 60,
                "band": "major", "version": 1}
        incidents = {"i": {"incident_id": "i", "kind": "content", "summary": "x"}}
        try:
            results = [await delivery.send(Route("webhook", f"http://127.0.0.1:{port}{path}"), "s", [note], incidents)
                       for path in ("/flaky", "/bad", "/down")]
        finally:
            await delivery.close()
            await runner.cleanup()
        return results, metrics

    results, metrics = asyncio.run(scenario())
    assert results == [True, False, False]
    assert seen == ["/flaky"] * 3 + ["/bad"] + ["/down"] * 3
    counted = {(s.labels["outcome"]): s.value for family in metrics.notifications.collect() for s in family.samples
               if s.name.endswith("_total")}
    assert counted == {"sent": 1.0, "refused": 1.0, "failed": 1.0}


def test_an_incident_knows_its_last_notification_until_it_is_delivered():
    from model.notifications import undelivered

    one = incident(60)
    note = notice(one)
    assert undelivered(one, None) == note and undelivered(one, 0) == note   # decided, not sent (a crash)
    assert undelivered(one, 1) is None                                      # the notifier recorded it
    resolve(one, "2026-01-05T11:00:00.000+00:00")
    ended = notice(one)
    assert undelivered(one, 1) == ended and ended["version"] == 2
    assert undelivered(incident(60), None) is None                          # nothing told yet
    assert "notified" not in __import__("model.incidents").incidents.document(one)
