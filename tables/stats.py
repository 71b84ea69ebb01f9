"""The changelog-backed table of per-source score statistics (``Stats`` by source)."""
from app import settings
from app.faust_app import app
from tables.records import Stats

stats_table = app.Table(
    "source-stats",
    default=Stats,
    key_type=str,
    value_type=Stats,
    partitions=settings.PARTITIONS,
    help="Welford statistics of anomaly scores, per log source",
)
