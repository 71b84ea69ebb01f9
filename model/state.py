"""The learning state of one source, as plain dataclasses: its score statistics (``Stats``), its
memory of patterns and new tokens (``SourceMemory``) and its line rate (``RateState``).  The
worker keeps them in changelog-backed tables (tables/records.py encodes them); model/online.py
and model/rates.py read and update them in place.
"""
import math
from dataclasses import asdict, dataclass, field, fields


def welford(count, mean, m2, x):
    """One step of Welford's online mean/variance: returns (count, mean, m2)."""
    count += 1
    delta = x - mean
    mean += delta / count
    m2 += delta * (x - mean)
    return count, mean, m2


@dataclass
class Stats:
    """A source's score statistics: ``count`` (every line), ``anomalies`` (lines flagged), Welford
    ``n`` / ``mean`` / ``m2`` over the scores of the lines that were *not* flagged (a burst never
    enters the baseline), ``all_mean`` / ``all_m2`` over every line, per log-topic partition the
    offset of the last line counted (``offsets``; ``last_offset`` the last of all: an offset at or
    below it is a replay), and the ``model_version`` whose scores the baseline holds."""
    count: int = 0
    anomalies: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    last_offset: int = -1
    model_version: str = ""
    all_mean: float = 0.0
    all_m2: float = 0.0
    offsets: dict = field(default_factory=dict)   # log-topic partition (str) -> last offset counted

    def replayed(self, partition, offset):
        """Whether a line was counted before (a source's lines are in offset order per partition)."""
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
        high score stays out of the baseline)."""
        value = float(value)
        if (not is_anomaly) if in_baseline is None else in_baseline:
            self.n, self.mean, self.m2 = welford(self.n, self.mean, self.m2, value)
        _, self.all_mean, self.all_m2 = welford(self.count, self.all_mean, self.all_m2, value)
        self.count += 1
        self.anomalies += bool(is_anomaly)
        self.last_offset = self.offsets[str(partition)] = int(offset)
        return self


@dataclass
class SourceMemory:
    """What one source has produced: its patterns and its out-of-vocabulary tokens, each
    ``[count, last seen]`` (last seen: the source's line count then); ``last_offset`` as in
    ``Stats``; ``candidates``: lines offered to the slow path's reservoir so far; ``startup``, ``recurring``,
    ``restart_at`` and ``restarts``: what ``model.online.restarted`` keeps; ``novel_window``: what
    ``model.online.calmed`` keeps."""
    patterns: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    last_offset: int = -1
    candidates: int = 0
    startup: list = field(default_factory=list)     # the patterns of its first lines (model/online.py)
    recurring: list = field(default_factory=list)   # [position, pattern] of recent returns of start-up patterns
    restart_at: int = -1                           # position of the last restart seen (model/online.py)
    restarts: int = 0                              # restarts seen
    novel_window: list = field(default_factory=lambda: [-1, 0])   # [window, new patterns flagged in it]


@dataclass
class RateState:
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


@dataclass
class SourceIncidents:
    """The lifecycle book of one source's incidents (model/incidents.py ``age``): ``active`` (incident
    id -> its last_seen) may resolve after a quiet period, ``resolved`` (id -> when it resolved) leave
    the table after the retention; ``watermark`` is the latest time the source's lines state (their
    event time, else their ingest time)."""
    watermark: str = ""
    active: dict = field(default_factory=dict)
    resolved: dict = field(default_factory=dict)


def from_dict(cls, data):
    """A state dataclass from its dict form, ignoring keys it does not have (such as the ``__faust``
    key of the Faust records these states were stored as before)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def to_dict(state):
    return asdict(state)
