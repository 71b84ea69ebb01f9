"""Which Elasticsearch failures are retried, which stop the sink (and say how to fix them), and
which are one document's fault (app/outputs/elastic.py ``blocking_reason``)."""
from app.outputs.elastic import blocking_reason, error_type


def test_failure_classes():
    assert "CLOGS_ES_PASSWORD" in blocking_reason(401, "security_exception", "idx")
    assert "index.blocks.write" in blocking_reason(403, "cluster_block_exception", "idx")
    assert "http.max_content_length" in blocking_reason(413, "", "idx")
    conflict = blocking_reason(400, "mapper_parsing_exception", "idx", "object mapping for [host] tried to parse")
    assert conflict.startswith("400") and "CLOGS_INDEX" in conflict and "[host]" in conflict
    for status, kind in ((400, "illegal_argument_exception"), (409, "version_conflict_engine_exception"),
                         (429, "es_rejected_execution_exception"), (500, ""), (503, "unavailable_shards_exception")):
        assert blocking_reason(status, kind, "idx") is None, (status, kind)   # retried (429/5xx) or dead-lettered
    assert error_type({"type": "mapper_parsing_exception", "reason": "x"}) == "mapper_parsing_exception"
    assert error_type(None) == "" and error_type("text") == ""
