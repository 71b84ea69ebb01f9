"""The changelog-backed per-source tables, all partitioned like the scored topic (a source's state
recovers after a restart and moves with its partition to another worker):

* ``source-stats``: score statistics (``Stats``);
* ``source-memory``: the learning memory (``SourceMemory``);
* ``incidents``: incidents (model/incidents.py), one dict per incident id, written only while
  handling an event of the incident's source, so it lives in that source's partition;
* ``source-rate``: a source's usual rate and gaps (``RateState``, model/rates.py);
* ``source-line-counts``: lines per source in tumbling windows of ``CLOGS_RATE_WINDOW`` seconds,
  expiring after ``CLOGS_RATE_HISTORY`` windows (a Faust windowed table).
"""
from datetime import timedelta

from app import settings
from app.faust_app import app
from tables.records import RateState, SourceMemory, Stats

stats_table = app.Table(
    "source-stats",
    default=Stats,
    key_type=str,
    value_type=Stats,
    partitions=settings.PARTITIONS,
    help="Welford statistics of anomaly scores, per log source",
)

memory_table = app.Table(
    "source-memory",
    default=SourceMemory,
    key_type=str,
    value_type=SourceMemory,
    partitions=settings.PARTITIONS,
    help="patterns and out-of-vocabulary tokens each source has produced (online learning)",
)

incidents_table = app.Table(
    "incidents",
    key_type=str,
    partitions=settings.PARTITIONS,
    help="incidents by id (model/incidents.py), in their source's partition",
)

rate_table = app.Table(
    "source-rate",
    default=RateState,
    key_type=str,
    value_type=RateState,
    partitions=settings.PARTITIONS,
    help="usual line rate and gaps, per log source",
)

line_counts = app.Table(
    "source-line-counts",
    default=int,
    key_type=str,
    partitions=settings.PARTITIONS,
    help="lines per source and tumbling window",
).tumbling(settings.RATE_WINDOW, expires=timedelta(seconds=settings.RATE_WINDOW * settings.RATE_HISTORY))


def window_of(timestamp):
    """The window range (start, end) of ``line_counts`` that holds ``timestamp`` (Unix seconds)."""
    return line_counts.table.window.current(timestamp)


def lines_in(source, start):
    """Lines the source sent in the window starting at ``start`` (0 once expired)."""
    return line_counts[source][window_of(start + settings.RATE_WINDOW / 2)]


def add_lines(source, timestamp, count):
    rng = window_of(timestamp)
    line_counts[source][rng] = line_counts[source][rng] + count
