"""The Faust App: broker, table store, web server and the topics that connect the agents.

Flow: log topic (raw JSON lines, key = source)
      -> agents.scoring   (micro-batches, model.Scorer off the event loop)
      -> scored topic     (one message per source and micro-batch, key = source)
      -> agents.threshold (Welford statistics per source in a Faust table; incidents; then bulk
                           into Elasticsearch, id = log topic-partition-offset, incidents by id)
      -> anomalies topic  (alerts)
agents.incidents: a timer's ticks (silence, rate windows) and operators' feedback, per source;
      the incidents they change -> results topic -> agents.sink (bulk into Elasticsearch).
Bad records go to the dead-letter topic with a reason.
"""
from pathlib import Path

import faust

from app import faust_fixes as _faust_fixes  # noqa: F401  (before any consumer exists: issue 9)
from app import settings
from app.kafka_security import faust_credentials
from app.trainer import trainer_topics
from app.webauth import application_options, warn_if_open
from tables.records import ScoredBatch

Path(settings.DATA_DIR).mkdir(parents=True, exist_ok=True)

app = faust.App(
    settings.APP_ID,
    broker=settings.BROKER,
    broker_credentials=faust_credentials(),
    store=settings.TABLE_STORE,
    datadir=settings.worker_datadir(),
    topic_partitions=settings.PARTITIONS,
    topic_replication_factor=1,
    key_serializer="raw",
    value_serializer="json",
    web_host=settings.WEB_HOST,
    web_port=settings.WEB_PORT,
    web_in_thread=False,
    web_application_options=application_options(),
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=1.0,
    broker_session_timeout=settings.SESSION_TIMEOUT,
    broker_heartbeat_interval=min(3.0, settings.SESSION_TIMEOUT / 4),
    producer_max_request_size=4_000_000,
    producer_linger=settings.PRODUCER_LINGER,
    producer_max_batch_size=settings.PRODUCER_BATCH_BYTES,
    stream_buffer_maxsize=256,   # messages of up to 512 lines wait per stream: bounds memory when one agent lags
    # Metadata at most 10 s old: a worker whose first assignment came from metadata that did not
    # list its topics yet ("Ignoring missing topic" on a broker that just made them) rebalances as
    # soon as they appear, instead of idling until the 5-minute default refresh (issue 9, run 21).
    consumer_metadata_max_age_ms=10_000,
    autodiscover=False,
    version=1,
)

# The log topic is created by `clogs topic` (Faust only declares its internal topics).
log_topic = app.topic(settings.TOPIC, key_type=bytes, value_type=bytes, value_serializer="raw",
                      partitions=settings.PARTITIONS)
deadletter_topic = app.topic(settings.DEADLETTER_TOPIC, key_type=bytes, value_serializer="json",
                             partitions=settings.PARTITIONS)
anomalies_topic = app.topic(settings.ANOMALIES_TOPIC, key_type=str, value_serializer="json",
                            partitions=settings.PARTITIONS)
# Keys are JSON-serialised like the table's changelog keys: the partition a source's lines
# land in is then the partition `@app.table_route` computes for /stats/{source}/.
TOPICS = settings.app_topics()
scored_topic = app.topic(TOPICS["scored"], internal=True, key_type=str, key_serializer="json",
                         value_type=ScoredBatch, partitions=settings.PARTITIONS)
# Scored batches (up to 512 lines each, decoded) that may wait for the threshold agent: Faust's
# 256 let a fast scoring side park about 130,000 decoded lines in the worker (its RSS reached
# 931-1,058 MB in the soak, 769 MB with 32; issue 11).  app.topic() takes no maxsize, the clones
# that the agent iterates copy the attribute.
scored_topic.maxsize = settings.SCORED_BUFFER
results_topic = app.topic(TOPICS["results"], internal=True, key_type=str, value_serializer="json",
                          partitions=settings.PARTITIONS)

# Incidents (agents/incidents.py): the timer's ticks (silence, closed windows) and operators' feedback,
# keyed by source like the scored topic, so they reach the worker that owns the source's tables.
ticks_topic = app.topic(TOPICS["ticks"], internal=True, key_type=str, key_serializer="json", value_serializer="json",
                        partitions=settings.PARTITIONS)
feedback_topic = app.topic(TOPICS["feedback"], internal=True, key_type=str, key_serializer="json",
                           value_serializer="json", partitions=settings.PARTITIONS)

# The slow path (app/trainer.py): sampled normal lines in, published checkpoints out.
reservoir_name, models_name = trainer_topics()
reservoir_topic = app.topic(reservoir_name, internal=True, key_type=str, key_serializer="raw", value_type=str,
                            value_serializer="raw", partitions=settings.PARTITIONS, compacting=True)
models_topic = app.topic(models_name, internal=True, key_serializer="raw", value_serializer="raw", partitions=1,
                         compacting=True)

# The model service loads the Scorer when the worker starts and swaps in newer checkpoints.
from agents.models import ModelService  # noqa: E402

models = app.service(ModelService(models_topic, reservoir_topic))


@app.task
async def check_web_exposure():
    warn_if_open()

# Faust's own wiring: importing these modules registers the tables, agents and pages.
from tables import stats as _stats  # noqa: E402,F401
from agents import scoring as _scoring, threshold as _threshold, incidents as _incidents, sink as _sink  # noqa: E402,F401,E501
from app import web as _web  # noqa: E402,F401
