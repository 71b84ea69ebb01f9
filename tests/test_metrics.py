"""The worker's /metrics (app/outputs/metrics.py): bounded per-source labels, and a real Prometheus
(Debian's `prometheus`) scraping a real worker and answering a query for its series."""
import json
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest

from app.outputs.metrics import OTHER, Metrics, SourceLabels
from tests.streaming_helpers import (Worker, free_port, get_json, produce_raw, run_cli, stop_process, wait_for,
                                     write_logs)

TOKEN = "metrics-token-for-tests"


def test_ten_thousand_sources_get_at_most_the_named_labels_plus_other():
    labels = SourceLabels(named=5, remembered=100)
    for i in range(10_000):
        labels.add(f"/var/log/app/file-{i}.log", 1, 0)
    for i in range(5):   # the busiest
        labels.add(f"busy-{i}", 1000 + i, i)
    series = labels.series()
    names = {label for label, _, _ in series}
    assert names == {f"busy-{i}" for i in range(5)} | {OTHER}
    assert sum(events for _, events, _ in series) == 10_000 + sum(1000 + i for i in range(5))
    assert dict((label, flagged) for label, _, flagged in series)["busy-4"] == 4
    labels.add("newcomer", 10 ** 6, 0)   # named sources keep their label; no label is free any more
    assert {label for label, _, _ in labels.series()} == names


def test_metrics_render_in_the_prometheus_text_format():
    metrics = Metrics(named_sources=2)
    metrics.count("a", 10, 2)
    metrics.count("b", 5, 0)
    metrics.count("c", 1, 1)
    metrics.deadletters.labels(reason="not_json").inc()
    metrics.model("v1")
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'clogs_events_total{source="a"} 10.0' in text and 'clogs_events_total{source="other"} 1.0' in text
    assert 'clogs_events_flagged_total{source="a"} 2.0' in text
    assert 'clogs_deadletters_total{reason="not_json"} 1.0' in text
    assert 'clogs_model_info{model_version="v1"} 1.0' in text


def prometheus_query(url, query):
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}", timeout=5) as r:
        return json.load(r)["data"]["result"]


@pytest.mark.services
@pytest.mark.slow
def test_prometheus_scrapes_the_worker_and_queries_a_series_back(services, names, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no prometheus on PATH (apt-get install prometheus; `make test` installs it where it can)")
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "2")
    worker = Worker(names, tmp_path / "state", partitions=2, env={"CLOGS_WEB_TOKEN": TOKEN}).start()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: clogs
    authorization: {{credentials: {TOKEN}}}
    static_configs: [{{targets: ["127.0.0.1:{worker.port}"]}}]
""")
    prometheus = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                  stderr=open(tmp_path / "prometheus.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        lines = [f"Dec 10 06:55:{i % 60:02d} LabSZ sshd[{24200 + i}]: Failed password for invalid user u{i % 7} "
                 f"from 173.234.31.186 port {38926 + i} ssh2" for i in range(60)]
        write_logs(tmp_path / "logs", {"sshd": lines})
        run_cli("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"])
        produce_raw(names["topic"], [(b"log-sshd", b"this is not json")])
        wait_for(lambda: worker.stats("/deadletter/").get("not_json") == 1, what="the dead letter counted")
        page = urllib.request.urlopen(urllib.request.Request(worker.url + "/metrics", headers={
            "Authorization": f"Bearer {TOKEN}"}), timeout=5).read().decode()
        assert 'clogs_deadletters_total{reason="not_json"} 1.0' in page

        def events_in_prometheus():
            result = prometheus_query(url, 'clogs_events_total{source="log-sshd"}')
            return result and float(result[0]["value"][1]) == len(lines) and result
        result = wait_for(events_in_prometheus, timeout=90, what="Prometheus to scrape the worker's events")
        assert result[0]["metric"]["job"] == "clogs"
        assert float(prometheus_query(url, 'clogs_deadletters_total{reason="not_json"}')[0]["value"][1]) == 1
        assert prometheus_query(url, "clogs_model_info")[0]["metric"]["model_version"]
        assert float(prometheus_query(url, "sum(clogs_scored_lines_total)")[0]["value"][1]) >= len(lines)
        wait_for(lambda: prometheus_query(url, "clogs_end_to_end_lag_seconds_count")
                 and float(prometheus_query(url, "clogs_end_to_end_lag_seconds_count")[0]["value"][1]) >= len(lines),
                 timeout=30, what="the lag histogram")
        targets = get_json(f"{url}/api/v1/targets")["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"], targets
    finally:
        stop_process(prometheus)
        worker.stop()
