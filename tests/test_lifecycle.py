"""The incident lifecycle (model/incidents.py): resolution after a quiet period in the incident's own
time, reopening on recurrence, retention, and the bound on a source's incidents."""
from model.incidents import Lifecycle, advance, age, apply_feedback, new_incident, reopen, resolve, track
from model.state import SourceIncidents

POLICY = Lifecycle(content_quiet=60, rate_quiet=30, retention=120, max_active=3)


def at(seconds):
    """An ISO time `seconds` after 2026-01-05T10:00:00Z."""
    return f"2026-01-05T10:{int(seconds) // 60:02d}:{int(seconds) % 60:02d}.000+00:00"


def incident(kind, pattern, last_seen):
    found = new_incident("s", kind, pattern, at(0))
    found["last_seen"] = at(last_seen)
    return found


def book_of(*incidents, watermark=0):
    book = SourceIncidents(watermark=at(watermark))
    for one in incidents:
        track(book, one)
    return book


def test_a_content_incident_resolves_once_its_source_has_moved_on_by_the_quiet_period():
    one = incident("content", "p", 100)
    table = {one["incident_id"]: one}
    book = book_of(one, watermark=150)
    assert age(book, table.get, POLICY, at(9999)) == ([], [])   # event time, not the worker's clock
    assert one["status"] == "open" and one["incident_id"] in book.active
    book.watermark = at(160)
    resolved, gone = age(book, table.get, POLICY, at(0))
    assert resolved == [one] and gone == [] and one["status"] == "resolved" and one["resolved_at"] == at(160)
    assert book.active == {} and book.resolved == {one["incident_id"]: at(160)}
    book.watermark = at(279)
    assert age(book, table.get, POLICY, at(0)) == ([], [])
    book.watermark = at(280)                                    # the retention is over: it leaves the table
    assert age(book, table.get, POLICY, at(0)) == ([], [one["incident_id"]]) and book.resolved == {}


def test_rate_incidents_age_by_the_workers_clock_and_silences_only_end_when_lines_return():
    burst, quiet = incident("rate", "rate", 100), incident("silence", "silence", 100)
    table = {i["incident_id"]: i for i in (burst, quiet)}
    book = book_of(burst, quiet, watermark=0)
    resolved, _ = age(book, table.get, POLICY, at(131))
    assert resolved == [burst] and quiet["status"] == "open" and quiet["incident_id"] in book.active


def test_reopen_is_the_same_incident_counted_again_and_feedback_takes_it_out_of_the_lifecycle():
    one = incident("content", "p", 100)
    book = book_of(one, watermark=100)
    resolve(one, at(200))
    track(book, one)
    reopen(one, at(300))
    track(book, one)
    assert one["status"] == "open" and one["reopened"] == 1 and one["resolved_at"] is None
    assert one["incident_id"] in book.active and one["incident_id"] not in book.resolved
    apply_feedback(one, "normal", at(310))
    track(book, one)
    assert book.active == {} and book.resolved == {}   # a pattern marked normal stays in the table for good


def test_at_most_max_active_incidents_wait_the_least_recently_seen_resolve_first():
    many = [incident("content", f"p{i}", 100 + i) for i in range(5)]
    table = {i["incident_id"]: i for i in many}
    book = book_of(*many, watermark=110)
    resolved, _ = age(book, table.get, POLICY, at(0))
    assert [i["pattern"] for i in resolved] == ["p0", "p1"] and len(book.active) == 3


def test_the_watermark_follows_the_lines_but_not_a_date_far_past_their_arrival():
    book = SourceIncidents()
    arrived = "2026-01-05T10:05:00.000+00:00"
    advance(book, [{"@timestamp": at(100), "ingested_at": arrived}, {"@timestamp": at(50), "ingested_at": arrived}])
    assert book.watermark == at(100)
    advance(book, [{"@timestamp": "2031-05-01T00:00:00.000+00:00", "ingested_at": arrived}])   # "valid until 2031"
    assert book.watermark == at(100)
    advance(book, [{"@timestamp": "2005-06-03T15:42:50.000+00:00", "ingested_at": arrived}])   # an old log replayed
    assert book.watermark == at(100)
