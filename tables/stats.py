"""The changelog-backed per-source tables, all partitioned like the scored topic (a source's state
recovers after a restart and moves with its partition to another worker):

* ``source-stats``: score statistics (``model.state.Stats``);
* ``source-memory``: the learning memory (``model.state.SourceMemory``);
* ``incidents``: incidents (model/incidents.py), one dict per incident id, written only while
  handling an event of the incident's source, so it lives in that source's partition;
* ``source-incidents``: the lifecycle book of a source's incidents (``model.state.SourceIncidents``):
  which may still resolve, which leave the table when;
* ``notifications-sent``: per incident, the last notification version delivered (it leaves with
  its incident, so a pattern that recurs later starts its notifications afresh);
* ``source-rate``: a source's usual rate and gaps (``model.state.RateState``, model/rates.py);
* ``assembled``: per source, the offset of the last log-topic record each partition gave to an
  event that was sent on (agents/scoring.py: after a restart, the records of events sent already are
  not assembled again -- not even the tail of one that began before the commit point);
* ``source-line-counts``: lines per source in tumbling windows of ``CLOGS_RATE_WINDOW`` seconds,
  expiring after ``CLOGS_RATE_HISTORY`` windows (a Faust windowed table).
"""
from datetime import timedelta

from app.faust_app import app, settings
from model.state import RateState, SourceIncidents, SourceMemory, Stats
from tables.records import BOOK, MEMORY, RATE, STATS


def state_table(name, state_class, codec, help):
    """A per-source table of one of the model's state dataclasses, stored with its codec."""
    table = app.Table(name, default=state_class, key_type=str, partitions=settings.partitions, help=help)
    table.value_serializer = codec   # Faust 0.15.3 takes a table's value codec only from a Record value_type
    return table


stats_table = state_table("source-stats", Stats, STATS, "Welford statistics of anomaly scores, per log source")
memory_table = state_table("source-memory", SourceMemory, MEMORY,
                           "patterns and out-of-vocabulary tokens each source has produced (online learning)")

incidents_table = app.Table(
    "incidents",
    key_type=str,
    partitions=settings.partitions,
    help="incidents by id (model/incidents.py), in their source's partition",
)

book_table = state_table("source-incidents", SourceIncidents, BOOK,
                         "per source: the incidents that may still resolve or leave the table (lifecycle)")
rate_table = state_table("source-rate", RateState, RATE, "usual line rate and gaps, per log source")
sent_table = app.Table("notifications-sent", key_type=str, partitions=settings.partitions,
                       help="per incident: the last notification version delivered (agents/notify.py)")

assembled_table = app.Table("assembled", default=dict, key_type=str, partitions=settings.partitions,
                            help="per source: log partition -> offset of the last record sent on in an event")

line_counts = app.Table(
    "source-line-counts",
    default=int,
    key_type=str,
    partitions=settings.partitions,
    help="lines per source and tumbling window",
).tumbling(settings.rate_window, expires=timedelta(seconds=settings.rate_window * settings.rate_history))


def window_of(timestamp):
    """The window range (start, end) of ``line_counts`` that holds ``timestamp`` (Unix seconds)."""
    return line_counts.table.window.current(timestamp)


def lines_in(source, start):
    """Lines the source sent in the window starting at ``start`` (0 once expired)."""
    return line_counts[source][window_of(start + settings.rate_window / 2)]


def add_lines(source, timestamp, count):
    rng = window_of(timestamp)
    line_counts[source][rng] = line_counts[source][rng] + count
