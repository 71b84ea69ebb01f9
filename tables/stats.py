"""The changelog-backed per-source tables: score statistics (``Stats``) and learning memory
(``SourceMemory``), both keyed by source and partitioned like the scored topic, so a source's
state recovers after a restart and moves with its partition to another worker."""
from app import settings
from app.faust_app import app
from tables.records import SourceMemory, Stats

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
