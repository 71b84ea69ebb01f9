"""The notifier agent: the notifications topic -> each route's webhook, Slack or Alertmanager.

A source's notifications within CLOGS_NOTIFY_GROUP_SECONDS go out as one message per route (a burst
is one message).  The ``notifications-sent`` table (changelog) remembers, per incident, the last
version delivered: a notification replayed after a crash or a takeover is not sent again, and a
message in flight when a worker was killed is sent again with the same idempotency key.  Delivery
runs in this agent alone, so a slow or unreachable receiver never holds up scoring.
"""
from agents.threshold import handling
from app.faust_app import app, delivery, notification_routes, notifications_topic, settings
from model.notifications import coalesce
from tables.stats import sent_table

GROUP = 200   # notification messages taken at most at once


@app.agent(notifications_topic, concurrency=1)
async def deliver_notifications(stream):
    routes = notification_routes()
    async for events in stream.take_events(GROUP, within=settings.notify_group_seconds):
        by_source = {}
        for event in events:
            value = event.value
            notes, incidents, last = by_source.setdefault(value["source"], ([], {}, [None]))
            for note in value["notes"]:
                if note["version"] > (sent_table.get(note["incident_id"]) or 0) and \
                        all(n["key"] != note["key"] for n in notes):   # a note sent again after a crash
                    notes.append(note)
                    incidents[note["incident_id"]] = value["incidents"][note["incident_id"]]
            last[0] = event
        for source, (notes, incidents, last) in by_source.items():
            notes = coalesce(notes)
            for route in routes:
                chosen = [note for note in notes if route.takes(note)]
                if chosen:
                    await delivery().send(route, source, chosen, incidents)
            with handling(last[0]):   # in the source's partition of the table's changelog
                for note in notes:
                    sent_table[note["incident_id"]] = max(note["version"], sent_table.get(note["incident_id"]) or 0)
