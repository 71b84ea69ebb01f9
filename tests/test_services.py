"""scripts/services: a second, private pair of services on other ports goes up, reports, and goes
down leaving nothing behind; the Python Elasticsearch client works unchanged against the node."""
import os
import subprocess
import sys

import pytest

from tests.streaming_helpers import ROOT, free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]


def run_services(*args, env):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "services"), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def java_processes_under(folder):
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "java" in line and str(folder) in line]


def test_up_status_down_on_private_ports(tmp_path, services):  # services: the artifacts are resolved
    home = tmp_path / "svc"
    home.mkdir()
    (home / "lib").symlink_to(ROOT / ".services" / "lib")  # the artifacts the session already resolved
    ports = {"CLOGS_KAFKA_PORT": free_port(), "CLOGS_KAFKA_CONTROLLER_PORT": free_port(), "CLOGS_ES_PORT": free_port(),
             "CLOGS_ES_TRANSPORT_PORT": free_port()}
    env = {**os.environ, "CLOGS_SERVICES_DIR": str(home), "CLOGS_ES_HEAP": "512m", "CLOGS_KAFKA_HEAP": "256m",
           **{k: str(v) for k, v in ports.items()}}
    try:
        up = run_services("up", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "kafka healthy" in up.stdout and "elasticsearch healthy" in up.stdout
        again = run_services("up", env=env)
        assert "kafka already running" in again.stdout and "elasticsearch already running" in again.stdout
        status = run_services("status", env=env)
        assert status.returncode == 0
        assert "kafka: healthy" in status.stdout and f"port {ports['CLOGS_KAFKA_PORT']}" in status.stdout
        assert "elasticsearch: healthy" in status.stdout and f"port {ports['CLOGS_ES_PORT']}" in status.stdout

        from elasticsearch import Elasticsearch

        es = Elasticsearch(f"http://127.0.0.1:{ports['CLOGS_ES_PORT']}")
        assert es.info()["version"]["number"].startswith("8.") and es.ping()
        assert es.cluster.health()["status"] in ("green", "yellow")
        logs = run_services("logs", "--lines", "5", env=env)
        assert "kafka.log" in logs.stdout and "elasticsearch.log" in logs.stdout
    finally:
        down = run_services("down", "--purge", env=env)
    assert down.returncode == 0 and "stopped elasticsearch, kafka" in down.stdout
    status = run_services("status", env=env)
    assert status.returncode == 3
    assert "kafka: not running" in status.stdout and "elasticsearch: not running" in status.stdout
    assert java_processes_under(home) == []
    assert not (home / "data").exists()
