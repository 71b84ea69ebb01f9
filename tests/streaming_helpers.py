"""Helpers for the integration tests: real workers as subprocesses, polling, Kafka and ES reads."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def wait_for(predicate, timeout=120, interval=0.5, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # services still settling
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Worker:
    """One `clogs consume` worker process with its own web port and data folder."""

    def __init__(self, names, data_dir, extra=(), env=None, partitions=4):
        self.port = free_port()
        self.names = names
        self.log_path = Path(data_dir) / f"worker-{self.port}.log"
        self.args = [sys.executable, str(ROOT / "streaming_process.py"), "consume", "--app-id", names["app_id"],
                     "--topic", names["topic"], "--index", names["index"], "--web-port", str(self.port),
                     "--data-dir", str(data_dir), "--partitions", str(partitions), "--loglevel", "warn", *extra]
        self.env = {**os.environ, "CLOGS_SESSION_TIMEOUT": "8", "CLOGS_BATCH_TIMEOUT": "0.2", **(env or {})}
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait=True):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            wait_for(self.healthy, timeout=120, what=f"worker on port {self.port}")
        return self

    def healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
        return get_json(f"{self.url}/health")["status"] == "ok"

    def stats(self, path="/stats/"):
        return get_json(self.url + path)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, n=60):
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def write_logs(base, sources):
    """sources: {name: [lines]} -> base/log-<name>/<name>.txt; returns the total line count."""
    total = 0
    for name, lines in sources.items():
        folder = Path(base) / f"log-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
        total += len(lines)
    return total


def run_cli(*args, timeout=300, env=None):
    result = subprocess.run([sys.executable, str(ROOT / "streaming_process.py"), *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def es_client():
    from agents.elastic import sync_client

    return sync_client()


def es_count(index):
    es = es_client()
    try:
        es.indices.refresh(index=index)
        return es.count(index=index)["count"]
    except Exception:
        return 0


def es_docs(index, size=10_000, **query):
    es = es_client()
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=size, **query)["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def produce_raw(topic, records):
    """records: [(key bytes|None, value bytes)] straight to Kafka, bypassing the ingest checks."""
    from aiokafka import AIOKafkaProducer

    from app import settings

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap())
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(go())


def consume_all(topic, expected, timeout=60):
    """Read `expected` JSON values from the beginning of a topic."""
    from aiokafka import AIOKafkaConsumer

    from app import settings

    async def go():
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap(), auto_offset_reset="earliest",
                                    group_id=None, enable_auto_commit=False)
        await consumer.start()
        out = []
        try:
            deadline = time.monotonic() + timeout
            while len(out) < expected and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for messages in batch.values():
                    out.extend(json.loads(m.value) for m in messages)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(go())
