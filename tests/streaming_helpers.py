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
import zlib
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def settings():
    """The settings of this process's environment (the tests' services)."""
    from app.settings import Settings

    return Settings.from_env()


def bootstrap():
    from app.settings import kafka_bootstrap

    return kafka_bootstrap(settings())


def client_options():
    from app.kafka.security import client_options as options

    return options(settings())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=5, token=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
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

    def __init__(self, names, data_dir, extra=(), env=None, partitions=4, loglevel="warn"):
        self.port = free_port()
        self.names = names
        self.log_path = Path(data_dir) / f"worker-{self.port}.log"
        self.args = [sys.executable, str(ROOT / "streaming_process.py"), "consume", "--app-id", names["app_id"],
                     "--topic", names["topic"], "--index", names["index"], "--web-port", str(self.port),
                     "--data-dir", str(data_dir), "--partitions", str(partitions), "--loglevel", loglevel, *extra]
        # no trainer process unless a test asks for one (CLOGS_TRAINER=auto): it would only add load
        self.env = {**os.environ, "CLOGS_SESSION_TIMEOUT": "8", "CLOGS_BATCH_TIMEOUT": "0.2", "CLOGS_TRAINER": "off",
                    **(env or {})}
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
        return get_json(f"{self.url}/health", token=self.env.get("CLOGS_WEB_TOKEN"))["status"] == "ok"

    def stats(self, path="/stats/"):
        return get_json(self.url + path, token=self.env.get("CLOGS_WEB_TOKEN"))

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

    def note(self, text):
        """A line in this worker's log, stamped like Faust's, so the log shows what the test did when."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S") + f",{int(time.time() * 1000) % 1000:03d}"
        with open(self.log_path, "a") as log:
            log.write(f"[{stamp}] [test] {text}\n")


def stop_process(proc, timeout=20):
    """Stop a program a test started (Prometheus, Alertmanager, rsyslogd): SIGTERM, then SIGKILL after
    ``timeout`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


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
    from app.outputs.elastic import sync_client

    return sync_client(settings())


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


    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), **client_options())
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(go())


def list_topics():
    """The names of the topics the broker holds."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def go():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(), **client_options())
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(go())


def consume_all(topic, expected, timeout=60, count_if=None, raw=False):
    """Read JSON values from the beginning of a topic until `expected` of them (those for which
    `count_if` is true, if given) arrived, or the timeout.  ``raw``: (partition, key, value bytes)
    of each record instead."""
    from aiokafka import AIOKafkaConsumer


    async def go():
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(), auto_offset_reset="earliest",
                                    **client_options(),
                                    group_id=None, enable_auto_commit=False)
        await consumer.start()
        out = []
        try:
            deadline = time.monotonic() + timeout
            while (sum(map(count_if, out)) if count_if else len(out)) < expected and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for messages in batch.values():
                    out.extend((m.partition, m.key, m.value) if raw else json.loads(m.value) for m in messages)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(go())


def group_report(group_id, timeout=15):
    """The consumer group as the broker sees it: state, each member's assignment (Faust's actives,
    standbys and URL from the assignment's user data) and committed offsets against the end offsets."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment


    async def go():
        out = []
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
        await admin.start()
        try:
            for response in await admin.describe_consumer_groups([group_id]):
                for group in response.to_object()["groups"]:
                    out.append(f"group {group['group']}: state {group['state']}, protocol {group['protocol']}, "
                               f"{len(group['members'])} member(s), error {group['error_code']}")
                    for member in group["members"]:
                        out.append(f"  member {member['member_id']} ({member['client_host']})")
                        raw = member["member_assignment"]
                        if not raw:
                            out.append("    no assignment (joining or rebalancing)")
                            continue
                        assignment = ConsumerProtocolMemberAssignment.decode(raw)
                        for topic, partitions in sorted(assignment.assignment):
                            out.append(f"    {topic}: {sorted(partitions)}")
                        try:
                            meta = json.loads(zlib.decompress(assignment.user_data))
                            out.append(f"    url {meta.get('url')}, actives {meta['assignment']['actives']}, "
                                       f"standbys {meta['assignment']['standbys']}")
                        except Exception as exc:  # not a Faust member
                            out.append(f"    (user data not Faust's: {exc!r})")
            committed = await admin.list_consumer_group_offsets(group_id)
        finally:
            await admin.close()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(list(committed)) if committed else {}
        finally:
            await consumer.stop()
        out.append("committed / end offsets:")
        for tp in sorted(committed):
            out.append(f"  {tp.topic}[{tp.partition}]: {committed[tp].offset} / {ends.get(tp)}")
        return "\n".join(out)

    try:
        return asyncio.run(asyncio.wait_for(go(), timeout))
    except Exception as exc:
        return f"(consumer group {group_id} could not be described: {exc!r})"


def es_counts_by_source(index):
    try:
        es = es_client()
        es.indices.refresh(index=index)
        buckets = es.search(index=index, size=0, aggs={"s": {"terms": {"field": "source", "size": 100}}})
        return {b["key"]: b["doc_count"] for b in buckets["aggregations"]["s"]["buckets"]}
    except Exception as exc:
        return f"(no counts: {exc!r})"


def failure_report(workers, names, log_lines=150):
    """What each worker holds and logged, what Elasticsearch holds and what the broker assigned:
    appended to the failure of a multi-worker test."""
    out = []
    for worker in workers:
        state = "not started" if worker.proc is None else (
            "running" if worker.proc.poll() is None else f"exited with {worker.proc.returncode}")
        out.append(f"=== worker on port {worker.port} (pid {worker.proc.pid if worker.proc else None}, {state}) ===")
        if worker.proc is not None and worker.proc.poll() is None:
            try:
                local = worker.stats("/stats/local/")
                out.append("/stats/local/ count (last_offset): " + ", ".join(
                    f"{s} {v.get('count')} ({v.get('last_offset')})" for s, v in sorted(local.items())))
                out.append(f"/stats/local/: {json.dumps(local, sort_keys=True)}")
            except Exception as exc:
                out.append(f"/stats/local/: unreachable ({exc!r})")
            try:
                out.append(f"/health: {json.dumps(worker.stats('/health'), sort_keys=True)}")
            except Exception as exc:
                out.append(f"/health: unreachable ({exc!r})")
        out.append(f"--- log tail ({worker.log_path}) ---\n{worker.log_tail(log_lines)}")
    out.append(f"=== documents in {names['index']} by source: {es_counts_by_source(names['index'])}")
    out.append(f"=== consumer group {names['app_id']} ===\n{group_report(names['app_id'])}")
    return "\n".join(out)


@contextmanager
def explained(workers, names):
    """Re-raise an assertion failure with failure_report() appended."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{failure_report(workers, names)}") from None
