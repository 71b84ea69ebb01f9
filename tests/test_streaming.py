"""End to end against the real Kafka and Elasticsearch: ingest -> workers -> index, thresholds,
recovery after stop and kill, two workers, exactly-once indexing, dead letters, seed commands."""
import json
import signal
import threading
import time

import pytest

from model.data import split_label
from tests.streaming_helpers import (ROOT, Worker, consume_all, es_count, es_docs, explained, free_port, produce_raw,
                                     run_cli, wait_for, write_logs)

pytestmark = [pytest.mark.services, pytest.mark.slow]

PLANTED = "FATAL coolant pump pressure lost on midplane, emergency shutdown initiated by watchdog"
CALIBRATION = json.loads((ROOT / "checkpoints" / "config.json").read_text())["calibration"]


def sample(name, n, start=0):
    return (ROOT / "data" / "loghub" / name).read_text(errors="replace").splitlines()[start:start + n]


def sources(n=120):
    return {
        "hdfs": sample("HDFS_2k.log", n),
        "openssh": sample("OpenSSH_2k.log", n),
        "zookeeper": sample("Zookeeper_2k.log", n),
        "apache": sample("Apache_2k.log", n),
    }


def ingest(base, names, *extra):
    return run_cli("ingest", "--base-dir", str(base), "--topic", names["topic"], "--batch", "200", *extra)


def topic(names):
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")


@pytest.fixture
def workers(tmp_path):
    started = []
    yield started
    for worker in started:
        worker.stop(signal.SIGKILL)
        print(f"--- worker on port {worker.port} (shown when the test fails) ---\n{worker.log_tail(40)}")


def start(workers, names, tmp_path, *extra, env=None):
    worker = Worker(names, tmp_path / "state", extra=extra, env=env).start()
    workers.append(worker)
    return worker


def counts_reach(worker, expected):
    stats = worker.stats()
    return stats if {s: stats.get(s, {}).get("count") for s in expected} == expected else None


def test_multi_source_stream_is_indexed_once_with_fields_and_thresholds(services, names, tmp_path, workers):
    logs = sources()
    logs["hdfs"].insert(5, PLANTED)      # learning period: judged against the high bar
    logs["openssh"].append(PLANTED)      # after warm-up: judged with the source's own statistics
    total = write_logs(tmp_path / "logs", logs)
    topic(names)
    worker = start(workers, names, tmp_path, "--warmup-lines", "60", "--learning-lines", "30")
    out = ingest(tmp_path / "logs", names)
    assert f"ingested {total} lines" in out
    wait_for(lambda: es_count(names["index"]) >= total, timeout=120, what="all lines indexed")
    time.sleep(2)
    docs = es_docs(names["index"])
    assert len(docs) == es_count(names["index"]) == total
    assert len({(d["source"], d["line_no"]) for d in docs.values()}) == total
    for doc_id, d in docs.items():
        assert doc_id == f"{d['kafka_topic']}-{d['kafka_partition']}-{d['kafka_offset']}"
        for field in ("anomaly_score", "is_anomaly", "threshold_used", "mean_score", "std_score", "threshold_mode",
                      "top_tokens", "model_version", "message", "log", "ingested_at", "host", "@timestamp",
                      "timestamp_source", "event"):
            assert field in d, field
    planted = {d["source"]: d for d in docs.values() if d["message"] == PLANTED}
    early, late = planted["log-hdfs"], planted["log-openssh"]
    assert early["is_anomaly"] and early["threshold_mode"] == "learning"  # above the learning period's high bar
    assert early["threshold_used"] >= CALIBRATION["mean"] + 6 * CALIBRATION["std"]
    assert late["is_anomaly"] and late["threshold_mode"] == "dynamic" and late["line_no"] == 121
    assert set(late["top_tokens"]) & set(PLANTED.split())
    normal = [d for d in docs.values() if d["message"] != PLANTED]
    assert sum(d["is_anomaly"] for d in normal) <= 0.02 * len(normal)
    stats = worker.stats()
    assert {s: stats[s]["count"] for s in stats} == {f"log-{s}": len(v) for s, v in logs.items()}
    assert worker.stats("/stats/log-openssh/")["log-openssh"]["count"] == 121
    flagged = [d for d in docs.values() if d["is_anomaly"]]
    consume_all(names["topic"] + "-anomalies", expected=len(flagged), count_if=lambda a: a["type"] == "line")
    alerts = consume_all(names["topic"] + "-anomalies", expected=10 ** 6, timeout=5)   # and what followed them
    assert {a["message"] for a in alerts if a["type"] == "line" and a["message"] == PLANTED} == {PLANTED}
    incidents = {a["incident_id"]: a for a in alerts if a["type"] == "incident"}
    assert {d["incident_id"] for d in flagged} == set(incidents)   # every flagged line belongs to an incident
    # a line that is not flagged carries an incident id only when its pattern already has an incident
    assert {d["incident_id"] for d in docs.values() if d["incident_id"]} == set(incidents)
    # every table write of a source went to the partition its scored batches came from (the threshold
    # agent takes several batches at a time and writes in each one's own event context)
    scored = partitions_by_source(f"{names['app_id']}-scored")
    assert set(scored) == set(stats) and all(len(p) == 1 for p in scored.values())
    for table in ("source-stats", "source-memory"):
        assert partitions_by_source(f"{names['app_id']}-{table}-changelog") == scored, table
    incidents_written = partitions_by_source(f"{names['app_id']}-incidents-changelog",
                                             source_of=lambda key, value: json.loads(value)["source"])
    assert incidents_written and all(incidents_written[s] == scored[s] for s in incidents_written)


def partitions_by_source(topic, source_of=lambda key, value: json.loads(key)):
    """{source: the partitions of the topic its records are in} (the key names the source unless told)."""
    found = {}
    for partition, key, value in consume_all(topic, expected=10 ** 6, timeout=5, raw=True):
        found.setdefault(source_of(key, value), set()).add(partition)
    return found


def test_seed_commands_with_a_fixed_threshold(services, names, tmp_path, workers):
    total = write_logs(tmp_path / "logs", {"openssh": sample("OpenSSH_2k.log", 40) + [PLANTED]})
    out = run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"])
    assert names["topic"] in out
    start(workers, names, tmp_path, "--threshold", "3.5")
    out = run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"], "--delay", "0.01",
                  "--batch", "1000")
    assert f"ingested {total} lines" in out
    wait_for(lambda: es_count(names["index"]) >= total, timeout=120, what="all lines indexed")
    docs = list(es_docs(names["index"]).values())
    assert {d["threshold_mode"] for d in docs} == {"fixed"}
    assert {d["threshold_used"] for d in docs} == {3.5}
    assert all(d["is_anomaly"] == (d["anomaly_score"] > 3.5) for d in docs)
    assert [d["is_anomaly"] for d in docs if d["message"] == PLANTED] == [True]


def test_stream_command_runs_topic_worker_and_ingest(services, names, tmp_path):
    total = write_logs(tmp_path / "logs", {"hdfs": sample("HDFS_2k.log", 30), "apache": sample("Apache_2k.log", 30)})
    out = run_cli("stream", "--base-dir", str(tmp_path / "logs"), "--delay", "0", "--batch", "1000", "--factor",
                  "3.0", "--topic", names["topic"], "--app-id", names["app_id"], "--index", names["index"],
                  "--web-port", str(free_port()),
                  "--data-dir", str(tmp_path / "state"), "--until-indexed", timeout=300,
                  env={"CLOGS_SESSION_TIMEOUT": "8"})
    assert f"{total} documents in index {names['index']}" in out
    assert "== log-hdfs: 30 lines" in out and "== log-apache: 30 lines" in out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stop", "kill"])
def test_restart_recovers_identical_statistics(services, names, tmp_path, workers, sig):
    logs = sources(80)
    total = write_logs(tmp_path / "logs", logs)
    topic(names)
    worker = start(workers, names, tmp_path)
    ingest(tmp_path / "logs", names)
    expected = {f"log-{s}": len(v) for s, v in logs.items()}
    before = wait_for(lambda: counts_reach(worker, expected), what="statistics of every source")
    wait_for(lambda: es_count(names["index"]) >= total, what="all lines indexed")
    time.sleep(2.5)  # let the last offsets commit
    worker.stop(sig)
    restarted_at = time.monotonic()
    worker.start()
    after = wait_for(lambda: counts_reach(worker, expected), what="recovered statistics")
    recovery = time.monotonic() - restarted_at
    print(f"table recovered {len(after)} sources in {recovery:.1f} s after a {sig.name} restart")
    for source in expected:
        for key in ("count", "mean", "std", "threshold", "last_offset", "anomalies"):
            assert after[source][key] == pytest.approx(before[source][key], rel=1e-9), (source, key)
        assert after[source]["patterns"] > 0 and after[source]["memory_digest"] == before[source]["memory_digest"]
    ingest(tmp_path / "logs", names)  # the same lines again: new offsets, counting continues
    doubled = {s: 2 * n for s, n in expected.items()}
    wait_for(lambda: counts_reach(worker, doubled), what="counting to continue after the restart")
    wait_for(lambda: es_count(names["index"]) >= 2 * total, what="second ingest indexed")
    assert es_count(names["index"]) == 2 * total


def test_two_workers_share_partitions_and_survive_losing_one(services, names, tmp_path, workers):
    logs = sources(60)
    logs.update(linux=sample("Linux_2k.log", 60), bgl=[split_label(line)[1] for line in sample("BGL_2k.log", 60)])
    total = write_logs(tmp_path / "logs", logs)
    topic(names)
    for _ in range(2):  # at info: a failure shows the rebalances and recoveries of both workers
        workers.append(Worker(names, tmp_path / "state", loglevel="info").start())
    a, b = workers
    with explained(workers, names):
        ingest(tmp_path / "logs", names)
        expected = {f"log-{s}": len(v) for s, v in logs.items()}
        from_a = wait_for(lambda: counts_reach(a, expected), what="all sources through worker A")
        from_b = wait_for(lambda: counts_reach(b, expected), what="all sources through worker B")
        local_a, local_b = set(a.stats("/stats/local/")), set(b.stats("/stats/local/"))
        assert local_a and local_b and not local_a & local_b, (local_a, local_b)  # the partitions are split
        assert local_a | local_b == set(expected)
        for source in expected:
            assert from_a[source]["count"] == from_b[source]["count"] == expected[source]
            assert a.stats(f"/stats/{source}/") == b.stats(f"/stats/{source}/")  # routed to the owner
        a.stop(signal.SIGKILL)
        b.note(f"worker A (port {a.port}) killed with SIGKILL; ingesting the second round")
        ingest(tmp_path / "logs", names)
        b.note("second round ingested")
        doubled = {s: 2 * n for s, n in expected.items()}
        wait_for(lambda: counts_reach(b, doubled), timeout=180, what=f"worker B to take over every source: {doubled}")
        assert set(b.stats("/stats/local/")) == set(expected)
        wait_for(lambda: es_count(names["index"]) >= 2 * total, what="all lines indexed")
        assert es_count(names["index"]) == 2 * total


def test_every_line_indexed_exactly_once_across_a_kill(services, names, tmp_path, workers):
    logs = {"hdfs": sample("HDFS_2k.log", 500), "openssh": sample("OpenSSH_2k.log", 500),
            "zookeeper": sample("Zookeeper_2k.log", 500)}
    total = write_logs(tmp_path / "logs", logs)
    topic(names)
    worker = start(workers, names, tmp_path)
    feeder = threading.Thread(target=ingest, args=(tmp_path / "logs", names, "--delay", "0.003"))
    feeder.start()
    wait_for(lambda: es_count(names["index"]) > 200, what="the stream to be under way")
    worker.stop(signal.SIGKILL)
    killed_at = es_count(names["index"])
    worker.start()
    feeder.join()
    wait_for(lambda: es_count(names["index"]) >= total, timeout=180, what="every line indexed after the restart")
    time.sleep(2)
    docs = es_docs(names["index"])
    assert killed_at < total
    assert len(docs) == es_count(names["index"]) == total
    assert len({(d["source"], d["line_no"]) for d in docs.values()}) == total
    stats = worker.stats()
    assert {s: stats[s]["count"] for s in stats} == {f"log-{s}": 500 for s in logs}  # replays not counted twice


def test_bad_records_go_to_the_dead_letter_topic_with_reasons(services, names, tmp_path, workers):
    topic(names)
    worker = start(workers, names, tmp_path, env={"CLOGS_MAX_LINE_BYTES": "2000"})
    good = json.dumps({"source": "log-x", "line": "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user test"}).encode()
    bad = [
        (b"log-x", b"\xff\xfe\x00 not utf-8"),
        (b"log-x", b"this is not json"),
        (b"log-x", b"[1, 2, 3]"),
        (b"log-x", json.dumps({"source": "log-x"}).encode()),
        (b"log-x", json.dumps({"source": "log-x", "line": "   "}).encode()),
        (b"log-x", json.dumps({"source": "log-x", "line": "y" * 3000}).encode()),
    ]
    produce_raw(names["topic"], bad + [(b"log-x", good)])
    dead = consume_all(names["topic"] + "-deadletter", expected=len(bad))
    assert sorted(d["reason"] for d in dead) == sorted(
        ["undecodable", "not_json", "not_object", "missing_fields", "empty_line", "too_large"])
    assert all(d["source_topic"] == names["topic"] and d["offset"] is not None for d in dead)
    wait_for(lambda: es_count(names["index"]) >= 1, what="the good record to be indexed")
    counters = worker.stats("/deadletter/")
    assert counters == {"undecodable": 1, "not_json": 1, "not_object": 1, "missing_fields": 1, "empty_line": 1,
                        "too_large": 1}
    assert worker.healthy()
    # the ingest command dead-letters empty and oversized lines itself
    write_logs(tmp_path / "logs", {"x": ["fine line one", "", "z" * 3000, "fine line two"]})
    out = run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"],
                  env={"CLOGS_MAX_LINE_BYTES": "2000"})
    assert "ingested 2 lines" in out and "too_large: 1" in out and "empty_line: 1" in out
    wait_for(lambda: es_count(names["index"]) >= 3, what="the two good lines to be indexed")


def test_the_anomalies_and_dead_letter_topic_settings_are_made_and_used_end_to_end(services, names, tmp_path,
                                                                                  workers):
    """CLOGS_ANOMALIES_TOPIC and CLOGS_DEADLETTER_TOPIC name the topics that `clogs topic` makes, the
    worker and `clogs ingest` write to (app/settings.py ``topics``: one function for every name)."""
    from tests.streaming_helpers import list_topics

    custom = {"CLOGS_ANOMALIES_TOPIC": f"{names['topic']}-alerts-here",
              "CLOGS_DEADLETTER_TOPIC": f"{names['topic']}-bad-records-here"}
    out = run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "2", env=custom)
    assert custom["CLOGS_ANOMALIES_TOPIC"] in out and custom["CLOGS_DEADLETTER_TOPIC"] in out
    made = list_topics()
    assert {custom["CLOGS_ANOMALIES_TOPIC"], custom["CLOGS_DEADLETTER_TOPIC"]} <= made   # before any worker ran
    assert f"{names['topic']}-anomalies" not in made and f"{names['topic']}-deadletter" not in made

    start(workers, names, tmp_path, "--threshold", "0.0", env=custom)   # every line is an anomaly
    good = json.dumps({"source": "log-x", "line": "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user test"}).encode()
    produce_raw(names["topic"], [(b"log-x", b"this is not json"), (b"log-x", good)])
    dead = consume_all(custom["CLOGS_DEADLETTER_TOPIC"], expected=1)
    assert [d["reason"] for d in dead] == ["not_json"]
    alerts = consume_all(custom["CLOGS_ANOMALIES_TOPIC"], expected=1, count_if=lambda a: a["type"] == "line")
    assert [a["message"] for a in alerts if a["type"] == "line"] == [json.loads(good)["line"]]
    wait_for(lambda: es_count(names["index"]) >= 1, what="the good record to be indexed")

    write_logs(tmp_path / "logs", {"x": ["a fine line", ""]})   # `clogs ingest` dead-letters the empty line itself
    run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"], env=custom)
    dead = consume_all(custom["CLOGS_DEADLETTER_TOPIC"], expected=2)
    assert sorted(d["reason"] for d in dead) == ["empty_line", "not_json"]
    assert not {f"{names['topic']}-anomalies", f"{names['topic']}-deadletter"} & list_topics()
