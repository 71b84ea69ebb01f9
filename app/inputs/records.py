"""Log-topic records: a raw record -> clogs' record (source, line, file, line_no, ingested_at, host)
or (reason, detail) for the dead-letter topic (``too_large``, ``undecodable``, ``not_json``,
``not_object``, ``missing_fields``, ``empty_line``), and the dead-letter document itself.  clogs' own
records and those of Filebeat, Vector and Fluent Bit are read; docs/shippers.md says how each field
is found.
"""
import base64
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache

from app import jsonio
from model.eventtime import iso, stated_time

REQUIRED = ("source", "line")
DEFAULTS = {"file": "", "line_no": 0, "ingested_at": None, "host": ""}
LINE_FIELDS = ("line", "message", "log")
DEFAULT_SOURCE_FIELDS = ("log.file.path", "file", "filename", "path", "kubernetes.container_name", "host.name", "host")
FILE_FIELDS = ("log.file.path", "file", "filename", "path")
HOST_FIELDS = ("host.name", "host", "hostname")
TIME_FIELDS = ("@timestamp", "timestamp", "date")
DEFAULT_SOURCE_HEADER = "source"


def record_options(settings):
    """``parse_log_value``'s options from the settings (CLOGS_MAX_LINE_BYTES, CLOGS_SOURCE_FIELD,
    CLOGS_SOURCE_HEADER)."""
    return {"max_bytes": settings.max_line_bytes, "source_fields": settings.source_field,
            "source_header": settings.source_header}


def parse_log_value(value, headers=None, key=None, max_bytes=1_000_000, source_fields="",
                    source_header=DEFAULT_SOURCE_HEADER):
    """Returns (record, None, None) or (None, reason, detail).

    ``headers``: the Kafka record's headers, as aiokafka gives them (a list of (str, bytes)) or a
    mapping; ``key``: its key (bytes or str).  Both only serve to find a shipper record's source.
    ``source_fields``: the field paths of a shipper record's source (","-separated; empty: the
    default ones); ``source_header``: the header naming it ("" = none)."""
    if value is None:
        return None, "not_json", "empty record value"
    if isinstance(value, str):
        value = value.encode("utf-8", errors="replace")
    if len(value) > max_bytes:
        return None, "too_large", f"{len(value)} bytes > {max_bytes}"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "undecodable", f"not UTF-8: {exc}"
    try:
        record = jsonio.loads(value)
    except ValueError as exc:   # JSONDecodeError, and numbers past Python's digit limit
        return None, "not_json", str(exc)
    if not isinstance(record, dict):
        return None, "not_object", f"JSON {type(record).__name__}, expected an object"
    if all(isinstance(record.get(f), str) for f in REQUIRED):  # clogs' own record, as before
        if not record["line"].strip():
            return None, "empty_line", "the line is empty or whitespace only"
        for name, default in DEFAULTS.items():
            record.setdefault(name, default)
        return record, None, None
    return _from_shipper(record, headers, key, source_fields, source_header)


def _from_shipper(record, headers, key, source_fields, header_name):
    line = _first_string(record, LINE_FIELDS, nested=False, blank=True)
    source = record.get("source") if isinstance(record.get("source"), str) and record["source"].strip() else None
    fields = _split_fields(source_fields)
    source = source or _header(headers, header_name) or _first_string(record, fields) or _text(key)
    missing = []
    if source is None:
        missing.append(f"source (no `source` field, no {header_name!r} Kafka header (CLOGS_SOURCE_HEADER), none of "
                       f"{', '.join(fields)} (CLOGS_SOURCE_FIELD), no record key)")
    if line is None:
        missing.append("line (none of " + ", ".join(LINE_FIELDS) + " is a string)")
    if missing:
        return None, "missing_fields", "missing or not a string: " + "; ".join(missing)
    if line.endswith("\n"):
        line = line[:-2] if line.endswith("\r\n") else line[:-1]
    if not line.strip():
        return None, "empty_line", "the line is empty or whitespace only"
    return {"source": source, "line": line, "file": _first_string(record, FILE_FIELDS) or "", "line_no": 0,
            "ingested_at": _timestamp(record), "host": _first_string(record, HOST_FIELDS) or ""}, None, None


@lru_cache(maxsize=8)
def _split_fields(text):
    fields = tuple(f.strip() for f in (text or "").split(",") if f.strip())
    return fields or DEFAULT_SOURCE_FIELDS


def _get(record, path, nested=True):
    if path in record:
        return record[path]
    if not nested or "." not in path:
        return None
    value = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _first_string(record, paths, nested=True, blank=False):
    """The first string at one of ``paths``: as it is when ``blank``, else stripped and non-empty."""
    for path in paths:
        value = _get(record, path, nested)
        if isinstance(value, str):
            if blank:
                return value
            if value.strip():
                return value.strip()
    return None


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    return (value.strip() or None) if isinstance(value, str) else None


def _header(headers, name):
    """The first non-empty value of the Kafka header ``name``, as text, or None."""
    if not headers or not name:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for item in items:
        try:
            header_key, header_value = item
        except (TypeError, ValueError):
            continue
        if _text(header_key) == name:
            text = _text(header_value)
            if text:
                return text
    return None


def _timestamp(record):
    for name in TIME_FIELDS:
        stamp = stated_time(record.get(name))
        if stamp is not None:
            return iso(stamp)
    return None


PREVIEW_BYTES = 16_384


def preview(value):
    if value is None:
        return None, None
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "replace")
    raw = raw[:PREVIEW_BYTES]
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def dead_letter(reason, detail, redactor, key=None, value=None, topic=None, partition=None, offset=None, size=None):
    """The dead-letter document for one bad record, redacted by ``redactor`` (app/outputs/redaction.py).
    A preview of bytes that are not UTF-8 is base64, which no rule could check for secrets: while
    redaction is on it is decoded with replacement characters instead (``utf-8-replaced``) and
    redacted like text; the exact bytes stay in the source topic at the offset the document names."""
    text, encoding = preview(value)
    if encoding == "base64" and redactor.enabled:
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "replace")
        text, encoding = raw[:PREVIEW_BYTES].decode("utf-8", "replace"), "utf-8-replaced"
    doc = {
        "reason": reason,
        "detail": detail,
        "source_topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode("utf-8", "replace") if isinstance(key, bytes) else key,
        "size": size if size is not None else (len(value) if isinstance(value, (bytes, str)) else None),
        "value_preview": text,
        "preview_encoding": encoding,
        "at": datetime.now(timezone.utc).isoformat(),
    }
    redactor.redact_document(doc)
    return doc
