"""Incidents in the worker: grouping flagged lines, rate and silence, feedback, publishing.

* ``content_incidents`` / ``rate_incidents`` are called by the threshold agent for each batch.
* A timer on every worker sends one tick per source it owns to the ticks topic (keyed by source,
  co-partitioned with the scored topic); ``check_sources`` handles the ticks on the worker that
  owns each source: it closes rate windows and raises ``silence`` incidents -- a silent source
  sends no events, so only a timer can notice it.  (Faust writes a table only while handling an
  event, in that event's partition: hence a tick message rather than a write from the timer.)
* ``apply_operator_feedback`` handles the feedback topic (``clogs feedback``, the dashboard's
  buttons): keyed by source too, so the owner of the source's incidents applies it, within
  seconds, and the incidents table's changelog keeps it.
* ``alert_messages`` makes the alerts -- flagged lines and incidents whose status is ``open`` --
  and ``send_alerts`` sends them to the anomalies topic; ``publish`` sends what ticks and feedback
  change to the results topic (the sink agent indexes it) and its alerts (the threshold agent
  indexes its own batches).  An
  incident that is acknowledged, suppressed or normal is still counted and indexed, but alerts
  no more.
"""
import logging
import time
from datetime import datetime, timezone

from app.faust_app import (anomalies_topic, app, feedback_topic, notification_routes, notifications_topic, redactor,
                           results_topic, settings, ticks_topic)
from app.outputs.documents import incident_document, line_document
from model.eventtime import iso
from model.incidents import (Lifecycle, advance, age, alerting, apply_feedback, count_line, expire, incident_id, new_incident,
                             reopen, resolve, track)
from model.notifications import notice, undelivered
from model.rates import (RatePolicy, is_burst, is_silent, note_lines, roll, silence_after, usual_rate,
                         window_start)
from model.state import to_dict
from tables.stats import add_lines, book_table, incidents_table, lines_in, rate_table, sent_table, stats_table

log = logging.getLogger(__name__)


RATES = RatePolicy.of(settings)
LIFECYCLE = Lifecycle.of(settings)


def iso_at(seconds):
    return iso(datetime.fromtimestamp(seconds, timezone.utc))


def marked_normal(source):
    """For judge_batch: pattern -> the id of the source's incident an operator marked normal, or None."""
    def lookup(pattern):
        iid = incident_id(source, "content", pattern)
        incident = incidents_table.get(iid)
        return iid if incident and incident["status"] == "normal" else None
    return lookup


def content_incidents(source, docs, now, book):
    """Group the batch's lines into the source's content incidents (in the table): a flagged line
    opens its pattern's incident or joins it (a resolved one opens again: the same incident); a line
    that is not flagged (a repeat whose score has faded) still counts toward its pattern's live
    incident, so an incident says how often its pattern appeared since it first did.  Each counted
    document gets its ``incident_id``; the source's ``book`` (model/state.py ``SourceIncidents``)
    notes them and how far the source's lines have come.  Returns the incidents that changed."""
    known, changed = {}, {}
    advance(book, docs)
    for doc in docs:
        stamp = doc.get("@timestamp")
        pattern = doc["pattern_id"]
        if pattern not in known:
            iid = incident_id(source, "content", pattern)
            known[pattern] = changed.get(iid) or incidents_table.get(iid)
        incident = known[pattern]
        if incident is None or incident["status"] == "resolved":
            if not doc["is_anomaly"]:
                continue
            if incident is None:
                incident = known[pattern] = new_incident(source, "content", pattern, stamp)
            else:
                reopen(incident, now)
        doc["incident_id"] = incident["incident_id"]
        if count_line(incident, doc, settings.incident_examples):
            incident["updated_at"] = now
            changed[incident["incident_id"]] = expire(incident, now)
    for iid, incident in changed.items():
        incidents_table[iid] = incident
        track(book, incident)
    return list(changed.values())


def rate_incidents(source, new_lines, now_s, policy, book, fresh=True):
    """Count the batch's new lines in the windowed table, fold closed windows, and raise or update
    the source's ``rate`` incident when this window is a burst (and note the end of a silence).
    ``fresh``: the lines arrived lately; a backlog read after a restart or a stall lands in one
    window by the worker's clock and is no burst.  Returns (changed incidents, the ids among them
    that must not alert again: a burst's later batches, a silence's end)."""
    state = rate_table[source]
    roll(state, now_s, policy, lambda start: lines_in(source, start))
    changed, quiet = [], set()
    if new_lines:
        add_lines(source, now_s, new_lines)
        ended = note_lines(state, now_s, new_lines)
        if ended:
            over = _silence_over(source, ended, now_s)
            changed += over
            quiet |= {i["incident_id"] for i in over}
        current = lines_in(source, window_start(now_s, policy.window))
        if fresh and is_burst(state, current, policy):
            incident, new = _burst(source, state, current, now_s, policy)
            changed.append(incident)
            if not new:
                quiet.add(incident["incident_id"])
    rate_table[source] = state
    for incident in changed:
        track(book, incident)
    return changed, quiet


def _burst(source, state, current, now_s, policy):
    at, iid = iso_at(now_s), incident_id(source, "rate", "rate")
    incident = incidents_table.get(iid) or new_incident(source, "rate", "rate", at)
    this_window = window_start(now_s, policy.window)
    new = state.burst_window not in (this_window, this_window - policy.window)   # one spanning windows is one
    if state.burst_window != this_window:
        state.burst_window = this_window
    if new:   # a new burst: one more occurrence (of the same incident, opened again if it had resolved)
        incident["count"] += 1
        incident["first_seen"] = min(incident["first_seen"], at)
        if incident["status"] == "resolved":
            reopen(incident, at)
    incident.update(last_seen=at, updated_at=at, observed=float(current), expected=round(state.mean, 3),
                    max_score=max(incident["max_score"] or 0.0, current / max(state.mean, 1.0)),
                    summary=f"{current} lines in {policy.window:g} s, usually {state.mean:.1f} "
                            f"(± {usual_rate(state)[1]:.1f})")
    incidents_table[iid] = incident
    return incident, new


def _silence_over(source, seconds, now_s):
    incident = incidents_table.get(incident_id(source, "silence", "silence"))
    if not incident:
        return []
    incident.update(observed=round(seconds, 1), updated_at=iso_at(now_s),
                    summary=f"no line for {seconds:.0f} s (until {iso_at(now_s)}), usually at most "
                            f"{incident.get('expected') or 0:.0f} s")
    if incident["status"] != "normal":   # the lines are back: the silence is over
        resolve(incident, iso_at(now_s))
    incidents_table[incident["incident_id"]] = incident
    return [incident]


def silence_incident(source, now_s, policy, watching_since=0.0):
    """([the source's silence incident if it has gone quiet], whether this is a new episode: a new
    episode counts once and alerts once; later ticks only update how long it has lasted).  A
    worker calls no silence before it has watched the source for as long as the silence bound
    (``watching_since``: when it started): after a restart the backlog must be read first."""
    state = rate_table[source]
    before = to_dict(state)
    roll(state, now_s, policy, lambda start: lines_in(source, start))
    changed, new_episode = [], False
    if is_silent(state, now_s, policy) and now_s - watching_since > silence_after(state, policy):
        at, iid = iso_at(now_s), incident_id(source, "silence", "silence")
        incident = incidents_table.get(iid) or new_incident(source, "silence", "silence", at)
        quiet, usual = now_s - state.last_line_at, silence_after(state, policy)
        if not state.silent_since:
            state.silent_since = now_s
            new_episode = True
            incident["count"] += 1
            incident["first_seen"] = min(incident["first_seen"], at)
            if incident["status"] == "resolved":
                reopen(incident, at)
        incident.update(last_seen=at, updated_at=at, observed=round(quiet, 1), expected=round(usual, 1),
                        max_score=max(incident["max_score"] or 0.0, quiet / usual),
                        summary=f"no line for {quiet:.0f} s since {iso_at(state.last_line_at)}; "
                                f"silent after {usual:.0f} s for this source")
        incidents_table[iid] = incident
        changed.append(incident)
    if to_dict(state) != before:   # a tick that changes nothing writes nothing
        rate_table[source] = state
    return changed, new_episode


async def publish(source, docs, incidents, now, alert=True, quiet=(), deleted=()):
    """Documents and changed incidents (and the ids of incidents that left the table) to the results
    topic (the sink agent indexes them), then their alerts (``send_alerts``).  Used for what ticks
    and feedback change; the threshold agent indexes its batches itself."""
    await results_topic.send(key=source, value={"source": source, "docs": docs, "deleted": list(deleted),
                                                "incidents": [incident_document(i, redactor()) for i in incidents]})
    await send_alerts(alert_messages(source, docs, incidents, now, alert, quiet))


def take_notices(incidents):
    """The notifications the incidents' changes call for (model/notifications.py ``notice``), with the
    incident document each tells of; each incident notes what it was told, in the table.  None when
    no route is configured (the incidents still note what they would have told)."""
    notes, routes = [], notification_routes()
    for incident in incidents:
        before = incident.get("notified")
        note = notice(incident)
        if incident.get("notified") != before:
            incidents_table[incident["incident_id"]] = incident
        if note is not None and routes:
            notes.append((note, incident_document(incident, redactor())))
    return notes


async def send_notices(source, notes):
    """Notifications to the notifications topic (the notifier agent delivers them)."""
    if notes:
        await notifications_topic.send(key=source, value={"source": source, "notes": [n for n, _ in notes],
                                                           "incidents": {n["incident_id"]: d for n, d in notes}})


async def send_alerts(messages):
    """Alerts (``alert_messages``) to the anomalies topic."""
    for key, value in messages:
        await anomalies_topic.send(key=key, value=value)


def alert_messages(source, docs, incidents, now, alert=True, quiet=()):
    """The alerts (key, value) of a batch: flagged lines and incidents whose status is ``open`` (none
    for the incidents when ``alert`` is false, or for those in ``quiet``: updates of a burst or a
    silence already announced), as the incidents table stands now."""
    silenced = {i["incident_id"] for i in incidents if not alerting(i, now)}
    messages = [(source, {"type": "line", **line_document(doc, redactor())}) for doc in docs
                if doc["is_anomaly"] and doc.get("incident_id") not in silenced
                and _alerting_id(doc.get("incident_id"), now)]
    messages += [(source, {"type": "incident", **incident_document(incident, redactor())}) for incident in incidents
                 if alert and incident["incident_id"] not in quiet and alerting(incident, now)]
    return messages


def _alerting_id(iid, now):
    incident = incidents_table.get(iid) if iid else None
    return incident is None or alerting(incident, now)


@app.timer(settings.tick_seconds)
async def tick_owned_sources():
    """One tick per source this worker owns (its active partitions of the stats table)."""
    now_s = time.time()
    for source in list(stats_table.keys()):
        await ticks_topic.send(key=source, value={"source": source, "at": now_s})


@app.agent(ticks_topic, concurrency=1)
async def check_sources(stream):
    policy = RATES
    watching_since = time.time()
    waiting = {}   # incident id -> since when its last notification has been seen undelivered
    async for tick in stream:
        source = tick["source"]
        if source not in stats_table:   # the partition moved to another worker since the tick
            continue
        now_s = time.time()
        book = book_table[source]
        held = (len(book.active), len(book.resolved))
        changed, new_episode = silence_incident(source, now_s, policy, watching_since)
        for incident in changed:
            track(book, incident)
        resolved, gone = age(book, incidents_table.get, LIFECYCLE, iso_at(now_s))
        for incident in resolved:
            incidents_table[incident["incident_id"]] = incident
        for iid in gone:
            incidents_table.pop(iid, None)
            sent_table.pop(iid, None)   # a later recurrence is a new incident: its notifications start afresh
        if changed or resolved or gone or (len(book.active), len(book.resolved)) != held:
            book_table[source] = book
        if changed or resolved or gone:
            notes = take_notices(changed + resolved)
            await publish(source, [], changed + resolved, iso_at(now_s), alert=new_episode,
                          quiet={i["incident_id"] for i in resolved}, deleted=gone)
            await send_notices(source, notes)
        await send_notices(source, untold(book, waiting, now_s))


def untold(book, waiting, now_s, patience=30.0):
    """The source's notifications that a crash between deciding and sending left untold: an
    incident's last one, undelivered for ``patience`` seconds of ticks, is sent again (the notifier
    drops it if it was delivered meanwhile)."""
    if not notification_routes():
        return []
    notes = []
    for iid in [*book.active, *book.resolved]:
        incident = incidents_table.get(iid)
        note = undelivered(incident, sent_table.get(iid)) if incident else None
        if note is None:
            waiting.pop(iid, None)
        elif now_s - waiting.setdefault(iid, now_s) >= patience:
            waiting[iid] = now_s
            notes.append((note, incident_document(incident, redactor())))
    return notes


@app.agent(feedback_topic, concurrency=1)
async def apply_operator_feedback(stream):
    async for feedback in stream:
        now = iso_at(time.time())
        iid = feedback.get("incident_id")
        incident = incidents_table.get(iid) if iid else None
        if incident is None:   # never a fresh one: its empty history would overwrite the indexed one
            log.warning("feedback for incident %s, which this worker's table does not hold, ignored: %s", iid,
                        {k: feedback.get(k) for k in ("action", "source", "kind")})
            continue
        try:
            apply_feedback(incident, feedback.get("action"), now, feedback.get("until"))
        except ValueError as exc:
            log.warning("feedback ignored: %s", exc)
            continue
        incidents_table[incident["incident_id"]] = incident
        book = book_table[incident["source"]]
        track(book, incident)
        book_table[incident["source"]] = book
        notes = take_notices([incident])
        log.info("incident %s of %s is now %s", incident["incident_id"], incident["source"], incident["status"])
        document = incident_document(incident, redactor())
        await results_topic.send(key=incident["source"], value={"source": incident["source"], "docs": [],
                                                                "incidents": [document]})
        await anomalies_topic.send(key=incident["source"], value={"type": "incident", **document})
        await send_notices(incident["source"], notes)
