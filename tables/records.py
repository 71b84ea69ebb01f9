"""Faust records that travel between the agents, and the running statistics of a source.

``Stats`` keeps, for one source: ``count`` (every line counted), ``anomalies`` (lines
flagged), Welford's ``n`` / ``mean`` / ``m2`` over the scores of the lines that were *not*
flagged (a burst of anomalies never enters the baseline, so it cannot raise the threshold
and hide itself), and ``last_offset``: the log-topic offset of the last line it counted.  A source's
lines all live in one log-topic partition, so an offset at or below ``last_offset`` is a
replay (at-least-once delivery after a crash) and is not counted twice.
"""
import math

import faust


def welford(count, mean, m2, x):
    """One step of Welford's online mean/variance: returns (count, mean, m2)."""
    count += 1
    delta = x - mean
    mean += delta / count
    m2 += delta * (x - mean)
    return count, mean, m2


class Stats(faust.Record, serializer="json"):
    count: int = 0
    anomalies: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    last_offset: int = -1

    @property
    def std(self):
        return math.sqrt(self.m2 / self.n) if self.n > 1 else 0.0

    def add(self, value, offset, is_anomaly):
        """Count a line; its score joins the baseline only if it was not flagged."""
        n, mean, m2 = (self.n, self.mean, self.m2) if is_anomaly else welford(self.n, self.mean, self.m2, value)
        return Stats(count=self.count + 1, anomalies=self.anomalies + int(is_anomaly), n=n, mean=mean, m2=m2,
                     last_offset=offset)


class ScoredBatch(faust.Record, serializer="json"):
    """Scored lines of one source, in log-topic offset order: one message per source and
    micro-batch between the scoring agent and the threshold agent (one table read and write
    per batch instead of per line).  Each line is a dict with the fields of ``SCORED_FIELDS``."""
    source: str
    lines: list


SCORED_FIELDS = ("source", "file", "line_no", "line", "ingested_at", "host", "anomaly_score", "unknown_tokens",
                 "top_tokens", "model_version", "kafka_topic", "kafka_partition", "kafka_offset", "scored_at")
