"""Kafka housekeeping for the CLI: fail fast on an unreachable broker, ensure or recreate topics."""
import asyncio
import shutil
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from app import settings

FIX = ("start the local services with `scripts/services up` (or `make services`), "
       "or point CLOGS_BROKER / --broker at a running Kafka")


class BrokerUnreachable(RuntimeError):
    pass


async def admin_client(broker=None, timeout=10.0):
    bootstrap = settings.kafka_bootstrap(broker)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaConnectionError, KafkaError, asyncio.TimeoutError, OSError) as exc:
        await admin.close()
        raise BrokerUnreachable(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}); {FIX}") from None
    return admin


def app_topics(topic=None, app_id=None):
    """(topics the CLI creates, prefix of the topics the Faust app creates for itself)."""
    topic = topic or settings.TOPIC
    return [topic, f"{topic}-anomalies", f"{topic}-deadletter"], f"{app_id or settings.APP_ID}-"


async def ensure_topics(broker=None, topic=None, app_id=None, partitions=None, recreate=False):
    """Create the log, anomalies and dead-letter topics if missing; with recreate, delete them and
    the app's internal topics (and the workers' local table state) first."""
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
        for name in names:
            if name in existing:
                continue
            for attempt in range(60):  # a topic being deleted cannot be created again at once
                try:
                    await admin.create_topics([NewTopic(name, partitions, 1)])
                    created.append(name)
                    break
                except TopicAlreadyExistsError:
                    if not recreate:
                        break
                    await asyncio.sleep(0.5)
        return created
    finally:
        await admin.close()
