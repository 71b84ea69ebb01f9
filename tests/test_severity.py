"""Severity 0-100 of events and incidents, and its bands (model/severity.py)."""
import pytest

from model.incidents import document, new_incident
from model.severity import band, event_severity, incident_severity, ratio_severity


@pytest.mark.parametrize("severity, name", [(0, "warning"), (24, "warning"), (25, "minor"), (49, "minor"),
                                            (50, "major"), (74, "major"), (75, "critical"), (100, "critical")])
def test_bands_are_those_of_elastics_anomaly_score(severity, name):
    assert band(severity) == name


def test_an_event_not_flagged_stays_in_the_warning_band():
    assert event_severity(9.9, 10.0, 1.0, 4, 0, flagged=False) == 23
    assert event_severity(50.0, 10.0, 1.0, 4, 0, flagged=False) == 24
    assert event_severity(-1.0, 10.0, 1.0, 1, 5, flagged=False) == 0


def test_a_flagged_event_grows_with_its_distance_level_and_novelty():
    just_over = event_severity(10.01, 10.0, 1.0, 1, 7, flagged=True)
    far_over = event_severity(40.0, 10.0, 1.0, 1, 7, flagged=True)
    assert band(just_over) == "minor" and just_over == 25
    assert far_over == 60                                     # the distance saturates at 35
    assert event_severity(40.0, 10.0, 1.0, 3, 7, flagged=True) == 75    # an error
    assert event_severity(40.0, 10.0, 1.0, 4, 0, flagged=True) == 95    # a new fatal pattern
    assert event_severity(13.0, 10.0, 1.0, 2, 0, flagged=True) == 25 + 22 + 5 + 10
    assert event_severity(13.0, 10.0, 1.0, 2, None, flagged=True) == 25 + 22 + 5   # learning off: novelty unknown
    assert event_severity(13.0, 10.0, 0.0, 1, 3, flagged=True) > event_severity(13.0, 10.0, 5.0, 1, 3, flagged=True)


def test_an_incident_is_its_worst_event_raised_by_its_burst_and_lowered_by_feedback():
    incident = dict(new_incident("s", "content", "p", "2026-01-05T12:00:00.000+00:00"), max_severity=60, count=1)
    assert incident_severity(incident) == 60
    assert incident_severity(dict(incident, count=50)) == 60 + 7
    assert incident_severity(dict(incident, count=10 ** 6)) == 70
    assert incident_severity(dict(incident, status="acknowledged")) == 30
    assert incident_severity(dict(incident, status="normal")) == 0
    doc = document(dict(incident, count=50))
    assert doc["event"]["severity"] == 67 and doc["severity_band"] == "major"


def test_rate_and_silence_incidents_by_their_ratio_to_the_usual():
    assert ratio_severity(10, 10) == 0 and ratio_severity(20, 10) == 25
    assert ratio_severity(40, 10) == 50 and ratio_severity(80, 10) == 75 and ratio_severity(10 ** 9, 1) == 90
    burst = dict(new_incident("s", "rate", "rate", "2026-01-05T12:00:00.000+00:00"), observed=100.0, expected=20.0)
    assert band(incident_severity(burst)) == "major"
    quiet = dict(new_incident("s", "silence", "silence", "2026-01-05T12:00:00.000+00:00"), observed=130, expected=120)
    assert band(incident_severity(quiet)) == "warning"
