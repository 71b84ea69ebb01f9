"""Incidents, feedback, rate and silence, event time and the documents' field names, without Kafka:
the functions the worker runs (model/incidents.py, model/rates.py, model/eventtime.py,
app/outputs/documents.py, model.online.judge_batch's ``marked_normal``)."""
from datetime import datetime, timezone

import pytest

from app.outputs.mappings import INCIDENT_MAPPING, MAPPING
from app.outputs.documents import line_document
from app.outputs.redaction import Redactor
from app.inputs.traffic import failure_line, service_lines
from model.eventtime import event_time, iso
from model.incidents import apply_feedback, count_line, current_status, document, incident_id, new_incident, \
    parse_duration
from model.online import Policy, judge_batch, new_state, scored_line
from model.rates import RatePolicy, is_burst, is_silent, note_lines, roll, silence_after
from model.state import RateState

REF = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("line, expected", [
    ("2015-10-18 18:01:48,963 INFO [main] x", "2015-10-18T18:01:48.963+00:00"),
    ("2026-11-28T10:00:00.5+02:00 level=info svc=a", "2026-11-28T08:00:00.500+00:00"),
    ("1117838976 2005.06.03 R02-M1-N0 2005-06-03-15.49.36.156884 RAS KERNEL", "2005-06-03T22:49:36.000+00:00"),
    ("[Sun Dec 04 04:51:08 2005] [notice] jk2_init()", "2005-12-04T04:51:08.000+00:00"),
    ("081109 204005 35 INFO dfs.FSNamesystem: x", "2008-11-09T20:40:05.000+00:00"),
    ("Dec 10 06:55:46 LabSZ sshd[24200]: x", "2025-12-10T06:55:46.000+00:00"),   # no year: not in the future
    ("Jan  4 06:55:46 host x", "2026-01-04T06:55:46.000+00:00"),
    ("03-17 16:13:38.820  1702  8671 D PowerManagerService", "2025-03-17T16:13:38.820+00:00"),
])
def test_event_time_reads_the_timestamp_the_line_states(line, expected):
    assert iso(event_time(line, "UTC", REF)) == expected


def test_event_time_uses_the_configured_zone_and_gives_up_cleanly():
    assert iso(event_time("2015-10-18 18:01:48 x", "Europe/Berlin", REF)) == "2015-10-18T16:01:48.000+00:00"
    assert event_time("no time here at all", "UTC", REF) is None
    assert event_time("2015-13-45 18:01:48 month 13", "UTC", REF) is None
    assert event_time("x" * 200 + " 2015-10-18 18:01:48", "UTC", REF) is None   # only the line's head counts


def test_event_time_prechecks_change_no_result():
    """The cheap pre-checks (model/eventtime.py _PRECHECK) only skip shapes that could not match:
    same times on every Loghub line and on random mixes of timestamp pieces."""
    import random
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    shared = root.parent / "shared" / "datasets" / "loghub"
    folder = shared if shared.is_dir() else root / "data" / "loghub"
    lines = [line for path in sorted(folder.glob("*.log")) for line in path.read_text(errors="replace").splitlines()]
    rng = random.Random(5)
    pieces = ["2005-06-03", "-15.42.50.675872", " 12:01:01", "T04:05:06Z", "Dec 10 ", "Mon Dec 04 04:47:44 2005",
              "[10/Oct/2000:13:55:36 -0700]", "081109 203615", "03-17 16:13:38.820", "1117838570", "- ", " ", "x"]
    lines += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 5))) for _ in range(5000)]
    for line in lines:
        assert event_time(line, "Europe/Berlin", REF) == event_time(line, "Europe/Berlin", REF, prechecks=False), line


def flagged_doc(offset, line="boom", score=5.0, pattern="p1", at="2026-01-05T12:00:00.000+00:00"):
    return {"id": f"t-0-{offset}", "kafka_offset": offset, "@timestamp": at, "anomaly_score": score,
            "threshold_used": 1.0, "top_tokens": ["boom"], "level": 3, "line": line, "pattern_id": pattern}


def test_an_incident_counts_each_line_once_even_when_replayed():
    incident = new_incident("svc", "content", "p1", "2026-01-05T12:00:00.000+00:00")
    for offset in range(50):
        assert count_line(incident, flagged_doc(offset, score=5.0 + offset % 3), max_examples=5)
    for offset in range(30, 50):   # a worker killed before committing replays its last lines
        assert not count_line(incident, flagged_doc(offset), max_examples=5)
    assert incident["count"] == 50
    assert incident["max_score"] == 7.0
    assert [e["doc_id"] for e in incident["examples"]] == [f"t-0-{i}" for i in range(5)]
    assert incident["level"] == "error" and incident["top_tokens"] == ["boom"]
    assert incident["incident_id"] == incident_id("svc", "content", "p1") != incident_id("svc2", "content", "p1")


def test_feedback_changes_the_status_and_a_suppression_runs_out():
    incident = new_incident("svc", "content", "p1", "2026-01-05T12:00:00.000+00:00")
    apply_feedback(incident, "suppress", "2026-01-05T12:00:00.000+00:00", until="2026-01-05T14:00:00.000+00:00")
    assert current_status(incident, "2026-01-05T13:59:59.000+00:00") == "suppressed"
    assert current_status(incident, "2026-01-05T14:00:01.000+00:00") == "open"
    apply_feedback(incident, "normal", "2026-01-05T12:01:00.000+00:00")
    assert incident["status"] == "normal" and incident["suppressed_until"] is None
    apply_feedback(incident, "reopen", "2026-01-05T12:02:00.000+00:00")
    assert incident["status"] == "open"
    with pytest.raises(ValueError):
        apply_feedback(incident, "delete", "2026-01-05T12:02:00.000+00:00")
    assert parse_duration("2h").total_seconds() == 7200 and parse_duration("90").total_seconds() == 90
    with pytest.raises(ValueError):
        parse_duration("two hours")


def test_a_pattern_marked_normal_is_not_flagged_and_its_words_are_learned(default_scorer):
    policy = Policy(learning=True, learning_lines=100, warmup_lines=100)
    normal = service_lines("payments", 400, seed=3)
    failure = failure_line("payments", seed=5)
    lines = normal + [failure] + service_lines("payments", 50, seed=4) + [failure]
    scored = [scored_line({"source": "s", "line": line, "ingested_at": "2026-01-05T12:00:00.000+00:00"}, r,
                          default_scorer.model_version, "t", 0, i)
              for i, (line, r) in enumerate(zip(lines, default_scorer.score_batch(lines)))]
    pattern = scored[400]["pattern"]

    stats, memory = new_state()
    docs = judge_batch(scored, stats, memory, default_scorer.calibration, policy, default_scorer.prior_at_fatal)
    assert docs[400]["is_anomaly"], "the planted failure must be caught first"

    stats, memory = new_state()
    docs = judge_batch(scored[:401], stats, memory, default_scorer.calibration, policy, default_scorer.prior_at_fatal)
    assert docs[400]["is_anomaly"]
    anomalies_before = stats.anomalies
    marked = {pattern: "inc-1"}   # the operator said: normal
    docs = judge_batch(scored[401:], stats, memory, default_scorer.calibration, policy, default_scorer.prior_at_fatal,
                       marked_normal=marked.get)
    assert not docs[-1]["is_anomaly"] and docs[-1]["incident_id"] == "inc-1"
    assert stats.anomalies == anomalies_before + sum(d["is_anomaly"] for d in docs)
    assert all(token in memory.tokens for token, _, _ in scored[-1]["novel"])   # learned


def rate_state_after(counts, policy, start=1000.0):
    """A source that sent counts[i] lines in window i, in one batch each at the window's middle."""
    state = RateState()
    by_window = {}
    for i, count in enumerate(counts):
        now = start + i * policy.window + policy.window / 2
        roll(state, now, policy, lambda s: by_window.get(s, 0))
        by_window[start + i * policy.window] = count
        note_lines(state, now, count)
    return state, by_window


def test_a_burst_is_far_above_the_usual_rate_and_stays_out_of_it():
    policy = RatePolicy(window=10.0, min_windows=5, factor=4.0, ratio=3.0, min_lines=20)
    state, _ = rate_state_after([50, 55, 48, 52, 50, 47, 53], policy)
    assert state.n == 6 and 47 < state.mean < 55
    assert not is_burst(state, 60, policy)
    assert is_burst(state, 400, policy)
    young, _ = rate_state_after([50, 50, 50], policy)
    assert not is_burst(young, 400, policy), "no burst before the usual rate is known"
    quiet, _ = rate_state_after([1, 2, 1, 1, 2, 1, 1], policy)
    assert not is_burst(quiet, 15, policy), "a burst is at least min_lines lines"


def test_silence_needs_a_steady_source_and_a_gap_far_beyond_its_usual_ones():
    policy = RatePolicy(window=1.0, min_windows=5, silence_factor=5.0, silence_min=3.0, min_gaps=10)
    state, _ = rate_state_after([10] * 20, policy)   # a batch every second
    last = state.last_line_at
    assert silence_after(state, policy) == pytest.approx(5.0, abs=0.5)
    assert not is_silent(state, last + 2.0, policy)
    assert is_silent(state, last + 6.0, policy)
    state.silent_since = last + 6.0
    assert note_lines(state, last + 20.0, 5) == pytest.approx(20.0)   # the silence ended after 20 s
    assert state.silent_since == 0.0 and state.gap_n == 19            # ... and that gap is no usual gap
    assert not is_silent(rate_state_after([10, 10], policy)[0], last + 100, policy), "not steady yet"


def flatten(mapping, prefix=""):
    out = set()
    for name, spec in mapping["properties"].items():
        out |= flatten(spec, prefix + name + ".") if "properties" in spec else {prefix + name}
    return out


def flat_keys(doc, prefix=""):
    out = set()
    for key, value in doc.items():
        out |= flat_keys(value, prefix + key + ".") if isinstance(value, dict) and key != "examples" else {prefix + key}
    return out


def test_documents_carry_ecs_names_and_every_field_is_mapped(default_scorer):
    line = "2015-10-18 18:01:48,963 ERROR [main] disk on fire"
    result = default_scorer.score_batch([line])[0]
    record = {"source": "hadoop", "file": "/var/log/h.log", "line_no": 7, "line": line, "host": "node-1",
              "ingested_at": "2026-01-05T12:00:00.000+00:00", "event_time": "2015-10-18T18:01:48.963+00:00"}
    scored = scored_line(record, result, "v", "t", 0, 0, "2026-01-05T12:00:00.100+00:00")
    doc = judge_batch([scored], *new_state(), default_scorer.calibration, Policy())[0]
    out = line_document(dict(doc, incident_id="abc"), Redactor())
    assert out["@timestamp"] == "2015-10-18T18:01:48.963+00:00" and out["timestamp_source"] == "line"
    assert out["message"] == line and out["host"]["name"] == "node-1" and out["log"]["file"]["path"] == "/var/log/h.log"
    assert out["event"]["dataset"] == "hadoop" and out["log"]["level"] == "error"
    for field in ("anomaly_score", "is_anomaly", "threshold_used", "mean_score", "std_score", "incident_id"):
        assert field in out
    assert flat_keys(out) - {"id", "indexed_at"} <= flatten(MAPPING), flat_keys(out) - flatten(MAPPING)
    no_time = judge_batch([dict(scored, event_time=None)], *new_state(), default_scorer.calibration, Policy())[0]
    assert no_time["@timestamp"] == scored["ingested_at"] and no_time["timestamp_source"] == "ingest"

    incident = new_incident("hadoop", "content", "p", "2026-01-05T12:00:00.000+00:00")
    count_line(incident, dict(doc, id="t-0-0"), 3)
    assert flat_keys(document(incident)) <= flatten(INCIDENT_MAPPING), flat_keys(document(incident)) - flatten(
        INCIDENT_MAPPING)


def test_odd_times_and_numbers_never_raise():
    from app.inputs.records import parse_log_value
    from agents.scoring import times
    from model.eventtime import checked_zone, parse_iso

    assert parse_iso("0001-01-01T00:00:00+01:00") is None and parse_iso("9999-12-31T23:59:59-05:00") is None
    assert event_time("9999-12-31 23:59:59 x", "America/New_York", REF) is None
    record, reason, _ = parse_log_value(b'{"source": "s", "line": "x", "n": ' + b"9" * 5000 + b"}")
    assert record is None and reason == "not_json"
    record, _, _ = parse_log_value(b'{"source": "s", "line": "x", "ingested_at": "9999-12-31T23:59:59-05:00"}')
    ingested, stated = times(record, "2026-01-05T12:00:00.000+00:00")
    assert ingested == "2026-01-05T12:00:00.000+00:00" and stated is None
    with pytest.raises(ValueError, match="CLOGS_TIMEZONE"):
        checked_zone("Mars/Olympus_Mons")


def test_incident_counts_are_kept_per_log_partition():
    incident = new_incident("svc", "content", "p1", "2026-01-05T12:00:00.000+00:00")
    for offset, partition in ((900, 0), (3, 1), (901, 0), (4, 1)):
        assert count_line(incident, dict(flagged_doc(offset), kafka_partition=partition), 5)
    assert not count_line(incident, dict(flagged_doc(3), kafka_partition=1), 5)
    assert incident["count"] == 4 and "offsets" not in document(incident)
