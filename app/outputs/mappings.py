"""The explicit mappings of the two indices clogs writes: lines (``MAPPING``, the fields of
app/outputs/documents.py ``line_document``) and incidents (``INCIDENT_MAPPING``), and the settings
of the indices it creates."""


MAPPING = {
    "dynamic": "false",
    "properties": {
        # Elastic Common Schema names (app/outputs/documents.py fills them in)
        "@timestamp": {"type": "date"},          # the time the line states, else the ingest time
        "timestamp_source": {"type": "keyword"},  # "line" or "ingest": where @timestamp came from
        "message": {"type": "text"},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "log": {"properties": {"file": {"properties": {"path": {"type": "keyword"}}},
                               "level": {"type": "keyword"}, "logger": {"type": "keyword"},
                               # a multi-line event (model/multiline.py): its lines, and whether it was cut
                               "multiline": {"properties": {"lines": {"type": "integer"},
                                                            "truncated": {"type": "boolean"},
                                                            "continued": {"type": "boolean"}}}}},
        "event": {"properties": {"dataset": {"type": "keyword"}, "ingested": {"type": "date"},
                                 "severity": {"type": "long"},   # 0-100 (model/severity.py)
                                 "original": {"type": "keyword", "index": False, "doc_values": False}}},
        "error": {"properties": {"message": {"type": "text"}, "type": {"type": "keyword"},
                                 "stack_trace": {"type": "text", "index": False}}},
        "call_site": {"type": "keyword"},   # a stack trace's top application frame (model/traces.py)
        "restart": {"type": "boolean"},     # the line with which the source's start-up lines came back
        # the other fields of a structured line (at most 32, model/structured.py): one field in the
        # mapping whatever the keys, so a noisy logger cannot explode it
        "fields": {"type": "flattened"},
        # clogs' own
        "source": {"type": "keyword"},
        # "index": False: kept, sortable and aggregatable (doc values), but no search structure -- for
        # fields people read and chart but never filter on (less work per document, issue 11)
        "line_no": {"type": "long", "index": False},
        "ingested_at": {"type": "date"},
        "scored_at": {"type": "date", "index": False},
        "indexed_at": {"type": "date", "index": False},
        "anomaly_score": {"type": "float"},
        "model_score": {"type": "float", "index": False},
        "pattern_id": {"type": "keyword"},
        "pattern_seen": {"type": "integer", "index": False},
        "is_anomaly": {"type": "boolean"},
        "threshold_used": {"type": "float"},
        "mean_score": {"type": "float"},
        "std_score": {"type": "float"},
        "threshold_mode": {"type": "keyword"},
        "top_tokens": {"type": "keyword"},
        "unknown_tokens": {"type": "integer", "index": False},
        "model_version": {"type": "keyword"},
        "incident_id": {"type": "keyword"},
        "kafka_topic": {"type": "keyword", "index": False},
        "kafka_partition": {"type": "integer", "index": False},
        "kafka_offset": {"type": "long", "index": False},
    },
}
INCIDENT_MAPPING = {
    "dynamic": "false",
    "properties": {
        "@timestamp": {"type": "date"},        # = last_seen, so Kibana's time filter shows live incidents
        "incident_id": {"type": "keyword"},
        "source": {"type": "keyword"},
        "event": {"properties": {"dataset": {"type": "keyword"}, "severity": {"type": "long"}}},
        "severity_band": {"type": "keyword"},  # warning | minor | major | critical
        "max_severity": {"type": "integer"},   # of its worst line
        "kind": {"type": "keyword"},           # content | rate | silence
        "status": {"type": "keyword"},         # open | acknowledged | normal | suppressed | resolved
        "pattern": {"type": "keyword"},
        "summary": {"type": "text"},
        "first_seen": {"type": "date"},
        "last_seen": {"type": "date"},
        "updated_at": {"type": "date"},
        "suppressed_until": {"type": "date"},
        "resolved_at": {"type": "date"},       # when it resolved by itself (status resolved)
        "reopened": {"type": "integer"},       # how often it came back after resolving
        "count": {"type": "long"},
        "max_score": {"type": "float"},
        "threshold_used": {"type": "float"},
        "top_tokens": {"type": "keyword"},
        "log": {"properties": {"level": {"type": "keyword"}}},
        "observed": {"type": "float"},         # rate: lines in the window; silence: seconds without a line
        "expected": {"type": "float"},         # rate: usual lines per window; silence: the usual longest gap
        "examples": {"type": "object", "enabled": False},  # [{doc_id, message, anomaly_score, at}]
    },
}


def index_settings(settings):
    """The settings of an index clogs creates (CLOGS_ES_REFRESH_INTERVAL: how soon a line is searchable)."""
    return {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": settings.es_refresh_interval}
