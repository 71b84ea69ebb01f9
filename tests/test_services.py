"""scripts/services: a second, private pair of services on other ports goes up, reports, and goes
down leaving nothing behind; the Python Elasticsearch client works unchanged against the node.
KRaft cluster ids never begin with '-', and a data folder whose id does still formats and starts."""
import base64
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import uuid

import pytest

from tests.streaming_helpers import ROOT, free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]


def run_services(*args, env):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "services"), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def services_module():
    loader = importlib.machinery.SourceFileLoader("clogs_services_under_test", str(ROOT / "scripts" / "services"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dash_cluster_id():
    """A valid cluster id (base64 of 16 bytes) that begins with '-': a first byte 0xf8..0xfb."""
    cluster_id = base64.urlsafe_b64encode(b"\xf8" + os.urandom(15)).decode().rstrip("=")
    assert cluster_id.startswith("-") and len(cluster_id) == 22
    return cluster_id


def test_new_cluster_ids_never_begin_with_a_dash(monkeypatch):
    svc = services_module()
    dash, plain = uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x08" + bytes(15))
    drawn = iter([dash, dash, plain])
    monkeypatch.setattr(svc.uuid, "uuid4", lambda: next(drawn))
    assert svc.new_cluster_id() == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")  # drawn again
    monkeypatch.undo()
    ids = [svc.new_cluster_id() for _ in range(2000)]  # 1 in 64 would begin with '-' without the redraw
    assert len(set(ids)) == 2000 and not [i for i in ids if i.startswith("-") or len(i) != 22]


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
    # a data folder whose cluster id begins with '-' (made before ids were drawn again): still formats
    cluster_id = dash_cluster_id()
    (home / "data" / "kafka").mkdir(parents=True)
    (home / "data" / "kafka" / "cluster.id").write_text(cluster_id)
    try:
        up = run_services("up", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        meta = (home / "data" / "kafka" / "logs" / "meta.properties").read_text()
        assert f"cluster.id={cluster_id}\n" in meta, meta
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
