"""Per-source statistics and threshold decisions, without Kafka: Welford, modes, bursts, parsing."""
import json
import random
import statistics

import pytest

from agents.decision import decide
from agents.parsing import dead_letter, parse_log_value
from tables.records import Stats, welford

CAL = {"mean": 0.5, "std": 1.0}




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
    again = Stats.loads(stats.dumps())
    assert again == stats and again.std == pytest.approx(1.0) and again.mean == 2.0
    assert (again.count, again.n, again.anomalies, again.last_offset) == (3, 2, 1, 12)


def test_modes_warmup_dynamic_fixed():
    young = Stats(count=500, n=10, mean=9.0, m2=10 * 4.0)  # flagged lines do not end the warm-up
    d = decide(young, CAL, factor=3.0, fixed=None, warmup_lines=100)
    assert (d.mode, d.threshold, d.mean, d.std) == ("warmup", 3.5, 0.5, 1.0)
    old = Stats(count=500, n=500, mean=2.0, m2=500 * 1.0)  # std 1
    d = decide(old, CAL, factor=3.0, fixed=None, warmup_lines=100)
    assert (d.mode, d.threshold, d.mean, d.std) == ("dynamic", 5.0, 2.0, 1.0)
    quiet = Stats(count=500, n=500, mean=0.01, m2=500 * 0.0001)  # a source the model knows by heart
    assert decide(quiet, CAL, factor=3.0, fixed=None, warmup_lines=100).threshold == 3.5  # calibration floor
    d = decide(old, CAL, factor=3.0, fixed=7.25, warmup_lines=100)
    assert (d.mode, d.threshold) == ("fixed", 7.25)


def run(stats, scores, offset=0):
    """The threshold agent's rule, line by line: decide, then count."""
    flagged = 0
    for score in scores:
        d = decide(stats, CAL, factor=3.0, fixed=None, warmup_lines=100)
        flagged += score > d.threshold
        stats = stats.add(score, offset, score > d.threshold)
        offset += 1
    return stats, flagged


def test_a_burst_of_anomalies_cannot_hide_itself():
    rng = random.Random(1)
    stats, _ = run(Stats(), [abs(rng.gauss(2.5, 0.6)) for _ in range(1000)])
    before = decide(stats, CAL, factor=3.0, fixed=None, warmup_lines=100)
    stats, flagged = run(stats, [30.0] * 2000, offset=1000)  # twice as many anomalies as normal lines
    after = decide(stats, CAL, factor=3.0, fixed=None, warmup_lines=100)
    assert flagged == 2000
    assert after == before and after.mode == "dynamic"
    assert stats.count == 3000 and stats.anomalies >= 2000


def test_clipping_flagged_scores_would_let_a_burst_hide_itself():
    """Why flagged scores stay out of the baseline: the clipped alternative ratchets up."""
    rng = random.Random(1)
    stats, _ = run(Stats(), [abs(rng.gauss(2.5, 0.6)) for _ in range(1000)])
    missed = 0
    for offset in range(1000, 3000):
        d = decide(stats, CAL, factor=3.0, fixed=None, warmup_lines=100)
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
    doc = dead_letter("undecodable", "bad", key=b"log-a", value=b"\xff" * 10, topic="t", partition=1, offset=7)
    assert doc["preview_encoding"] == "base64" and doc["size"] == 10 and doc["key"] == "log-a"
    assert (doc["source_topic"], doc["partition"], doc["offset"]) == ("t", 1, 7)
