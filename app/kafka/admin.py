"""Kafka housekeeping for the CLI: fail fast on an unreachable broker (naming the fix), ensure or
recreate the topics."""
import asyncio
import shutil

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from app.kafka.security import client_options, diagnose
from app.settings import TABLES, changelog_topic, internal_prefix, kafka_bootstrap, topics, worker_datadirs

FIX = ("start the local services with `scripts/services up` (or `make services`), "
       "or point CLOGS_BROKER / --broker at a running Kafka")


class BrokerUnreachable(RuntimeError):
    pass


async def admin_client(settings, timeout=10.0):
    bootstrap = kafka_bootstrap(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000),
                                **client_options(settings))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaConnectionError, KafkaError, asyncio.TimeoutError, OSError) as exc:
        await admin.close()
        raise await unreachable(settings, exc) from None
    return admin


async def start_client(settings, client, timeout=15.0):
    """Start an aiokafka producer or consumer made with ``client_options(settings)``; a broker that
    does not answer in time stops it and raises BrokerUnreachable naming the fix (fail fast)."""
    try:
        await asyncio.wait_for(client.start(), timeout)
    except Exception as exc:  # aiokafka raises several kinds when no broker answers
        await client.stop()
        raise await unreachable(settings, exc) from None
    return client


async def unreachable(settings, exc):
    """The BrokerUnreachable for a failed start: why, in one line naming the setting to fix."""
    bootstrap = kafka_bootstrap(settings)
    why = await diagnose(settings, bootstrap)
    if why:
        return BrokerUnreachable(f"cannot use Kafka at {bootstrap}: {why}")
    return BrokerUnreachable(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}); {FIX}")


def cli_topics(settings):
    """The topics ``clogs topic`` makes beside the app's internal ones: log, anomalies, dead letters."""
    names = topics(settings)
    return [names.log, names.anomalies, names.deadletter]


def internal_topics(settings):
    """{name: (partitions, configs)} of the topics between the worker's agents and of its tables'
    changelogs.  The worker would create them itself, but a worker that starts on a broker where
    they do not exist yet can be handed its first assignment before they appear ("Ignoring missing
    topic") or write to a changelog before its metadata lists it (PartitionsMismatch); made here
    first, they are there from the start."""
    partitions, names = settings.partitions, topics(settings)
    compacted = {"cleanup.policy": "compact"}
    wanted = {names.scored: (partitions, {}), names.results: (partitions, {}), names.ticks: (partitions, {}),
              names.feedback: (partitions, {}), names.notifications: (partitions, {}),
              names.reservoir: (partitions, compacted),
              names.models: (1, compacted)}
    window_ms = int(settings.rate_window * settings.rate_history * 1000)
    for table in TABLES:
        windowed = {"cleanup.policy": "compact,delete", "retention.ms": str(window_ms)}
        wanted[changelog_topic(settings, table)] = (partitions, windowed if table == "source-line-counts" else compacted)
    return wanted


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


async def ensure_topics(settings, recreate=False):
    """Create the log, anomalies and dead-letter topics and the app's internal topics if missing;
    with recreate, delete them (every topic of the app's prefix) and the workers' local table state
    first.  Returns the names created."""
    names, prefix = cli_topics(settings), internal_prefix(settings)
    admin = await admin_client(settings)
    try:
        existing = set(await admin.list_topics())
        if recreate:
            doomed = [t for t in existing if t in names or t.startswith(prefix)]
            if doomed:
                await admin.delete_topics(doomed)
            for folder in worker_datadirs(settings):
                shutil.rmtree(folder, ignore_errors=True)
            existing -= set(doomed)
        created = []
        wanted = {name: (settings.partitions, {}) for name in names}
        wanted.update(internal_topics(settings))
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
