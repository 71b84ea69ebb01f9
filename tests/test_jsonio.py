"""app/jsonio.py: orjson on the hot path, the standard library for what orjson refuses."""
import json

import pytest

from app import jsonio


def test_round_trip_is_plain_compact_json():
    value = {"source": "log-hdfs", "line": "ünïcode ✓ \"quoted\"", "n": 3, "x": 1.25, "ok": True, "none": None,
             "list": [1, "a", {"b": []}]}
    encoded = jsonio.dumps(value)
    assert isinstance(encoded, bytes) and b", " not in encoded
    assert json.loads(encoded) == value == jsonio.loads(encoded) == jsonio.loads(encoded.decode())


def test_what_orjson_refuses_takes_the_standard_library():
    big = {"line_no": 10**30, "name": "lone \udc80 surrogate"}
    assert json.loads(jsonio.dumps(big)) == big
    decoded = jsonio.loads(b'{"n": NaN, "big": 123456789012345678901234567890, "s": "a\\ud800b", "k\\udfff": ["\\udc00"]}')
    assert decoded["big"] == 123456789012345678901234567890 and decoded["n"] != decoded["n"]   # NaN
    assert decoded["s"] == "a\ufffdb" and decoded["k\ufffd"] == ["\ufffd"]   # lone surrogates: no text
    jsonio.dumps(decoded["s"])   # ...so it can be written again


def test_not_json_is_a_value_error_with_the_standard_message():
    with pytest.raises(ValueError, match="Expecting value"):
        jsonio.loads(b"not json")


def test_a_line_number_past_64_bits_is_refused_by_name():
    from agents.scoring import line_number

    assert line_number("12") == 12 and line_number(None) == 0
    with pytest.raises(OverflowError, match="line_no"):
        line_number(2**63)
