"""Online learning on the real Kafka and Elasticsearch: a running worker learns a service no model
has seen, its own trainer retrains and publishes a model, and the worker swaps it in without a
restart -- every line indexed once, each with the version that scored it; and ``clogs evaluate
--online`` decides a file exactly as the worker does; the learning state moves with its sources
to another worker."""
import csv
import signal

import pytest

from app.settings import Settings
from app.inputs.traffic import failure_line, service_lines
from model.evaluate import evaluate_online
from model.online import Policy
from tests.streaming_helpers import Worker, es_count, es_docs, run_cli, wait_for, write_logs

pytestmark = [pytest.mark.services, pytest.mark.slow]

TRAINER = {"CLOGS_TRAINER": "auto", "CLOGS_RETRAIN_SECONDS": "2", "CLOGS_RETRAIN_MIN_NEW": "200",
           "CLOGS_RETRAIN_MIN_SAMPLES": "200",
           "CLOGS_RETRAIN_EPOCHS": "2", "CLOGS_LEARNING_LINES": "100"}


def test_a_running_worker_learns_a_new_service_and_swaps_in_a_retrained_model(services, names, tmp_path):
    normal = service_lines("payments", 1400, seed=11)
    failure = failure_line("payments", seed=11)
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, tmp_path / "state", env=TRAINER).start()
    try:
        pid = worker.proc.pid
        first = write_logs(tmp_path / "round1", {"payments": normal[:1000]})
        run_cli("ingest", "--base-dir", str(tmp_path / "round1"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= first, timeout=180, what="the first round indexed")
        shipped = worker.stats("/health")["model_version"]
        health = wait_for(lambda: (h := worker.stats("/health"))["model_swaps"] >= 1 and h, timeout=240,
                          what="the worker to swap in its trainer's model")
        retrained = health["model_version"]
        assert retrained != shipped and worker.proc.pid == pid  # a new version, no restart
        second = write_logs(tmp_path / "round2", {"payments": normal[1000:1200] + [failure] + normal[1200:]})
        run_cli("ingest", "--base-dir", str(tmp_path / "round2"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= first + second, timeout=180, what="the second round indexed")
        docs = es_docs(names["index"])
        assert len(docs) == es_count(names["index"]) == first + second  # nothing lost, nothing twice
        round1 = sorted((d for d in docs.values() if d["log"]["file"]["path"].startswith("log-payments") and
                         d["kafka_offset"] < first), key=lambda d: d["kafka_offset"])
        assert {d["model_version"] for d in docs.values()} == {shipped, retrained}
        assert sum(d["is_anomaly"] for d in round1[:first // 2]) > 0  # new at first ...
        late = [d for d in docs.values() if d["model_version"] == retrained and d["message"] != failure]
        assert late and sum(d["is_anomaly"] for d in late) <= 0.01 * len(late)  # ... learned since
        caught = [d for d in docs.values() if d["message"] == failure]
        assert len(caught) == 1 and caught[0]["is_anomaly"] and caught[0]["model_version"] == retrained
        stats = worker.stats("/stats/log-payments/")["log-payments"]
        assert stats["count"] == first + second and stats["model_version"] == retrained and stats["patterns"] > 0
    finally:
        worker.stop()
        print(f"--- worker log (shown when the test fails) ---\n{worker.log_tail(60)}")


def test_evaluate_online_gives_the_workers_decisions(services, names, tmp_path, default_scorer):
    lines = service_lines("inventory", 700, seed=12)
    lines.insert(450, failure_line("inventory", seed=12))
    write_logs(tmp_path / "logs", {"inventory": lines})
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, tmp_path / "state", env={"CLOGS_TRAINER": "off"}).start()
    try:
        run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= len(lines), timeout=180, what="every line indexed")
    finally:
        worker.stop()
    docs = sorted(es_docs(names["index"]).values(), key=lambda d: d["line_no"])
    result, _ = evaluate_online(default_scorer, tmp_path / "logs" / "log-inventory" / "inventory.txt",
                                tmp_path / "eval", Policy.of(Settings.from_env()), progress=False)
    with open(tmp_path / "eval" / "test_anomaly_results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [d["is_anomaly"] for d in docs] == [r["is_anomaly"] == "True" for r in rows]
    assert [d["anomaly_score"] for d in docs] == pytest.approx([float(r["score"]) for r in rows], abs=1e-5)
    assert docs[450]["is_anomaly"] and result["n_anomalies"] == sum(d["is_anomaly"] for d in docs)


def test_learning_state_moves_to_the_other_worker_in_a_takeover(services, names, tmp_path):
    # two sources on each of the four partitions (their JSON keys hash there), so both workers own some
    logs = {f"{name}-{n}": service_lines(name, 300, seed=n) for name, numbers in
            (("payments", (0, 2, 1, 6)), ("inventory", (7, 1, 0, 2))) for n in numbers}
    total = write_logs(tmp_path / "logs", logs)
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    a = Worker(names, tmp_path / "state").start()
    b = Worker(names, tmp_path / "state").start()
    try:
        run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= total, timeout=180, what="every line indexed")
        expected = {f"log-{name}" for name in logs}
        before = wait_for(lambda: (s := b.stats()) and set(s) >= expected and
                          all(s[k]["count"] == 300 for k in expected) and s, what="both workers' statistics")
        owned_by_a = set(a.stats("/stats/local/"))
        assert owned_by_a and owned_by_a < expected  # a has some sources, b the others
        a.stop(signal.SIGKILL)
        after = wait_for(lambda: set(b.stats("/stats/local/")) == expected and b.stats("/stats/local/"),
                         timeout=180, what="worker B to take over every source")
        for source in expected:
            assert after[source]["patterns"] > 0
            assert after[source]["memory_digest"] == before[source]["memory_digest"], source
            assert after[source]["count"] == before[source]["count"] == 300
    finally:
        for worker in (a, b):
            worker.stop(signal.SIGKILL)
