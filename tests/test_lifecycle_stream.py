"""The incident lifecycle on the real Kafka and Elasticsearch: one-off patterns resolve after a quiet
period of their source's event time, leave the worker's table and the incidents index after the
retention -- so streaming ever new patterns grows neither without bound -- and a resolved incident
whose pattern comes back opens again as the same incident."""
import re
import string
import urllib.request
from datetime import datetime, timezone

import pytest

from tests.streaming_helpers import Worker, es_client, run_cli, wait_for, write_logs

pytestmark = [pytest.mark.services, pytest.mark.slow]
START = 1_767_607_200   # 2026-01-05T10:00:00Z


def one_off(i, seconds):
    """A line of a pattern of its own (a distinct word of letters), stamped `seconds` after START."""
    word = "".join(string.ascii_lowercase[(i // 26 ** k) % 26] for k in range(4))
    stamp = datetime.fromtimestamp(START + seconds, timezone.utc)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}Z ERROR scheduler: job{word} failed on worker"


def incidents(names):
    es = es_client()
    index = names["index"] + "-incidents"
    if not es.indices.exists(index=index):
        return {}
    es.indices.refresh(index=index)
    return {h["_id"]: h["_source"] for h in es.search(index=index, size=10_000)["hits"]["hits"]}


def held(worker):
    """Incidents in the worker's table, by status (its /metrics)."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as response:
        page = response.read().decode()
    return {status: float(n) for status, n in re.findall(r'clogs_incidents_held\{status="(\w+)"\} (\S+)', page)}


def ingest(tmp_path, folder, lines, names):
    write_logs(tmp_path / folder, {"jobs": lines})
    run_cli("ingest", "--base-dir", str(tmp_path / folder), "--topic", names["topic"])


def test_one_off_patterns_resolve_leave_the_table_and_a_recurrence_reopens(services, names, tmp_path):
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "2")
    env = {"CLOGS_RESOLVE_CONTENT_SECONDS": "60", "CLOGS_INCIDENT_RETENTION_SECONDS": "120", "CLOGS_TICK_SECONDS": "1"}
    worker = Worker(names, tmp_path / "state", extra=("--threshold", "0.0"), partitions=2, env=env).start()
    try:
        # 120 patterns, 10 s of event time apart: all but the last six (within 60 s of the newest
        # line) resolve; none has been resolved for the 120 s retention yet
        ingest(tmp_path, "one", [one_off(i, 10 * i) for i in range(120)], names)

        def statuses():
            found = incidents(names)
            return found if len(found) == 120 and sum(i["status"] == "resolved" for i in found.values()) == 114 \
                else None
        first = wait_for(statuses, timeout=120, what="120 incidents, 114 of them resolved")
        assert {i["status"] for i in first.values()} == {"resolved", "open"}
        assert all(i["resolved_at"] and i["event"]["severity"] >= 25 for i in first.values() if i["status"] == "resolved")
        resolved_first = {iid for iid, i in first.items() if i["status"] == "resolved"}
        wait_for(lambda: held(worker).get("resolved") == 114, timeout=30, what="the table to hold them")

        # 120 more, 1,200 s later: the first 114 have been resolved for longer than the retention and
        # leave both the table and the index; the table holds 126, not 240
        ingest(tmp_path, "two", [one_off(1000 + i, 1200 + 10 * i) for i in range(120)], names)
        wait_for(lambda: len(incidents(names)) == 126, timeout=120, what="126 incidents in the index")
        assert not resolved_first & set(incidents(names))
        wait_for(lambda: sum(held(worker).values()) == 126, timeout=30, what="126 incidents in the table")

        # a resolved incident whose pattern comes back opens again: the same incident, reopened once
        again = next(i for i in incidents(names).values() if i["status"] == "resolved")
        word = re.search(r"job([a-z]{4})", again["summary"]).group(1)
        index = sum((string.ascii_lowercase.index(c)) * 26 ** k for k, c in enumerate(word))
        ingest(tmp_path, "three", [one_off(index, 2500)], names)

        def reopened():
            found = incidents(names).get(again["incident_id"])
            return found if found and found["status"] == "open" else None
        back = wait_for(reopened, timeout=60, what="the incident to open again")
        assert back["reopened"] == 1 and back["count"] == again["count"] + 1 and back["resolved_at"] is None
        assert back["first_seen"] == again["first_seen"]
    finally:
        worker.stop()
