"""Elasticsearch failures on the real Elasticsearch: what is retried, what stops the sink and says
why (a write block gives a real 403), and that nothing is lost or indexed twice either way."""
import json
import signal
import urllib.error
import urllib.request

import pytest

from tests.streaming_helpers import Worker, es_client, es_count, es_docs, run_cli, wait_for, write_logs
from app.inputs.traffic import service_lines

pytestmark = [pytest.mark.services, pytest.mark.slow]


def health(worker):
    """(HTTP status, body) of the worker's /health."""
    try:
        with urllib.request.urlopen(worker.url + "/health", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_a_write_block_stops_the_sink_loudly_and_nothing_is_lost_once_lifted(services, names, tmp_path):
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, tmp_path / "state", env={"CLOGS_ES_BLOCKED_PROBE": "2"}).start()
    es = es_client()
    try:
        first = write_logs(tmp_path / "round1", {"payments": service_lines("payments", 300, seed=1)})
        run_cli("ingest", "--base-dir", str(tmp_path / "round1"), "--topic", names["topic"])
        wait_for(lambda: es_count(names["index"]) >= first, timeout=120, what="the first round indexed")
        es.indices.put_settings(index=names["index"], settings={"index.blocks.write": True})
        second = write_logs(tmp_path / "round2", {"payments": service_lines("payments", 200, seed=2)})
        run_cli("ingest", "--base-dir", str(tmp_path / "round2"), "--topic", names["topic"])
        status, body = wait_for(lambda: (h := health(worker))[0] == 503 and h, timeout=60, what="/health red")
        assert body["status"] == "red" and body["reason"].startswith("403") and "index.blocks.write" in body["reason"]
        assert es_count(names["index"]) == first   # nothing written, nothing skipped
        wait_for(lambda: worker.log_tail(400).count("INDEXING STOPPED") >= 1, timeout=10, what="the log line")
        import time
        time.sleep(6)   # several probes later: still one line, no traceback per attempt
        log = worker.log_tail(2000)
        assert log.count("INDEXING STOPPED") == 1 and "Traceback" not in log
        es.indices.put_settings(index=names["index"], settings={"index.blocks.write": False})
        wait_for(lambda: es_count(names["index"]) >= first + second, timeout=60, what="everything indexed")
        assert wait_for(lambda: health(worker)[0] == 200, timeout=20, what="/health ok again")
        docs = es_docs(names["index"])
        assert len(docs) == first + second == es_count(names["index"])
        assert worker.stats("/deadletter/").get("index_rejected", 0) == 0
        assert "indexing resumed" in worker.log_tail(2000)
    finally:
        es.indices.put_settings(index=names["index"], settings={"index.blocks.write": False})
        worker.stop(signal.SIGKILL)


@pytest.fixture
def small_es(tmp_path, services):
    """A private Elasticsearch whose http.max_content_length is 8 kB (a real 413 for larger requests)."""
    import os
    import subprocess
    import sys

    from tests.streaming_helpers import ROOT, free_port

    home = tmp_path / "svc"
    home.mkdir()
    (home / "lib").symlink_to(ROOT / ".services" / "lib")
    port = free_port()
    env = {**os.environ, "CLOGS_SERVICES_DIR": str(home), "CLOGS_ES_HEAP": "512m", "CLOGS_ES_PORT": str(port),
           "CLOGS_ES_TRANSPORT_PORT": str(free_port()), "CLOGS_ES_SETTINGS": "http.max_content_length=8kb"}
    services_cmd = [sys.executable, str(ROOT / "scripts" / "services")]
    up = subprocess.run(services_cmd + ["up", "--only", "elasticsearch"], env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(services_cmd + ["down", "--purge"], env=env, capture_output=True, text=True)


def test_too_large_requests_are_split_and_a_too_large_document_stops_the_sink(services, names, tmp_path, small_es):
    from elasticsearch import Elasticsearch

    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, tmp_path / "state", extra=("--es-url", small_es),
                    env={"CLOGS_ES_BLOCKED_PROBE": "2"}).start()
    es = Elasticsearch(small_es)
    try:
        lines = service_lines("payments", 300, seed=3)   # bulks of ~1 kB documents: far over 8 kB
        first = write_logs(tmp_path / "round1", {"payments": lines})
        run_cli("ingest", "--base-dir", str(tmp_path / "round1"), "--topic", names["topic"])
        wait_for(lambda: es.indices.refresh(index=names["index"]) and
                 es.count(index=names["index"])["count"] >= first, timeout=120, what="all indexed in halves")
        assert es.count(index=names["index"])["count"] == first and health(worker)[0] == 200
        huge = "payments-api ERROR " + "x" * 12_000   # one document over 8 kB: no split can help
        write_logs(tmp_path / "round2", {"payments": [huge]})
        run_cli("ingest", "--base-dir", str(tmp_path / "round2"), "--topic", names["topic"])
        status, body = wait_for(lambda: (h := health(worker))[0] == 503 and h, timeout=60, what="/health red")
        assert body["reason"].startswith("413") and "http.max_content_length" in body["reason"]
        assert "CLOGS_MAX_LINE_BYTES" in body["reason"]
        es.indices.refresh(index=names["index"])
        assert es.count(index=names["index"])["count"] == first   # nothing skipped
        assert worker.log_tail(2000).count("INDEXING STOPPED") == 1
    finally:
        worker.stop(signal.SIGKILL)


def test_planted_secrets_reach_neither_elasticsearch_nor_the_output_topics(services, names, tmp_path):
    """Every line of tests/data/secrets.txt, after a new source's normal traffic (so that they are
    flagged, indexed, grouped into incidents and alerted), plus the same secrets in a line too long
    for the log topic and in bytes that are not UTF-8 (both dead-lettered).  With the default
    settings, the personal data planted there (e-mail addresses, card numbers) is masked too."""
    from tests.streaming_helpers import consume_all, produce_raw
    from tests.test_redaction import CORPUS, PLANTED

    secrets = [s for entry in PLANTED for s in entry[0] + entry[1]]
    corpus = CORPUS.read_text().splitlines()
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, tmp_path / "state", env={"CLOGS_MAX_LINE_BYTES": "4000"}).start()
    try:
        lines = service_lines("payments", 250, seed=8) + corpus
        long_line = "x" * 5000 + " password=" + secrets[0]
        total = write_logs(tmp_path / "logs", {"payments": lines + [long_line]})
        run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"],
                env={"CLOGS_MAX_LINE_BYTES": "4000"})
        produce_raw(names["topic"], [(b"payments", b'\xff{"source": "payments", "line": "token=' +
                                      secrets[1].encode() + b'"}')])
        wait_for(lambda: es_count(names["index"]) >= total - 1, timeout=120, what="all lines indexed")
        wait_for(lambda: worker.stats("/deadletter/").get("undecodable"), timeout=30, what="the undecodable record")
        import time
        time.sleep(3)
        es = es_client()
        es.indices.refresh(index=names["index"] + "-incidents")
        outputs = {
            "line index": json.dumps(list(es_docs(names["index"]).values())),
            "incidents index": json.dumps(list(es_docs(names["index"] + "-incidents").values())),
            "anomalies topic": json.dumps(consume_all(names["topic"] + "-anomalies", 10 ** 6, timeout=5)),
            "dead-letter topic": json.dumps(consume_all(names["topic"] + "-deadletter", 10 ** 6, timeout=5)),
        }
        assert '"is_anomaly": true' in outputs["line index"] and "[REDACTED]" in outputs["line index"]
        assert "[REDACTED]" in outputs["anomalies topic"] and "[REDACTED]" in outputs["dead-letter topic"]
        for where, text in outputs.items():
            leaked = [s for s in secrets if s in text or json.dumps(s)[1:-1] in text]
            assert not leaked, f"{len(leaked)} secrets reached the {where}: {leaked[:5]}"
        assert sum(worker.stats("/health")["redactions"].values()) >= len(secrets)
    finally:
        worker.stop(signal.SIGKILL)


def test_an_index_with_another_mapping_stops_the_sink_naming_the_fix(services, names, tmp_path):
    """The index exists with a mapping clogs cannot write to (here: ``host`` as a keyword, as an
    older clogs made it, where documents now carry ``host.name``)."""
    es = es_client()
    es.indices.create(index=names["index"], mappings={"properties": {"host": {"type": "keyword"}}})
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, tmp_path / "state", env={"CLOGS_ES_BLOCKED_PROBE": "2"}).start()
    try:
        write_logs(tmp_path / "logs", {"payments": service_lines("payments", 50, seed=6)})
        run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"])
        status, body = wait_for(lambda: (h := health(worker))[0] == 503 and h, timeout=60, what="/health red")
        assert body["reason"].startswith("400") and "CLOGS_INDEX" in body["reason"]
        assert es_count(names["index"]) == 0 and worker.stats("/deadletter/").get("index_rejected", 0) == 0
    finally:
        worker.stop(signal.SIGKILL)
