"""Kafka housekeeping for the CLI: fail fast on an unreachable broker, ensure or recreate topics."""
import asyncio
import shutil
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from app import settings
from app.kafka_security import client_options, diagnose

FIX = ("start the local services with `scripts/services up` (or `make services`), "
       "or point CLOGS_BROKER / --broker at a running Kafka")


class BrokerUnreachable(RuntimeError):
    pass


async def admin_client(broker=None, timeout=10.0):
    bootstrap = settings.kafka_bootstrap(broker)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000),
                                **client_options())
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaConnectionError, KafkaError, asyncio.TimeoutError, OSError) as exc:
        await admin.close()
        raise await unreachable(bootstrap, exc) from None
    return admin


async def unreachable(bootstrap, exc):
    """The BrokerUnreachable for a failed start: why, in one line naming the setting to fix."""
    why = await diagnose(bootstrap)
    if why:
        return BrokerUnreachable(f"cannot use Kafka at {bootstrap}: {why}")
    return BrokerUnreachable(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}); {FIX}")


def app_topics(topic=None, app_id=None):
    """(topics the CLI creates, prefix of the topics the Faust app creates for itself)."""
    topic = topic or settings.TOPIC
    return [topic, f"{topic}-anomalies", f"{topic}-deadletter"], f"{app_id or settings.APP_ID}-"


def internal_topics(app_id=None, partitions=None):
    """{name: (partitions, configs)} of the topics between the worker's agents.  The worker would
    create them itself, but a worker that starts on a broker where they do not exist yet can be
    handed its first assignment before they appear ("Ignoring missing topic") and then idle until
    the next rebalance; made here first, they are there from the start."""
    partitions = partitions or settings.PARTITIONS
    names = settings.app_topics(app_id)
    compacted = {"cleanup.policy": "compact"}
    topics = {names["scored"]: (partitions, {}), names["results"]: (partitions, {}), names["ticks"]: (partitions, {}),
              names["feedback"]: (partitions, {}), names["reservoir"]: (partitions, compacted),
              names["models"]: (1, compacted)}
    # the tables' changelogs, as Faust would make them (tables/stats.py): a worker that makes them
    # itself on a busy broker can write to one before its metadata lists it (PartitionsMismatch)
    prefix = f"{app_id or settings.APP_ID}-"
    for table in ("source-stats", "source-memory", "incidents", "source-rate"):
        topics[f"{prefix}{table}-changelog"] = (partitions, compacted)
    window_ms = int(settings.RATE_WINDOW * settings.RATE_HISTORY * 1000)
    topics[f"{prefix}source-line-counts-changelog"] = (partitions, {"cleanup.policy": "compact,delete",
                                                                    "retention.ms": str(window_ms)})
    return topics


async def wait_until_listed(admin, wanted, timeout=30.0):
    """Until the broker's metadata lists every topic with its partitions: a topic is created before
    the broker's metadata shows it (seconds on a busy machine), and a worker started in between is
    assigned nothing for it."""
    deadline = asyncio.get_running_loop().time() + timeout
    missing = dict(wanted)
    while missing and asyncio.get_running_loop().time() < deadline:
        for topic in await admin.describe_topics(list(missing)):
            if topic.get("error_code", 1) == 0 and len(topic.get("partitions") or ()) >= missing.get(topic["topic"], 1):
                missing.pop(topic["topic"], None)
        if missing:
            await asyncio.sleep(0.5)
    return sorted(missing)


async def ensure_topics(broker=None, topic=None, app_id=None, partitions=None, recreate=False):
    """Create the log, anomalies and dead-letter topics and the app's topics between its agents if
    missing; with recreate, delete them and the app's internal topics (and the workers' local table
    state) first."""
    partitions = partitions or settings.PARTITIONS
    names, internal_prefix = app_topics(topic, app_id)
    admin = await admin_client(broker)
    try:
        existing = set(await admin.list_topics())
        if recreate:
            doomed = [t for t in existing if t in names or t.startswith(internal_prefix)]
            if doomed:
                await admin.delete_topics(doomed)
            for folder in Path(settings.DATA_DIR).glob(f"{app_id or settings.APP_ID}-*"):
                shutil.rmtree(folder, ignore_errors=True)
            existing -= set(doomed)
        created = []
        wanted = {name: (partitions, {}) for name in names}
        wanted.update(internal_topics(app_id, partitions))
        for name, (count, configs) in wanted.items():
            if name in existing:
                continue
            for attempt in range(60):  # a topic being deleted cannot be created again at once
                try:
                    await admin.create_topics([NewTopic(name, count, 1, topic_configs=configs)])
                    created.append(name)
                    break
                except TopicAlreadyExistsError:
                    if not recreate:
                        break
                    await asyncio.sleep(0.5)
        late = await wait_until_listed(admin, {name: count for name, (count, _) in wanted.items()})
        if late:
            raise BrokerUnreachable(f"Kafka created but does not list {', '.join(late)} after 30 s; try again")
        return created
    finally:
        await admin.close()
