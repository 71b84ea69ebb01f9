"""Validation of raw log-topic records and the dead-letter document for a bad one.

A good record becomes a dict, a bad one a (reason, detail).

A record is a JSON object with at least ``source`` and ``line`` (``file``, ``line_no``,
``ingested_at`` and ``host`` are filled in when missing).  Reasons for the dead-letter topic:
``too_large``, ``undecodable``, ``not_json``, ``not_object``, ``missing_fields``, ``empty_line``.
"""
import base64
import json
from datetime import datetime, timezone

from app import settings

REQUIRED = ("source", "line")
DEFAULTS = {"file": "", "line_no": 0, "ingested_at": None, "host": ""}


def parse_log_value(value, max_bytes=None):
    """Returns (record, None, None) or (None, reason, detail)."""
    max_bytes = max_bytes or settings.MAX_LINE_BYTES
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
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, "not_json", str(exc)
    if not isinstance(record, dict):
        return None, "not_object", f"JSON {type(record).__name__}, expected an object"
    missing = [f for f in REQUIRED if not isinstance(record.get(f), str)]
    if missing:
        return None, "missing_fields", "missing or not a string: " + ", ".join(missing)
    if not record["line"].strip():
        return None, "empty_line", "the line is empty or whitespace only"
    for key, default in DEFAULTS.items():
        record.setdefault(key, default)
    return record, None, None


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


def dead_letter(reason, detail, key=None, value=None, topic=None, partition=None, offset=None, size=None):
    """The dead-letter document for one bad record."""
    text, encoding = preview(value)
    return {
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
