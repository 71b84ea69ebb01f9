"""Faust tables and records: the per-source running score statistics."""
