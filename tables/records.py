"""Faust records that travel between the agents, and the running statistics of a source.

``Stats`` keeps, for one source: ``count`` (every line counted), ``anomalies`` (lines
flagged), Welford's ``n`` / ``mean`` / ``m2`` over the scores of the lines that were *not*
flagged (a burst of anomalies never enters the baseline, so it cannot raise the threshold
and hide itself), ``offsets``: per log-topic partition the offset of the last line it counted
(``last_offset``: the last of all), and ``model_version``: the model whose scores the baseline holds
(model/online.py rebases it when the model changes).  Within a partition a source's lines come in
offset order, so an offset at or below the partition's last one is a replay (at-least-once
delivery after a crash) and is not counted twice.
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
    model_version: str = ""
    all_mean: float = 0.0
    all_m2: float = 0.0
    offsets: dict = None   # log-topic partition -> the last offset counted from it

    def __post_init__(self):
        self.offsets = {} if self.offsets is None else self.offsets

    def replayed(self, partition, offset):
        """Whether a line was counted before: a source's lines are in offset order within each
        log-topic partition (a shipper that does not key records by source spreads a source over
        several partitions, each with its own offsets)."""
        return offset <= self.offsets.get(str(partition), -1)

    @property
    def std(self):
        return math.sqrt(self.m2 / self.n) if self.n > 1 else 0.0

    @property
    def all_std(self):
        return math.sqrt(self.all_m2 / self.count) if self.count > 1 else 0.0

    def add(self, value, offset, is_anomaly, in_baseline=None, partition=0):
        """Count a line (in place); its score joins the baseline only if it was not flagged (or
        ``in_baseline`` says otherwise: a line an operator marked normal is not flagged, but its
        high score stays out of the baseline).  ``all_mean`` / ``all_std`` follow every line's
        score (the learning period's own bar)."""
        # Once per line: the fields are written straight into the instance's __dict__, which is all
        # a faust.Record field's __set__ does for values of the field's own type (issue 11: the
        # descriptors took a tenth of the threshold agent's time).
        fields = self.__dict__
        if (not is_anomaly) if in_baseline is None else in_baseline:
            fields["n"], fields["mean"], fields["m2"] = welford(self.n, self.mean, self.m2, float(value))
        _, fields["all_mean"], fields["all_m2"] = welford(self.count, self.all_mean, self.all_m2, float(value))
        fields["count"] = self.count + 1
        fields["anomalies"] = self.anomalies + bool(is_anomaly)
        fields["last_offset"] = fields["offsets"][str(partition)] = int(offset)
        return self


class SourceMemory(faust.Record, serializer="json"):
    """What one source has produced (model/online.py): its patterns and its out-of-vocabulary
    tokens, each ``[count, last seen]`` where last seen is the source's line count then;
    ``last_offset`` as in ``Stats``; ``candidates``: lines offered to the slow path's reservoir
    (model/online.py).  Bounded by the policy's caps."""
    patterns: dict = None
    tokens: dict = None
    last_offset: int = -1
    candidates: int = 0    # training candidates offered to the reservoir so far


    def __post_init__(self):
        self.patterns = {} if self.patterns is None else self.patterns
        self.tokens = {} if self.tokens is None else self.tokens


class RateState(faust.Record, serializer="json"):
    """A source's line rate and gaps (model/rates.py): Welford ``n`` / ``mean`` / ``m2`` of the
    counts of its completed windows (``closed_until``: start of the first window not folded yet;
    ``burst_window``: start of the window last flagged as a burst, kept out), Welford ``gap_*`` of
    the seconds between its batches of lines, ``last_line_at`` and ``silent_since`` (Unix seconds;
    0 = not flagged silent)."""
    closed_until: float = 0.0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    burst_window: float = -1.0
    gap_n: int = 0
    gap_mean: float = 0.0
    gap_m2: float = 0.0
    last_line_at: float = 0.0
    silent_since: float = 0.0


class ScoredBatch(faust.Record, serializer="json"):
    """Scored lines of one source, in log-topic offset order: one message per source and
    micro-batch between the scoring agent and the threshold agent (one table read and write
    per batch instead of per line).  Each line is a dict with the fields of ``SCORED_FIELDS``."""
    source: str
    lines: list


SCORED_FIELDS = ("source", "file", "line_no", "line", "ingested_at", "host", "anomaly_score", "unknown_tokens",
                 "top_tokens", "model_version", "kafka_topic", "kafka_partition", "kafka_offset", "scored_at",
                 "n_tokens", "base", "novel", "pattern", "level", "event_time")
