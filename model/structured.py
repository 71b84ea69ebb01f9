"""Structured log lines, read without configuration: a JSON object (Elastic's ecs-logging,
logstash-logback-encoder, bunyan, pino, zap, structlog, Serilog's compact JSON, python-json-logger)
or a logfmt / key=value line (Go's slog, logrus), and the container runtimes' wrappers around a line
(Docker's json-file, the CRI format).  ``read_line`` gives the line's message, level, time, logger,
error and other fields, and the text the model scores: the level and the message -- for a logfmt
line without a message, its keys and values.  A line that only looks like JSON is plain text.
"""
import json
import re
from dataclasses import dataclass, field

MESSAGE_KEYS = ("message", "msg", "@m", "@mt", "event", "log", "text")
LEVEL_KEYS = ("log.level", "level", "levelname", "severity", "lvl", "@l", "loglevel")
TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "@t", "t", "asctime", "date")
LOGGER_KEYS = ("log.logger", "logger", "logger_name", "loggerName", "name", "component")
ERROR_KEYS = ("error.stack_trace", "stack_trace", "exc_info", "stack", "exception", "error.message", "err", "error")
NUMERIC_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}   # bunyan, pino
MAX_FIELDS = 32          # other fields kept per line: a noisy logger cannot explode the index mapping
MAX_FIELD_CHARS = 512
CRI = re.compile(r"^(\d{4}-\d\d-\d\dT\S+) (stdout|stderr) ([FP]) ?(.*)$", re.S)
LOGFMT_PAIR = re.compile(r'([A-Za-z_@][\w.@/-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
LOGFMT_MIN_PAIRS = 3


@dataclass
class Structured:
    format: str                  # "json" or "logfmt"
    message: str                 # what people read
    text: str                    # what the model scores
    level: str = None
    time: object = None          # as the line states it: an ISO string or epoch seconds / milliseconds
    logger: str = None
    error: str = None            # the error's text or stack trace, when the line carries one
    fields: dict = field(default_factory=dict)


def unwrap(line):
    """(the line inside a container runtime's wrapper, whether it is a partial line, the stream) --
    Docker's json-file ``{"log": "...\\n", "stream": "stdout", "time": "..."}`` and the CRI format
    ``<time> stdout F <line>`` (``P``: a partial line, continued by the next); else (line, False, None)."""
    if line.startswith('{"log":') or (line.startswith("{") and '"stream"' in line and '"log"' in line):
        try:
            record = json.loads(line)
        except ValueError:
            return line, False, None
        if isinstance(record, dict) and isinstance(record.get("log"), str) and set(record) <= {"log", "stream", "time",
                                                                                           "attrs"}:
            text = record["log"]
            partial = not text.endswith("\n")
            return text.rstrip("\r\n"), partial, record.get("stream")
        return line, False, None
    match = CRI.match(line) if line[:1].isdigit() else None
    if match:
        return match.group(4), match.group(3) == "P", match.group(2)
    return line, False, None


def read_line(line):
    """The structured reading of a line, or None when it is plain text."""
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            record = json.loads(stripped)
        except ValueError:
            return None   # looks like JSON, is not: plain text
        return _from_fields(_flatten(record), "json") if isinstance(record, dict) else None
    if "=" in line and LOGFMT_PAIR.match(stripped):   # logfmt starts with a pair and is (nearly) only pairs
        pairs = LOGFMT_PAIR.findall(stripped)
        if len(pairs) >= LOGFMT_MIN_PAIRS and sum(len(k) + len(v) + 1 for k, v in pairs) >= 0.8 * len(stripped):
            return _from_fields({k: _unquote(v) for k, v in pairs}, "logfmt")
    return None


def _from_fields(fields, kind):
    message = _first(fields, MESSAGE_KEYS)
    level = _first(fields, LEVEL_KEYS)
    if isinstance(level, (int, float)) and not isinstance(level, bool):
        level = NUMERIC_LEVELS.get(int(level), str(level))
    time = _first(fields, TIME_KEYS, text_only=False)
    logger = _first(fields, LOGGER_KEYS)
    error = _first(fields, ERROR_KEYS)
    used = {k for keys in (MESSAGE_KEYS, LEVEL_KEYS, TIME_KEYS, LOGGER_KEYS, ERROR_KEYS) for k in keys}
    rest = {k: v for k, v in fields.items() if k not in used}
    if message is None:   # the model scores the keys and values, a line without them is plain text
        return _keys_only(kind, level, time, logger, error, rest) if rest else None
    head = f"{str(level).upper()} " if level else ""
    text = f"{head}{message}"
    if error and str(error) not in str(message):
        text += f" {str(error).splitlines()[0][:200]}"
    return Structured(kind, str(message), text, _text(level), time, _text(logger), _text(error), _bounded(rest))


def _keys_only(kind, level, time, logger, error, rest):
    """A line without a message: the model scores its keys and values (masked by the normaliser)."""
    head = f"{str(level).upper()} " if level else ""
    body = " ".join(f"{k}={json.dumps(v) if isinstance(v, str) and (' ' in v or not v) else v}"
                    for k, v in rest.items())   # a value with spaces stays quoted: the redaction sees it whole
    return Structured(kind, body, f"{head}{body}", _text(level), time, _text(logger), _text(error), _bounded(rest))


def _flatten(record, prefix=""):
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _first(fields, keys, text_only=True):
    for key in keys:
        value = fields.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, (dict, list)):
            if text_only:
                return json.dumps(value)[:MAX_FIELD_CHARS * 8]
            continue
        return value
    return None


def _text(value):
    return None if value is None else str(value)


def _unquote(value):
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value[1:-1]
    return value


def _bounded(fields):
    out = {}
    for key, value in fields.items():
        if len(out) >= MAX_FIELDS:
            break
        out[key] = value if isinstance(value, (bool, int, float)) else str(value)[:MAX_FIELD_CHARS]
    return out


def prepare(line):
    """(what the model scores, what people read, the extra fields of the line's document) of a raw
    line: unwrapped from a container runtime's wrapper, then read as JSON or logfmt when it is."""
    inner, _, stream = unwrap(line)
    return describe(inner, line, stream)


def describe(inner, original=None, stream=None):
    """``prepare`` of a line already unwrapped (``original``: as written, ``stream``: the wrapper's)."""
    found = read_line(inner)
    extras = {}
    if found is None:
        if original is not None and inner != original:
            extras["original"] = original
            extras["fields"] = {"stream": stream}
        return inner, inner, extras
    if original is not None:
        extras["original"] = original
    if found.time is not None:
        extras["stated_time"] = found.time
    if found.logger:
        extras["logger"] = found.logger
    if found.error:
        extras["error"] = found.error
    if found.fields or stream:
        extras["fields"] = dict(found.fields, **({"stream": stream} if stream else {}))
    return found.text, found.message, extras
