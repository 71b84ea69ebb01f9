"""JSON in and out of clogs' hot path: orjson, with the standard library for what orjson refuses.

orjson is several times faster than ``json`` (the worker's JSON work was a tenth of its time,
issue 11) and Faust uses it on its own once it is installed.  It is stricter: it refuses integers
past 64 bits and strings with lone surrogates (``dumps``), and NaN, Infinity and such integers
(``loads``).  Those rare values take the standard library's path, so what was accepted before is
accepted now, and what was refused is refused with the standard library's message.  A lone
surrogate that the standard library decodes (``"\\ud800"``) is no text any encoder can write back
(Kafka keys, Faust's orjson, Elasticsearch): ``loads`` replaces it with U+FFFD.
"""
import json
import re

import orjson


def dumps(value):
    """``value`` as compact JSON bytes."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def loads(data):
    """Bytes or str of JSON -> the value; raises ValueError (json.JSONDecodeError) if it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _scrubbed(json.loads(data))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrubbed(value):
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {_scrubbed(k): _scrubbed(v) for k, v in value.items()}
    return value
