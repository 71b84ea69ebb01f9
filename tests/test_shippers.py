"""app/inputs/records.py parse_log_value on records as Filebeat, Vector and Fluent Bit write them to Kafka."""
import json

import pytest

from app.inputs.records import parse_log_value, record_options
from app.settings import Settings

FILEBEAT = {
    "@timestamp": "2024-05-01T12:00:00.123Z",
    "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.13.4"},
    "message": "May  1 12:00:00 web1 sshd[812]: Failed password for root from 10.0.0.5 port 2222 ssh2",
    "log": {"file": {"path": "/var/log/auth.log"}, "offset": 18231},
    "input": {"type": "filestream"},
    "ecs": {"version": "8.0.0"},
    "host": {"name": "web1", "hostname": "web1", "os": {"family": "debian"}},
    "agent": {"type": "filebeat", "version": "8.13.4", "name": "web1", "id": "b1f0"},
    "fields": {"env": "prod"},
}
VECTOR = {
    "file": "/var/log/nginx/error.log",
    "host": "edge-3",
    "message": "2024/05/01 12:00:01 [error] 31#31: *7 upstream timed out",
    "source_type": "file",
    "timestamp": "2024-05-01T12:00:01.987654321Z",
}
VECTOR_JOURNALD = {
    "host": "db-1", "message": "Started Daily apt upgrade.", "source_type": "journald",
    "timestamp": "2024-05-01T12:00:02.5Z", "_SYSTEMD_UNIT": "apt-daily.service", "PRIORITY": "6",
}
FLUENT_BIT_K8S = {
    "@timestamp": 1714564803.25,
    "log": "2024-05-01T12:00:03.250Z ERROR payment failed: card declined\n",
    "stream": "stderr",
    "time": "2024-05-01T12:00:03.250000000Z",
    "kubernetes": {"pod_name": "pay-7d9f-abcde", "namespace_name": "shop", "container_name": "payments",
                   "host": "node-2", "labels": {"app": "pay"}},
}
FLUENT_BIT_TAIL = {"date": "2024-05-01T12:00:04.000000Z", "log": "kernel: eth0 link down",
                   "filename": "/var/log/kern.log"}


def parse(record, **kw):
    return parse_log_value(json.dumps(record).encode(), **kw)


def test_filebeat_record():
    record, reason, detail = parse(FILEBEAT)
    assert reason is None, detail
    assert record == {"source": "/var/log/auth.log", "line": FILEBEAT["message"], "file": "/var/log/auth.log",
                      "line_no": 0, "ingested_at": "2024-05-01T12:00:00.123+00:00", "host": "web1"}


def test_vector_file_record_with_nanoseconds():
    record, reason, _ = parse(VECTOR)
    assert reason is None
    assert (record["source"], record["file"], record["host"]) == ("/var/log/nginx/error.log",) * 2 + ("edge-3",)
    assert record["line"] == VECTOR["message"]
    assert record["ingested_at"] == "2024-05-01T12:00:01.987+00:00"


def test_vector_journald_record_falls_back_to_the_host():
    record, reason, _ = parse(VECTOR_JOURNALD)
    assert reason is None and record["source"] == "db-1" and record["file"] == ""


def test_fluent_bit_kubernetes_record():
    record, reason, _ = parse(FLUENT_BIT_K8S)
    assert reason is None
    assert record["source"] == "payments"
    assert record["line"] == "2024-05-01T12:00:03.250Z ERROR payment failed: card declined"   # newline dropped
    assert record["ingested_at"] == "2024-05-01T12:00:03.250+00:00"                          # epoch double
    assert record["host"] == "" and record["file"] == ""


def test_fluent_bit_tail_record_with_path_key_and_date():
    record, reason, _ = parse(FLUENT_BIT_TAIL)
    assert reason is None
    assert (record["source"], record["file"]) == ("/var/log/kern.log", "/var/log/kern.log")
    assert record["ingested_at"] == "2024-05-01T12:00:04.000+00:00"


def test_source_field_setting_groups_by_host():
    by_host = record_options(Settings.from_env({"CLOGS_SOURCE_FIELD": "host.name, host"}))
    assert parse(FILEBEAT, **by_host)[0]["source"] == "web1"
    assert parse(VECTOR, **by_host)[0]["source"] == "edge-3"
    by_namespace = record_options(Settings.from_env({"CLOGS_SOURCE_FIELD": "kubernetes.namespace_name"}))
    assert parse(FLUENT_BIT_K8S, **by_namespace)[0]["source"] == "shop"


def test_a_literal_dotted_key_matches_too():
    assert parse({"message": "x", "service.name": "billing"}, source_fields="service.name")[0]["source"] == "billing"


def test_kafka_header_names_the_source_and_beats_guessed_fields():
    headers = [("trace", b"abc"), ("source", b"nginx-edge")]
    record, reason, _ = parse(VECTOR, headers=headers)
    assert reason is None and record["source"] == "nginx-edge"
    record, _, _ = parse({"log": "bare line"}, headers={"source": b"from-mapping"})
    assert record["source"] == "from-mapping"


def test_header_name_setting():
    mine = record_options(Settings.from_env({"CLOGS_SOURCE_HEADER": "x-clogs-source"}))
    assert parse({"log": "x"}, headers=[("source", b"ignored"), ("x-clogs-source", b"mine")], **mine)[0]["source"] == "mine"
    assert parse({"log": "x"}, headers=[("x-clogs-source", b"mine")], source_header="")[1] == "missing_fields"   # off


def test_record_key_is_the_last_resort():
    record, reason, _ = parse({"log": "bare line", "@timestamp": 1714564800}, key=b"svc-a")
    assert reason is None and record["source"] == "svc-a"
    assert record["ingested_at"] == "2024-05-01T12:00:00.000+00:00"


def test_clogs_own_record_wins_over_shipper_fields():
    mixed = {"source": "log-a", "line": "own line", "message": "other", "host": {"name": "h"}}
    record, reason, _ = parse(mixed, headers=[("source", b"header")], key=b"key")
    assert reason is None and record["source"] == "log-a" and record["line"] == "own line"
    assert record["host"] == {"name": "h"}   # clogs' own records are taken as they are, as before


def test_missing_source_names_the_setting():
    record, reason, detail = parse({"log": "a line", "stream": "stdout"})
    assert record is None and reason == "missing_fields" and "CLOGS_SOURCE_FIELD" in detail


@pytest.mark.parametrize("shape", [
    {"message": 42, "host": "h"},
    {"message": {"nested": "object"}, "host": "h"},
    {"log": {"file": {"path": "/x.log"}}, "host": {"name": "h"}},   # Filebeat without its message
    {"host": "h"},
])
def test_no_string_line_is_missing_fields(shape):
    record, reason, detail = parse(shape)
    assert record is None and reason == "missing_fields" and "line" in detail


def test_a_non_string_message_gives_way_to_a_string_log():
    record, reason, _ = parse({"message": 42, "log": "the line", "host": "h"})
    assert reason is None and record["line"] == "the line"


def test_whitespace_line_is_empty_line():
    assert parse({"message": "  \n", "host": "h"})[1] == "empty_line"


@pytest.mark.parametrize("stamp,expected", [
    ("not a time", None),
    ("12:00:00", None),
    (True, None),
    (-5, None),
    ("2024-05-01 12:00:00", "2024-05-01T12:00:00.000+00:00"),        # no zone: UTC
    ("2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00.000+00:00"),
    (1714564800123, "2024-05-01T12:00:00.123+00:00"),                # milliseconds
])
def test_timestamps(stamp, expected):
    record, reason, _ = parse({"message": "x", "host": "h", "@timestamp": stamp})
    assert reason is None and record["ingested_at"] == expected


def test_other_timestamp_fields_are_tried_when_the_first_is_unreadable():
    record, _, _ = parse({"message": "x", "host": "h", "@timestamp": "garbage", "date": 1714564800})
    assert record["ingested_at"] == "2024-05-01T12:00:00.000+00:00"


def test_empty_source_values_are_skipped():
    record, _, _ = parse({"message": "x", "file": "  ", "host": "h"}, headers=[("source", b"")])
    assert record["source"] == "h"
