"""Online learning without Kafka: the worker's own ``judge_batch`` on a service the shipped model
has never seen (app/inputs/traffic.py), its guards, its bounds, and ``evaluate --online``."""
import csv

import pytest

from app.inputs.traffic import failure_line, service_lines
from model.evaluate import evaluate_online
from model.online import Policy, forget_least_recent, judge_batch, new_state, scored_line
from model.scoring import LineScore
from model.state import SourceMemory, Stats
from tables.records import MEMORY, STATS

LEARNING = Policy(learning=True, learning_lines=100, warmup_lines=100)
STATIC = Policy(learning=False, warmup_lines=100)


def scored_lines(scorer, lines, source="log-new", start=0):
    return [scored_line({"source": source, "line": line}, result, scorer.model_version, "t", 0, start + i)
            for i, (line, result) in enumerate(zip(lines, scorer.score_batch(lines)))]


def stream(scorer, lines, policy, state=None, source="log-new", start=0, batch=64):
    """Micro-batches through judge_batch, as the threshold agent sees them; returns (docs, state)."""
    stats, memory = state or new_state()
    scored = scored_lines(scorer, lines, source, start)
    docs = []
    for i in range(0, len(scored), batch):
        docs += judge_batch(scored[i:i + batch], stats, memory, scorer.calibration, policy, scorer.prior_at_fatal)
    return docs, (stats, memory)


def test_an_unseen_source_stops_being_flagged_and_a_new_error_is_still_caught(default_scorer):
    normal = service_lines("payments", 1500, seed=1)
    static, _ = stream(default_scorer, normal, STATIC)
    assert sum(d["is_anomaly"] for d in static[-500:]) > 400  # the shipped model alone flags it line after line
    docs, state = stream(default_scorer, normal, LEARNING)
    late = docs[-500:]
    assert sum(d["is_anomaly"] for d in late) <= 2, [d["line"] for d in late if d["is_anomaly"]]
    assert {d["threshold_mode"] for d in docs[:100]} == {"learning"} and late[-1]["threshold_mode"] == "dynamic"
    assert sum(d["is_anomaly"] for d in docs[:100]) <= 5  # the learning period flags only above its high bar
    failure = failure_line("payments", seed=1)
    burst, state = stream(default_scorer, [failure] * 30, LEARNING, state, start=1500)
    assert all(d["is_anomaly"] for d in burst)  # a new error is flagged from its first line, all through its burst
    assert burst[0]["pattern_seen"] == burst[-1]["pattern_seen"] == 0
    assert set(burst[0]["top_tokens"]) & set(failure.split())  # with the words that explain it
    recurring = (normal[:LEARNING.window] + [failure]) * 8  # the same error again, once in every later window
    docs, _ = stream(default_scorer, recurring, LEARNING, state, start=1530)
    flags = [d["is_anomaly"] for d in docs if d["line"] == failure]
    assert flags[0] and not any(flags[-3:])  # it fades as it recurs over time


def test_one_source_cannot_teach_another_its_anomalies(default_scorer):
    failure = failure_line("inventory", seed=2)
    _, warm_a = stream(default_scorer, service_lines("inventory", 600, seed=2), LEARNING, source="log-a")
    _, warm_b = stream(default_scorer, service_lines("inventory", 600, seed=3), LEARNING, source="log-b")
    rounds = (service_lines("inventory", LEARNING.window, seed=4) + [failure]) * 10
    taught, _ = stream(default_scorer, rounds, LEARNING, warm_a, source="log-a", start=600)
    assert not taught[-1]["is_anomaly"] and taught[-1]["pattern_seen"] >= 8  # source A has learned its own line
    first_in_b, _ = stream(default_scorer, [failure], LEARNING, warm_b, source="log-b", start=600)
    assert first_in_b[0]["is_anomaly"] and first_in_b[0]["pattern_seen"] == 0


def test_learning_off_is_the_static_model(default_scorer):
    lines = service_lines("inventory", 50, seed=4)
    docs, (stats, memory) = stream(default_scorer, lines, STATIC)
    assert [d["anomaly_score"] for d in docs] == [r.score for r in default_scorer.score_batch(lines)]
    assert memory.patterns == {} and stats.count == 50


def test_a_replay_after_a_crash_is_not_learned_twice(default_scorer):
    lines = service_lines("payments", 300, seed=5)
    _, (stats, memory) = stream(default_scorer, lines, LEARNING)
    saved = (STATS.loads(STATS.dumps(stats)), MEMORY.loads(MEMORY.dumps(memory)))
    stream(default_scorer, lines[200:], LEARNING, (stats, memory), start=200)  # offsets 200-299 again
    assert stats == saved[0] and memory.patterns == saved[1].patterns and memory.tokens == saved[1].tokens


def test_memory_is_bounded_and_forgets_the_least_recently_seen():
    entries = {f"p{i}": [1, i] for i in range(1001)}
    forget_least_recent(entries, 1000)
    assert len(entries) == 900 and "p0" not in entries and "p100" not in entries and "p101" in entries
    memory = SourceMemory()
    policy = Policy(max_patterns=50, max_tokens=20)
    lines = [scored_line({"source": "s", "line": f"x{i}"},
                         LineScore(score=1.0, tokens=1, unknown=1, base=1.0, novel=[[f"tok{i}", 5.0, 1]], pattern=f"p{i}",
                                   level=1), "v", "t", 0, i) for i in range(500)]
    judge_batch(lines, Stats(), memory, {"mean": 0.0, "std": 100.0}, policy)
    assert len(memory.patterns) <= 50 and len(memory.tokens) <= 20 and "p499" in memory.patterns
    assert MEMORY.loads(MEMORY.dumps(memory)).patterns == memory.patterns


def test_evaluate_online_decides_like_the_worker(default_scorer, tmp_path):
    lines = service_lines("inventory", 400, seed=6) + [failure_line("inventory", seed=6)]
    (tmp_path / "svc.log").write_text("\n".join(lines) + "\n")
    result, _ = evaluate_online(default_scorer, tmp_path / "svc.log", tmp_path / "out", LEARNING, progress=False)
    with open(tmp_path / "out" / "test_anomaly_results.csv") as handle:
        rows = list(csv.DictReader(handle))
    docs, _ = stream(default_scorer, lines, LEARNING, batch=37)  # other batch boundaries, same decisions
    assert [r["is_anomaly"] == "True" for r in rows] == [d["is_anomaly"] for d in docs]
    assert [float(r["score"]) for r in rows] == pytest.approx([d["anomaly_score"] for d in docs], abs=1e-6)
    assert rows[-1]["is_anomaly"] == "True" and result["n_anomalies"] == sum(d["is_anomaly"] for d in docs)
    assert result["modes"]["learning"] == 100


def test_a_retrained_model_rehearses_its_parent_and_travels_as_bytes(tmp_path):
    from model import Scorer
    from model.checkpoint import to_bytes
    from model.continual import retrain
    from model.train import train

    parent = train(service_lines("payments", 300, seed=7), epochs=1, progress=False)
    assert len(parent.replay) == 300 and "ledger" in parent.vocab
    child = retrain(service_lines("inventory", 300, seed=7), parent, epochs=1, threads=0)
    assert "ledger" in child.vocab and "svc=inventory" in child.vocab  # the parent's traffic is not forgotten
    assert child.config["parent_version"] == parent.model_version and child.config["samples"] == 300
    again = Scorer.from_bytes(to_bytes(child.save(tmp_path / "child")))
    assert again.model_version == child.model_version and again.replay == child.replay
    lines = service_lines("inventory", 20, seed=8)
    assert [r.score for r in again.score_batch(lines)] == pytest.approx([r.score for r in child.score_batch(lines)])


STARTUP = ["2026-11-28T10:00:00.000 INFO payments: starting payments service version 4.2.1",
           "2026-11-28T10:00:00.100 INFO payments: loaded configuration from /etc/payments/config.yaml",
           "2026-11-28T10:00:00.200 INFO payments: connected to the ledger database in 12 ms",
           "2026-11-28T10:00:00.300 INFO payments: listening on port 8443"]


def test_a_restart_is_seen_when_the_start_up_lines_come_back_together(default_scorer):
    normal = service_lines("payments", 1200, seed=2)
    docs, state = stream(default_scorer, STARTUP + normal, LEARNING)
    assert not any(d.get("restart") for d in docs)
    assert not any(d["is_anomaly"] for d in docs[-600:])   # the start-up lines are familiar by now
    again, state = stream(default_scorer, STARTUP + normal[:200], LEARNING, state, start=len(docs))
    restarts = [d for d in again if d.get("restart")]
    assert [d["line"] for d in restarts] == [STARTUP[2]]   # the third start-up line to come back names it
    assert restarts[0]["is_anomaly"] and restarts[0]["pattern_id"] == "restart"
    later = normal[200:800] + STARTUP[:1] + normal[800:850]
    one, state = stream(default_scorer, later, LEARNING, state, start=len(docs) + len(again))
    assert not any(d.get("restart") for d in one)   # one rare line coming back is not a restart
    second, _ = stream(default_scorer, STARTUP + normal[850:900], LEARNING, state,
                       start=len(docs) + len(again) + len(one))
    # the next restart too (its first line came back alone 50 lines ago: the other three name it)
    assert [d["line"] for d in second if d.get("restart")] == [STARTUP[3]]


def test_a_storm_of_new_patterns_is_calmed_but_a_line_far_over_the_threshold_still_stands_out():
    from model.online import NOVEL_PER_WINDOW, STORM_FACTOR, calmed

    memory, policy, threshold = SourceMemory(), LEARNING, 8.0
    position = 10 * policy.window   # a settled source, ten windows in
    # a boot: brand-new patterns one after another, each over the threshold but not far over it
    calm = [calmed(memory, 10.0, threshold, position + i, policy) for i in range(20)]
    assert calm == [False] * NOVEL_PER_WINDOW + [True] * (20 - NOVEL_PER_WINDOW)
    assert not calmed(memory, STORM_FACTOR * threshold + 0.1, threshold, position + 20, policy)   # a failure in it
    assert not calmed(memory, 10.0, threshold, position + policy.window, policy)   # the next window starts afresh


def test_on_a_stream_the_calm_leaves_a_new_error_s_burst_flagged(default_scorer):
    normal = service_lines("payments", 1200, seed=3)
    docs, state = stream(default_scorer, normal, LEARNING)
    failure = failure_line("payments", seed=3)
    burst, _ = stream(default_scorer, [failure] * 20, LEARNING, state, start=len(docs))
    assert all(d["is_anomaly"] for d in burst)   # repeats of a flagged pattern are no storm of new ones
