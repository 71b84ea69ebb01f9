"""Severity: a score from 0 to 100 of an event and of an incident, and its band, read the way Elastic's
machine-learning anomaly score is read -- ``warning`` below 25, ``minor`` from 25, ``major`` from 50,
``critical`` from 75.  docs/model.md says how each part weighs.

An event's severity grows with how far its score lies beyond its source's threshold (in the
source's own spread), its level (warning, error, fatal) and whether its pattern is new to the
source; an event that was not flagged stays in the warning band.  An incident's severity is that of
its worst event, raised by the size of its burst; a rate or silence incident's comes from how far
the source's rate or quiet is from its usual; the operator's word lowers it (acknowledged,
suppressed) or ends it (normal).
"""
import math

BANDS = (("critical", 75), ("major", 50), ("minor", 25), ("warning", 0))
LEVEL_WEIGHT = {2: 5, 3: 15, 4: 25}          # warning, error, fatal
NEW_PATTERN_WEIGHT = 10
FEEDBACK_FACTOR = {"open": 1.0, "acknowledged": 0.5, "suppressed": 0.5, "normal": 0.0}


def band(severity):
    """The band of a severity: warning, minor, major or critical."""
    return next(name for name, low in BANDS if (severity or 0) >= low)


def event_severity(score, threshold, std, level, pattern_seen, flagged):
    """0-100 for one decided event: 25-60 by how far its score lies beyond the threshold (in units of
    the source's standard deviation, saturating), plus its level's weight and the new-pattern weight;
    below 25 (in proportion to score / threshold) when it was not flagged."""
    threshold = max(float(threshold or 0.0), 1e-9)
    if not flagged:
        return int(min(24, max(0.0, 24 * float(score) / threshold)))
    spread = max(float(std or 0.0), 0.05 * threshold, 1e-6)
    beyond = max(0.0, (float(score) - threshold) / spread)
    severity = 25 + 35 * (1 - math.exp(-beyond / 3)) + LEVEL_WEIGHT.get(level, 0)
    if pattern_seen == 0:   # None: not known (learning off)
        severity += NEW_PATTERN_WEIGHT
    return int(min(100, round(severity)))


def ratio_severity(observed, expected):
    """0-90 for a rate or a silence: 25 log2 of the observation over the usual -- 25 (minor) at twice
    the usual, 50 (major) at four times, 75 (critical) at eight times."""
    ratio = float(observed or 0.0) / max(float(expected or 0.0), 1.0)
    if ratio <= 1:
        return 0
    return int(min(90, round(25 * math.log2(ratio))))


def incident_severity(incident):
    """0-100 for an incident (model/incidents.py): its worst event's, plus up to 10 for a burst of
    repeats; a rate or silence incident's from its ratio to the usual; times the operator's factor."""
    if incident["kind"] == "content":
        count = max(int(incident.get("count") or 0), 1)
        severity = (incident.get("max_severity") or 0) + min(10.0, 4 * math.log10(count))
    else:
        severity = ratio_severity(incident.get("observed"), incident.get("expected"))
    return int(min(100, round(severity * FEEDBACK_FACTOR.get(incident.get("status"), 1.0))))
