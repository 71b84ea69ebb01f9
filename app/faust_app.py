"""The worker's Faust app: its settings (built once, from the CLOGS_* environment), the topics that
connect the agents, and the services the agents share (the model, the Elasticsearch writer, the
redactor).  Faust's autodiscovery registers the tables (tables/), agents (agents/) and pages
(app/web.py) when the worker starts (``faust -A app worker``); none of them is imported here.

Flow: log topic -> agents/scoring.py -> scored topic -> agents/threshold.py (tables, incidents,
Elasticsearch) -> anomalies topic; ticks and feedback -> agents/incidents.py -> results topic ->
agents/sink.py.  docs/architecture.md draws it.
"""
import weakref
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import faust
from faust.streams import _current_event

from app import faust_fixes
from app.kafka.security import faust_credentials
from app.model_service import ModelService
from app.outputs.elastic import Elastic
from app.outputs.metrics import Metrics
from app.outputs.notify import Delivery
from app.outputs.redaction import Redactor
from app.settings import Settings, topics, worker_datadir
from app.webauth import application_options, warn_if_open
from model.multiline import assembler_of
from model.notifications import routes_from
from tables.records import ScoredBatch

settings = Settings.from_env()
names = topics(settings)

app = faust.App(
    settings.app_id,
    broker=settings.broker,
    broker_credentials=faust_credentials(settings),
    store=settings.table_store,
    datadir=worker_datadir(settings),
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    key_serializer="raw",
    value_serializer="json",
    web_host=settings.web_host,
    web_port=settings.web_port,
    web_in_thread=False,
    web_application_options=application_options(settings.web_token),
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=1.0,
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=min(3.0, settings.session_timeout / 4),
    producer_max_request_size=4_000_000,
    producer_linger=settings.producer_linger,
    producer_max_batch_size=settings.producer_batch_bytes,
    stream_buffer_maxsize=256,   # messages of up to 512 lines wait per stream: bounds memory when one agent lags
    # Metadata at most 10 s old: a worker whose first assignment came from metadata that did not
    # list its topics yet ("Ignoring missing topic") rebalances as soon as they appear (issue 9).
    consumer_metadata_max_age_ms=10_000,
    autodiscover=["tables", "agents", "app.web"],
    origin="app",
    version=1,
)


@app.on_worker_init.connect
def prepare_worker(sender, **kwargs):
    """When a worker starts (before its consumer exists): Faust's fixes, and the folder that holds
    each worker's table state (Faust makes only the last level)."""
    faust_fixes.apply(settings.fetch_max_wait)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    try:
        notification_routes()   # a bad routes file stops the worker here, not every batch later
        assembler_of(settings)  # so does a bad multiline rules file (CLOGS_MULTILINE_RULES)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"clogs worker: {exc}") from None


# The log topic is created by `clogs topic` (Faust only declares its internal topics).
log_topic = app.topic(names.log, key_type=bytes, value_type=bytes, value_serializer="raw",
                      partitions=settings.partitions)
deadletter_topic = app.topic(names.deadletter, key_type=bytes, value_serializer="json", partitions=settings.partitions)
anomalies_topic = app.topic(names.anomalies, key_type=str, value_serializer="json", partitions=settings.partitions)
# Keys are JSON-serialised like the tables' changelog keys: the partition a source's lines land in
# is then the partition `@app.table_route` computes for /stats/{source}/.
scored_topic = app.topic(names.scored, internal=True, key_type=str, key_serializer="json", value_type=ScoredBatch,
                         partitions=settings.partitions)
# Scored batches (up to 512 lines each) that may wait for the threshold agent: Faust's 256 let a
# fast scoring side park about 130,000 decoded lines in the worker (issue 11).  app.topic() takes
# no maxsize; the clones that the agent iterates copy the attribute.
scored_topic.maxsize = settings.scored_buffer
results_topic = app.topic(names.results, internal=True, key_type=str, value_serializer="json",
                          partitions=settings.partitions)
# The timer's ticks and operators' feedback, keyed by source like the scored topic, so they reach
# the worker that owns the source's tables.
ticks_topic = app.topic(names.ticks, internal=True, key_type=str, key_serializer="json", value_serializer="json",
                        partitions=settings.partitions)
feedback_topic = app.topic(names.feedback, internal=True, key_type=str, key_serializer="json",
                           value_serializer="json", partitions=settings.partitions)
# The slow path (app/trainer.py): sampled normal lines in, published checkpoints out.
reservoir_topic = app.topic(names.reservoir, internal=True, key_type=str, key_serializer="raw", value_type=str,
                            value_serializer="raw", partitions=settings.partitions, compacting=True)
models_topic = app.topic(names.models, internal=True, key_serializer="raw", value_serializer="raw", partitions=1,
                         compacting=True)
# Incident changes to tell (model/notifications.py), keyed by source: agents/notify.py delivers them.
notifications_topic = app.topic(names.notifications, internal=True, key_type=str, key_serializer="json",
                                value_serializer="json", partitions=settings.partitions)



@cache
def metrics():
    """The worker's metrics (GET /metrics, app/web.py)."""
    return Metrics(settings.metrics_sources)


# The model service loads the Scorer when the worker starts and swaps in newer checkpoints.
models = app.service(ModelService(settings, models_topic, reservoir_topic, metrics=metrics()))


@cache
def redactor():
    """The redactor of what leaves the worker (its rules file is read on first use)."""
    return Redactor.from_settings(settings)


@cache
def elastic():
    """The worker's Elasticsearch writer (made on first use, by the agent or page that needs it)."""
    return Elastic(settings, metrics=metrics())


@cache
def notification_routes():
    """The routes of the settings and of CLOGS_NOTIFY_ROUTES (read on first use)."""
    return routes_from(settings)


@cache
def delivery():
    """The notifier's HTTP delivery (its session is opened on the first message)."""
    return Delivery(settings, metrics())


@app.task
async def check_web_exposure():
    warn_if_open(settings)


def leave_unacked(messages):
    """Stop without acking ``messages`` (app/faust_fixes.py ``leave_unacked``)."""
    faust_fixes.leave_unacked(app, messages)


@contextmanager
def handling(event):
    """Make ``event`` Faust's current event in this task: a table write goes to the changelog
    partition of the current event, and ``take_events`` hands its list over without one."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
