#!/usr/bin/env python3
"""The main job, end to end on the local services (what `make demo` runs).

1. writes the multi-source demo logs (data/kafka, six Loghub systems + planted anomalies);
2. recreates the topics and the demo index, starts one worker with the shipped checkpoint;
3. ingests every line, waits until Elasticsearch holds them all;
4. prints the top anomalies per source and the incidents (read back from Elasticsearch), whether
   each planted anomaly was caught, and the dashboard's address;
5. keeps the worker and its dashboard running until Ctrl-C -- or stops at once with --exit or
   CLOGS_DEMO_EXIT=1 (for scripts and CI).
Usage: python scripts/demo.py [--exit] [--web-port 6066]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import streaming_cli as cli  # noqa: E402
from app.cli import with_flags  # noqa: E402
from app.settings import Settings, incidents_index, kafka_bootstrap, topics  # noqa: E402


def main():
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exit", action="store_true", default=os.environ.get("CLOGS_DEMO_EXIT", "0") not in ("", "0"),
                        help="stop the worker right after the report (CLOGS_DEMO_EXIT=1)")
    parser.add_argument("--web-port", type=int, default=settings.web_port)
    parser.add_argument("--top", type=int, default=3)
    args = parser.parse_args()
    base = ROOT / "data" / "kafka"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_data.py"), "--out", str(base)], check=True)
    ns = argparse.Namespace(broker=None, topic=None, app_id=None, partitions=None, recreate=True, index=None,
                            es_url=None, checkpoint_dir=None, factor=None, threshold=None, warmup_lines=None,
                            anomalies_only=False, web_port=args.web_port, data_dir=None, loglevel="warn",
                            base_dir=str(base), pattern="log-*/**/*.txt", delay=0.0, batch=1000)
    settings = with_flags(settings, ns)
    cli.cmd_topic(ns, settings)
    from app.outputs.elastic import sync_client

    for index in (settings.index, incidents_index(settings)):
        sync_client(settings).indices.delete(index=index, ignore_unavailable=True)
    print(f"cleared indices {settings.index} and {incidents_index(settings)}; starting a worker (log: .clogs-data/demo-worker.log)")
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    proc = cli.start_worker(ns, settings, log_path=Path(settings.data_dir) / "demo-worker.log")
    try:
        cli.wait_for_web(settings, proc=proc)
        started = time.monotonic()
        summary = cli.run_ingest(ns, settings)
        count = cli.wait_until_indexed(settings, summary["lines"])
        seconds = time.monotonic() - started
        print(f"\n{count} of {summary['lines']} lines scored and indexed in {seconds:.1f} s "
              f"({count / seconds:,.0f} lines/s end to end)")
        cli.print_report(settings, top=args.top)
        check_planted(settings, base / "planted.json")
        print_stats(settings)
        time.sleep(2)   # the last incidents' updates reach the incidents index
        cli.print_incidents(settings, "open")
        web = f"http://{settings.web_host}:{settings.web_port}"
        print(f"\nwhere to look:\n  the dashboard          {web}/"
              f"\n  per-source statistics  {web}/stats/"
              f"\n  incidents              clogs report; clogs feedback normal|suppress|ack|reopen INCIDENT_ID"
              f"\n  the index              {settings.es_url}/{settings.index}/_search?q=is_anomaly:true"
              f"\n  anomalies topic        {topics(settings).anomalies} (Kafka {kafka_bootstrap(settings)})"
              f"\n  Kibana (docker compose) http://localhost:5601, dashboard \"clogs: overview\"")
        if not args.exit:
            print(f"\nthe worker and its dashboard ({web}/) keep running; Ctrl-C stops them")
            signal.signal(signal.SIGTERM, stop_on_signal)
            signal.signal(signal.SIGINT, stop_on_signal)   # also when started in the background
            try:
                proc.wait()
            except KeyboardInterrupt:
                print("\nstopping the worker")
    finally:
        cli.stop_worker(proc)


def stop_on_signal(signum, frame):
    raise KeyboardInterrupt


def print_stats(settings):
    import urllib.request

    from app.webauth import auth_headers

    request = urllib.request.Request(f"http://{settings.web_host}:{settings.web_port}/stats/",
                                     headers=auth_headers(settings.web_token))
    with urllib.request.urlopen(request, timeout=10) as response:
        stats = json.load(response)
    print("\nper-source statistics from the worker's /stats/:")
    for source, s in stats.items():
        print(f"  {source:16} {s['count']:6} lines  mean {s['mean']:.3f}  std {s['std']:.3f}  "
              f"threshold {s['threshold']:.2f} ({s['mode']})  anomalies {s['anomalies']}")


def check_planted(settings, path):
    from app.outputs.elastic import sync_client

    es = sync_client(settings)
    planted = json.loads(path.read_text())
    print("\nplanted anomalies:")
    for item in planted:
        hits = es.search(index=settings.index, size=1, query={"bool": {"filter": [
            {"term": {"source": item["source"]}}, {"term": {"line_no": item["line_no"]}}]}})["hits"]["hits"]
        doc = hits[0]["_source"] if hits else None
        verdict = "CAUGHT" if doc and doc["is_anomaly"] else "missed"
        score = f"score {doc['anomaly_score']:.2f} vs threshold {doc['threshold_used']:.2f}" if doc else "not indexed"
        print(f"  {verdict:6} {item['source']}:{item['line_no']} {score}  {item['line'][:70]}")


if __name__ == "__main__":
    main()
