"""Per-source statistics and threshold decisions, without Kafka: Welford, modes, bursts, parsing.

The static rule (learning off); tests/test_online.py covers the learning."""
import json
import random
import statistics

import pytest

from app.inputs.records import dead_letter, parse_log_value
from app.outputs.redaction import Redactor
from model.online import Policy, decide, judge_batch, scored_line
from model.scoring import LineScore
from model.state import SourceMemory, Stats, welford
from tables.records import STATS

CAL = {"mean": 0.5, "std": 1.0}
STATIC = Policy(factor=3.0, warmup_lines=100, learning=False)


def scored(score, offset, version="v1"):
    """A line as the scoring agent hands it to the threshold agent, with the score given."""
    result = LineScore(score=score, tokens=1, unknown=0, base=score, pattern="p")
    return scored_line({"source": "s", "line": "x"}, result, version, "t", 0, offset)




def test_welford_matches_the_batch_formulas():
    rng = random.Random(4)
    values = [rng.gauss(2.0, 0.7) for _ in range(1000)]
    stats = Stats()
    for offset, v in enumerate(values):
        stats = stats.add(v, offset, False)
    assert stats.count == stats.n == 1000 and stats.last_offset == 999
    assert stats.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert stats.std == pytest.approx(statistics.pstdev(values), rel=1e-9)
    assert welford(0, 0.0, 0.0, 5.0) == (1, 5.0, 0.0)


def test_stats_survive_their_changelog_serialisation():
    stats = Stats().add(1.0, 10, False).add(3.0, 11, False).add(50.0, 12, True)
    again = STATS.loads(STATS.dumps(stats))
    assert again == stats and again.std == pytest.approx(1.0) and again.mean == 2.0
    assert (again.count, again.n, again.anomalies, again.last_offset) == (3, 2, 1, 12)


def test_a_changelog_written_by_the_faust_records_of_before_still_recovers():
    """Before issue 22 the tables held Faust records; their JSON carries a ``__faust`` key."""
    old = (b'{"count": 3, "anomalies": 1, "n": 2, "mean": 2.0, "m2": 2.0, "last_offset": 12, "model_version": "v1", '
           b'"all_mean": 18.0, "all_m2": 1352.0, "offsets": {"0": 12}, "__faust": {"ns": "tables.records.Stats"}}')
    stats = STATS.loads(old)
    assert isinstance(stats, Stats) and stats.std == pytest.approx(1.0) and stats.offsets == {"0": 12}
    assert stats.replayed(0, 12) and not stats.replayed(0, 13) and stats.model_version == "v1"


def test_modes_warmup_dynamic_fixed():
    young = Stats(count=500, n=10, mean=9.0, m2=10 * 4.0)  # flagged lines do not end the warm-up
    d = decide(young, CAL, STATIC)
    assert (d.mode, d.threshold, d.mean, d.std) == ("warmup", 3.5, 0.5, 1.0)
    old = Stats(count=500, n=500, mean=2.0, m2=500 * 1.0)  # std 1
    d = decide(old, CAL, STATIC)
    assert (d.mode, d.threshold, d.mean, d.std) == ("dynamic", 5.0, 2.0, 1.0)
    quiet = Stats(count=500, n=500, mean=0.01, m2=500 * 0.0001)  # a source the model knows by heart
    assert decide(quiet, CAL, STATIC).threshold == 3.5  # calibration floor
    d = decide(old, CAL, Policy(fixed=7.25, warmup_lines=100, learning=False))
    assert (d.mode, d.threshold) == ("fixed", 7.25)
    new = Stats(count=10)
    d = decide(new, CAL, Policy(learning=True, learning_lines=50, learning_factor=6.0))
    assert (d.mode, d.threshold) == ("learning", 6.5)  # a new source's learning period: a high bar


def run(stats, scores, offset=0):
    """The threshold agent's own function over one batch; returns the stats and the flagged count."""
    docs = judge_batch([scored(s, offset + i) for i, s in enumerate(scores)], stats, SourceMemory(), CAL, STATIC)
    assert all(d["is_anomaly"] == (d["anomaly_score"] > d["threshold_used"]) for d in docs)
    return stats, sum(d["is_anomaly"] for d in docs)


def test_a_replayed_line_is_decided_again_but_not_counted_twice():
    stats, _ = run(Stats(), [1.0, 2.0, 3.0])
    again, _ = run(STATS.loads(STATS.dumps(stats)), [1.0, 2.0, 3.0])  # the same offsets after a crash
    assert again == stats and again.count == 3


def test_a_new_model_version_rebases_the_baseline_without_a_jump():
    rng = random.Random(2)
    stats, _ = run(Stats(), [abs(rng.gauss(2.5, 0.6)) for _ in range(1000)])
    before = decide(stats, CAL, STATIC).threshold
    judge_batch([scored(1.0, 1000, version="v2")], stats, SourceMemory(), CAL, STATIC)
    assert stats.model_version == "v2" and stats.n == 101  # the old baseline weighs one warm-up now
    after = decide(stats, CAL, STATIC)
    assert after.mode == "dynamic" and after.threshold == pytest.approx(before, rel=0.1)  # no jump, no blind spell
    judge_batch([scored(abs(rng.gauss(1.0, 0.2)), 1001 + i, "v2") for i in range(1000)], stats, SourceMemory(), CAL,
                STATIC)
    assert before > 4.0 and decide(stats, CAL, STATIC).threshold == 3.5  # it follows the new model's lower scale


def test_a_burst_of_anomalies_cannot_hide_itself():
    rng = random.Random(1)
    stats, _ = run(Stats(), [abs(rng.gauss(2.5, 0.6)) for _ in range(1000)])
    before = decide(stats, CAL, STATIC)
    stats, flagged = run(stats, [30.0] * 2000, offset=1000)  # twice as many anomalies as normal lines
    after = decide(stats, CAL, STATIC)
    assert flagged == 2000
    assert after == before and after.mode == "dynamic"
    assert stats.count == 3000 and stats.anomalies >= 2000


def test_clipping_flagged_scores_would_let_a_burst_hide_itself():
    """Why flagged scores stay out of the baseline: the clipped alternative ratchets up."""
    rng = random.Random(1)
    stats, _ = run(Stats(), [abs(rng.gauss(2.5, 0.6)) for _ in range(1000)])
    missed = 0
    for offset in range(1000, 3000):
        d = decide(stats, CAL, STATIC)
        missed += not 30.0 > d.threshold
        stats = stats.add(min(30.0, d.threshold), offset, False)  # clipped, and counted in the baseline
    assert missed > 500


@pytest.mark.parametrize("value,reason", [
    (b"\xff\xfe oops", "undecodable"),
    (b"{not json", "not_json"),
    (b'"a string"', "not_object"),
    (b'{"line": "x"}', "missing_fields"),
    (b'{"source": "s", "line": 5}', "missing_fields"),
    (b'{"source": "s", "line": "  \\t "}', "empty_line"),
    (b'{"source": "s", "line": "' + b"x" * 2000 + b'"}', "too_large"),
])
def test_bad_records_get_a_reason(value, reason):
    record, got, detail = parse_log_value(value, max_bytes=1000)
    assert record is None and got == reason and detail


def test_good_record_gets_defaults():
    record, reason, _ = parse_log_value(json.dumps({"source": "log-a", "line": "hello"}).encode())
    assert reason is None
    assert record == {"source": "log-a", "line": "hello", "file": "", "line_no": 0, "ingested_at": None, "host": ""}


def test_dead_letter_document_keeps_a_preview():
    doc = dead_letter("undecodable", "bad", Redactor(), key=b"log-a", value=b"\xff" * 10, topic="t", partition=1, offset=7)
    # redaction is on by default: bytes that are not UTF-8 are shown with replacement characters
    # (a base64 preview could hide a secret from the rules), the exact bytes stay at the offset
    assert doc["preview_encoding"] == "utf-8-replaced" and doc["value_preview"] == "\ufffd" * 10
    assert doc["size"] == 10 and doc["key"] == "log-a"
    leaked = dead_letter("undecodable", "bad", Redactor(), value=b"\xff password=hunter2 \xfe")
    assert "hunter2" not in leaked["value_preview"] and "password=" in leaked["value_preview"]
    assert (doc["source_topic"], doc["partition"], doc["offset"]) == ("t", 1, 7)


def test_a_source_spread_over_partitions_is_counted_per_partition():
    """A shipper that does not key records by source spreads a source over several log-topic
    partitions, each with its own offsets: a low offset of another partition is no replay."""
    lines = [dict(scored(1.0, offset), kafka_partition=partition)
             for offset, partition in ((1000, 0), (5, 1), (1001, 0), (6, 1), (7, 1))]
    stats = Stats()
    judge_batch(lines, stats, SourceMemory(), CAL, STATIC)
    assert stats.count == 5 and stats.offsets == {"0": 1001, "1": 7}
    judge_batch(lines[1:3], stats, SourceMemory(), CAL, STATIC)   # replayed after a crash
    assert stats.count == 5
    assert STATS.loads(STATS.dumps(stats)).offsets == {"0": 1001, "1": 7}


def test_a_completion_indexes_then_alerts_then_acks_and_acks_when_indexing_fails(monkeypatch):
    """agents.threshold.complete: what the threshold agent hands over after deciding a take."""
    import asyncio

    from app.faust_app import app  # noqa: F401  (the worker's import order: the app, then its agents)
    from agents import incidents, threshold

    calls = []

    class Stream:
        async def ack(self, event):
            calls.append(("ack", event))

    class Alerts:
        async def send(self, key, value):
            calls.append(("alert", key, value["type"]))

    async def index(es, docs, incidents):
        calls.append(("index", [d["id"] for d in docs], len(incidents)))

    monkeypatch.setattr(threshold, "index_batch", index)
    monkeypatch.setattr(incidents, "anomalies_topic", Alerts())
    class Notices:
        async def send(self, key, value):
            calls.append(("notice", key, [n["state"] for n in value["notes"]]))

    monkeypatch.setattr(incidents, "notifications_topic", Notices())
    decided = [("a", [{"id": "t-0-1"}, {"id": "t-0-2"}], [], [("a", {"type": "line"})], []),
               ("b", [{"id": "t-1-7"}], [], [], [({"incident_id": "i", "state": "opened"}, {})])]
    asyncio.run(threshold.complete(Stream(), None, ["e1", "e2"], decided))
    assert calls == [("index", ["t-0-1", "t-0-2", "t-1-7"], 0), ("alert", "a", "line"), ("notice", "b", ["opened"]),
                     ("ack", "e1"), ("ack", "e2")]

    async def failing(es, docs, incidents):
        raise RuntimeError("bulk body failed")

    calls.clear()
    monkeypatch.setattr(threshold, "index_batch", failing)
    with pytest.raises(RuntimeError):
        asyncio.run(threshold.complete(Stream(), None, ["e1", "e2"], decided))
    assert calls == [("ack", "e1"), ("ack", "e2")]   # acked all the same: nothing may stay unacked
