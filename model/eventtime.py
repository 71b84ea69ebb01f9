"""The time a log line states for itself: its leading timestamp, parsed into UTC.

``event_time(line, zone, reference)`` looks in the first ``SCAN_CHARS`` characters for the
timestamp shapes the normaliser masks as ``<TS>`` (model/normalise.py: ISO 8601, BGL's
``2005-06-03-15.42.50.675872``, ``Sun Dec 04 04:51:08 2005``, syslog's ``Dec 10 06:55:46``,
HDFS's ``081109 204005``) and three more widespread ones (the Common Log Format of web servers'
access logs, ``[10/Oct/2000:13:55:36 -0700]``; Android's ``03-17 16:13:38.820``; a leading Unix
epoch).  The earliest match in the line wins.  A timestamp without a zone is read in
``zone`` (``CLOGS_TIMEZONE``, an IANA name, default UTC); one without a year takes the year of
``reference`` (the ingest time), or the year before when that would put it more than a day in the
future (a December line read in January).  Returns an aware UTC datetime, or None when the line
states no time we can read: the caller then falls back to the ingest time and says so.
"""
import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from .normalise import DAY_NAMES, MONTH_NAMES, any_day, any_month, bgl_core, clock, iso_core

SCAN_CHARS = 100
MONTHS = {m: i for i, m in enumerate(MONTH_NAMES, start=1)}
_MON = "(" + "|".join(MONTH_NAMES) + ")"

# (name, regex with named groups); groups: Y (4-digit year) y (2-digit) m M (month name) d H I S f (fraction)
# z (zone) e (epoch seconds)
SHAPES = [
    ("iso8601", r"\b(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})[T ](?P<H>\d{2}):(?P<I>\d{2}):(?P<S>\d{2})"
                r"(?:[.,](?P<f>\d+))?(?P<z>Z|[+-]\d{2}:?\d{2})?"),
    ("bgl", r"\b(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})-(?P<H>\d{2})\.(?P<I>\d{2})\.(?P<S>\d{2})\.(?P<f>\d+)\b"),
    ("weekday", r"\b(?:" + "|".join(DAY_NAMES) + ") " + _MON.replace("(", "(?P<M>", 1)
                + r" (?P<d>\d{1,2}) (?P<H>\d{2}):(?P<I>\d{2}):(?P<S>\d{2}) (?P<Y>\d{4})\b"),
    ("syslog", r"\b" + _MON.replace("(", "(?P<M>", 1) + r"\s+(?P<d>\d{1,2})\s+(?P<H>\d{2}):(?P<I>\d{2}):(?P<S>\d{2})\b"),
    ("clf", r"\[(?P<d>\d{2})/" + _MON.replace("(", "(?P<M>", 1) + r"/(?P<Y>\d{4}):(?P<H>\d{2}):(?P<I>\d{2}):(?P<S>\d{2})"
            r" (?P<z>[+-]\d{4})\]"),
    ("hdfs", r"^(?P<y>\d{2})(?P<m>\d{2})(?P<d>\d{2}) (?P<H>\d{2})(?P<I>\d{2})(?P<S>\d{2})\b"),
    ("android", r"^(?P<m>\d{2})-(?P<d>\d{2}) (?P<H>\d{2}):(?P<I>\d{2}):(?P<S>\d{2})\.(?P<f>\d{3})\b"),
    ("epoch", r"^(?:- )?(?P<e>1[0-9]{9})(?:\.(?P<f>\d+))?\b"),
]
_COMPILED = [(name, re.compile(pattern)) for name, pattern in SHAPES]
# Cheap necessary conditions (on the scanned head): a shape whose condition fails cannot match, so
# its search is skipped.  tests/test_incidents.py checks that the result is the same without them.
# The scans are the normaliser's (model/normalise.py), which start with a literal character.
_CLOCK_YEAR = re.compile(r":\d\d:\d\d \d{4}\b").search       # inside every weekday stamp
_PRECHECK = {
    "iso8601": iso_core,
    "bgl": bgl_core,
    "weekday": lambda head: _CLOCK_YEAR(head) and any_day(head),
    "syslog": lambda head: clock(head) and any_month(head),
    "clf": lambda head: "[" in head and "/" in head,
    "hdfs": lambda head: head[:1].isdigit(),
    "android": lambda head: head[:1].isdigit(),
    "epoch": lambda head: head[:1] in ("1", "-"),
}


@lru_cache(maxsize=64)
def zone_of(name):
    """The tzinfo of an IANA name; a ValueError naming CLOGS_TIMEZONE for an unknown one."""
    if name in ("UTC", "utc", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ValueError, OSError) as exc:   # ZoneInfoNotFoundError is a KeyError: see below
        raise ValueError(f"CLOGS_TIMEZONE={name!r} is not a time zone ({exc})") from None
    except KeyError:
        raise ValueError(f"CLOGS_TIMEZONE={name!r} is not a time zone (an IANA name such as Europe/Berlin)") from None


def event_time(line, zone="UTC", reference=None, prechecks=True):
    """The line's own timestamp as an aware UTC datetime, or None."""
    head = line[:SCAN_CHARS]
    best = None
    for name, pattern in _COMPILED:
        if prechecks and not _PRECHECK[name](head):
            continue
        match = pattern.search(head)
        if match and (best is None or match.start() < best.start()):
            best = match
    if best is None:
        return None
    try:
        return _to_datetime(best.groupdict(), zone, reference)
    except (ValueError, OverflowError, OSError):
        return None  # a shape that is no real date (month 13, day 32, year 9999 east of UTC)


def _to_datetime(g, zone, reference):
    fraction = g.get("f") or ""
    micro = int((fraction + "000000")[:6]) if fraction else 0
    if g.get("e"):
        return datetime.fromtimestamp(int(g["e"]), timezone.utc).replace(microsecond=micro)
    reference = reference or datetime.now(timezone.utc)
    month = MONTHS[g["M"]] if g.get("M") else int(g["m"])
    year = int(g["Y"]) if g.get("Y") else (2000 + int(g["y"]) if g.get("y") else None)
    tz = _offset(g["z"]) if g.get("z") else zone_of(zone)
    parts = dict(month=month, day=int(g["d"]), hour=int(g["H"]), minute=int(g["I"]), second=int(g["S"]),
                 microsecond=micro, tzinfo=tz)
    if year is not None:
        return datetime(year, **parts).astimezone(timezone.utc)
    stamp = datetime(reference.year, **parts).astimezone(timezone.utc)
    if stamp > reference + timedelta(days=1):
        stamp = datetime(reference.year - 1, **parts).astimezone(timezone.utc)
    return stamp


def _offset(text):
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def iso(stamp):
    """An aware datetime -> the one ISO 8601 form clogs writes (UTC, milliseconds), so that times
    compare as strings."""
    return stamp.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def checked_zone(name):
    """Fail at start, not on the first line, for an unknown CLOGS_TIMEZONE."""
    zone_of(name)
    return name


def stated_time(value):
    """A time as a record or a structured line states it -- an ISO 8601 string, or epoch seconds
    (milliseconds above 1e11) -- as an aware datetime, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, timezone.utc) if seconds > 0 else None
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return None
    return parse_iso(value.strip())


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_iso(text):
    """An ISO 8601 string (as records and shippers write it; a naive one is UTC, digits past the
    microsecond are dropped) -> aware datetime, or None.  The one ISO parser of clogs."""
    if not text:
        return None
    text = str(text)
    if "z" in text or "Z" in text:
        text = text.replace("Z", "+00:00").replace("z", "+00:00")
    if len(text) > 26:   # nanoseconds (Vector): Python 3.10 takes at most six digits
        text = _FRACTION.sub(r"\1", text)
    try:
        stamp = datetime.fromisoformat(text)
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
        stamp.astimezone(timezone.utc)   # year 1 or 9999 with an offset cannot be moved to UTC
    except (ValueError, OverflowError):
        return None
    return stamp
