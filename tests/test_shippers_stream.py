"""Real log shippers on the real Kafka and Elasticsearch: records as Filebeat, Vector and Fluent Bit
write them reach the index under the right source; ``clogs ingest -`` reads stdin; ``clogs ingest
--follow`` follows a file through appends, a rotation and a restart of the follower, sending each
line exactly once."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.streaming_helpers import ROOT, Worker, es_count, es_docs, produce_raw, run_cli, wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]


def messages_of(index, source):
    docs = es_docs(index, query={"term": {"source": source}})
    return sorted(d["message"] for d in docs.values())


def follow(names, base, state, seconds):
    return subprocess.Popen([sys.executable, str(ROOT / "streaming_process.py"), "ingest", "--base-dir", str(base),
                             "--topic", names["topic"], "--follow", "--follow-for", str(seconds), "--state-file",
                             str(state)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_shipper_records_stdin_and_a_followed_file_reach_the_index_once(services, names, tmp_path):
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, tmp_path / "state").start()
    try:
        filebeat = {"@timestamp": "2026-11-28T10:00:00.000Z", "message": "filebeat says hello",
                    "log": {"file": {"path": "/var/log/app/api.log"}, "offset": 120}, "host": {"name": "web-1"},
                    "agent": {"type": "filebeat", "version": "8.11.4"}, "ecs": {"version": "8.0.0"}}
        vector = {"message": "vector says hello", "timestamp": "2026-11-28T10:00:01Z", "file": "/var/log/app/db.log",
                  "host": "db-1", "source_type": "file"}
        fluentbit = {"@timestamp": 1764324002.5, "log": "fluent bit says hello\n", "kubernetes": {
            "pod_name": "cart-7d9", "namespace_name": "shop", "container_name": "cart"}}
        produce_raw(names["topic"], [(b"/var/log/app/api.log", json.dumps(filebeat).encode()),
                                     (b"/var/log/app/db.log", json.dumps(vector).encode()),
                                     (b"cart", json.dumps(fluentbit).encode())])
        stdin = subprocess.run([sys.executable, str(ROOT / "streaming_process.py"), "ingest", "-", "--source",
                                "piped", "--topic", names["topic"]], cwd=ROOT, input="one\ntwo\nthree\n",
                               capture_output=True, text=True, timeout=120)
        assert stdin.returncode == 0, stdin.stdout + stdin.stderr

        base, state = tmp_path / "followed", tmp_path / "ingest-state.json"
        (base / "log-tailed").mkdir(parents=True)
        path = base / "log-tailed" / "app.txt"
        path.write_text("".join(f"first {i}\n" for i in range(20)))

        def tailed(n):
            return wait_for(lambda: len(messages_of(names["index"], "log-tailed")) >= n, timeout=90,
                            what=f"{n} followed lines indexed")

        def stop(process):   # a clean stop: flush, save the state
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=60)
            assert process.returncode == 0, out

        follower = follow(names, base, state, 600)
        tailed(20)
        with open(path, "a") as f:   # appended while followed, the last line unfinished for a while
            f.write("".join(f"appended {i}\n" for i in range(10)) + "half")
            f.flush()
            tailed(30)
            time.sleep(1.0)
            f.write(" a line\n")
        tailed(31)
        path.rename(base / "log-tailed" / "app.txt.1")   # rotated: the old name no longer matches the glob
        path.write_text("".join(f"rotated {i}\n" for i in range(5)))
        tailed(36)
        stop(follower)
        with open(path, "a") as f:   # while no follower runs
            f.write("".join(f"while stopped {i}\n" for i in range(7)))
        follower = follow(names, base, state, 600)   # resumes from the state file: nothing twice, nothing skipped
        tailed(43)
        stop(follower)

        expected = 3 + 3 + 20 + 10 + 1 + 5 + 7
        wait_for(lambda: es_count(names["index"]) >= expected, timeout=120, what="every record indexed")
        time.sleep(2)
        assert es_count(names["index"]) == expected
        assert messages_of(names["index"], "/var/log/app/api.log") == ["filebeat says hello"]
        assert messages_of(names["index"], "/var/log/app/db.log") == ["vector says hello"]
        assert messages_of(names["index"], "cart") == ["fluent bit says hello"]
        docs = es_docs(names["index"], query={"term": {"source": "/var/log/app/api.log"}})
        (doc,) = docs.values()
        assert doc["host"]["name"] == "web-1" and doc["ingested_at"].startswith("2026-11-28T10:00:00")
        assert messages_of(names["index"], "piped") == ["one", "three", "two"]
        tailed = messages_of(names["index"], "log-tailed")
        assert tailed == sorted([f"first {i}" for i in range(20)] + [f"appended {i}" for i in range(10)] +
                                ["half a line"] + [f"rotated {i}" for i in range(5)] +
                                [f"while stopped {i}" for i in range(7)])
    finally:
        worker.stop(signal.SIGKILL)
