"""The continual trainer (the slow path): reservoir topic -> retrain -> models topic.

A separate process, never the worker's event loop or scoring thread: ``clogs trainer``, or
started by each worker itself (CLOGS_TRAINER=auto, the default; it exits with its worker).
Several trainers may run -- one per worker -- but only one leads: trainers join the consumer
group ``<app>-trainer`` on the one-partition models topic, and the one Kafka assigns that
partition trains and publishes.  If it dies, the group hands leadership to another.

The reservoir topic (``<app>-reservoir``, compacted, key ``source|slot``) *is* the training
sample: the threshold agents write each sampled line to its slot (model/online.py), compaction
keeps the newest line per slot, so the trainer rebuilds the whole sample by reading the topic
from the start.  Every CLOGS_RETRAIN_SECONDS the leader checks whether CLOGS_RETRAIN_MIN_NEW
samples arrived since its last model; if so it retrains (model/continual.py, one torch thread,
in a helper thread so its Kafka heartbeats go on) and publishes the checkpoint on the models
topic (``<app>-models``, compacted, key ``current``).  Workers swap it in without a restart
(agents/models.py).  Why a topic rather than a shared folder: workers on other machines (or in
other containers) see it without a shared file system, it survives restarts, and a checkpoint is
small (about 1 MB gzipped).
"""
import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app import settings
from app.kafka_admin import BrokerUnreachable, admin_client
from app.kafka_security import client_options
from model import CheckpointError, Scorer
from model.checkpoint import to_bytes
from model.continual import retrain

log = logging.getLogger("clogs.trainer")


def trainer_topics(app_id=None):
    """(reservoir topic, models topic) of an app (settings.app_topics)."""
    names = settings.app_topics(app_id)
    return names["reservoir"], names["models"]


class Trainer:
    def __init__(self, parent_pid=None):
        self.reservoir_topic, self.models_topic = trainer_topics()
        self.parent_pid = parent_pid
        self.samples = {}      # "source|slot" -> line
        self.new_samples = 0   # since the last model
        self.scorer = None     # the model the next retrain starts from (its hyper-parameters)
        self.published = 0

    def parent_alive(self):
        return self.parent_pid is None or os.getppid() == self.parent_pid

    async def run(self, once=False):
        bootstrap = settings.kafka_bootstrap()
        self.scorer = Scorer.from_checkpoint(settings.CHECKPOINT_DIR)
        await self.wait_for_topics()
        reader = AIOKafkaConsumer(self.reservoir_topic, bootstrap_servers=bootstrap, group_id=None, **client_options(),
                                  enable_auto_commit=False, auto_offset_reset="earliest",
                                  max_partition_fetch_bytes=8 << 20)  # no group: every partition, from the start
        leader = AIOKafkaConsumer(self.models_topic, bootstrap_servers=bootstrap, group_id=f"{settings.APP_ID}-trainer",
                                  **client_options(),
                                  enable_auto_commit=False, auto_offset_reset="latest",
                                  max_poll_interval_ms=3_600_000, session_timeout_ms=30_000)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 << 20, acks="all",
                                    **client_options())
        await reader.start()
        await leader.start()
        await producer.start()
        try:
            await self.adopt_published(bootstrap)
            last_check = time.monotonic()
            while self.parent_alive():
                batch = await reader.getmany(timeout_ms=1000, max_records=10_000)
                for records in batch.values():
                    for record in records:
                        if record.value is not None:
                            self.samples[record.key.decode("utf-8", "replace")] = record.value.decode("utf-8",
                                                                                                    "replace")
                            self.new_samples += 1
                await leader.getmany(timeout_ms=0)  # keeps the group membership (and so leadership) fresh
                due = once or time.monotonic() - last_check >= settings.RETRAIN_SECONDS
                if due and leader.assignment() and self.ready():
                    await self.retrain_and_publish(producer)
                    if once:
                        return
                if due:
                    last_check = time.monotonic()
        finally:
            await producer.stop()
            await leader.stop()
            await reader.stop()

    def ready(self):
        return self.new_samples >= settings.RETRAIN_MIN_NEW and len(self.samples) >= settings.RETRAIN_MIN_SAMPLES

    async def wait_for_topics(self, timeout=120):
        """The worker declares the reservoir and models topics; wait for them."""
        deadline = time.monotonic() + timeout
        while True:
            admin = await admin_client()
            try:
                topics = set(await admin.list_topics())
            finally:
                await admin.close()
            if {self.reservoir_topic, self.models_topic} <= topics:
                return
            if time.monotonic() > deadline:
                raise BrokerUnreachable(f"topics {self.reservoir_topic} and {self.models_topic} do not exist: start a "
                                        f"worker with learning on (`clogs consume`) first")
            await asyncio.sleep(2)

    async def adopt_published(self, bootstrap):
        """Start from the newest published model, if any (a restarted trainer continues the line)."""
        payload, _ = await latest_model(bootstrap, self.models_topic)
        if payload:
            try:
                self.scorer = Scorer.from_bytes(payload)
            except CheckpointError as exc:
                log.warning("ignoring the published model: %s", exc)

    async def retrain_and_publish(self, producer):
        lines = list(self.samples.values())
        taken = self.new_samples
        log.info("retraining on %d reservoir lines (%d new) from model %s", len(lines), taken,
                 self.scorer.model_version)
        folder = Path(settings.DATA_DIR) / "models" / settings.APP_ID
        try:
            scorer = await asyncio.get_running_loop().run_in_executor(
                None, lambda: retrain(lines, self.scorer, epochs=settings.RETRAIN_EPOCHS, threads=1))
        except (ValueError, RuntimeError) as exc:  # e.g. a reservoir without a single token left
            log.error("retraining failed, the current model stays: %s", exc)
            self.new_samples -= taken
            return
        out = scorer.save(folder / scorer.model_version)
        await producer.send_and_wait(self.models_topic, to_bytes(out), key=b"current",
                                     headers=[("model_version", scorer.model_version.encode())])
        self.scorer, self.new_samples, self.published = scorer, self.new_samples - taken, self.published + 1
        log.info("published model %s (%s s of training, %d samples) on %s", scorer.model_version,
                 scorer.config.get("retrain_seconds"), len(lines), self.models_topic)


async def latest_model(bootstrap, models_topic):
    """(the newest checkpoint published on the models topic or None, the offset after it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 << 20, fetch_max_bytes=16 << 20, **client_options())
    await consumer.start()
    try:
        partition = TopicPartition(models_topic, 0)
        consumer.assign([partition])
        end = (await consumer.end_offsets([partition]))[partition]
        if end == 0:
            return None, 0
        consumer.seek(partition, end - 1)
        batch = await consumer.getmany(partition, timeout_ms=10_000)
        records = batch.get(partition) or []
        return (records[-1].value if records else None), end
    finally:
        await consumer.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="clogs trainer", description=__doc__.split("\n")[0])
    parser.add_argument("--parent", type=int, default=None, help="exit when this process (a worker) is gone")
    parser.add_argument("--once", action="store_true", help="retrain once when ready, then exit")
    args = parser.parse_args(argv)
    os.nice(settings.TRAINER_NICE)  # training must never slow scoring down: the worker comes first
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [trainer %(process)d] %(message)s")
    try:
        asyncio.run(Trainer(args.parent).run(once=args.once))
    except (BrokerUnreachable, CheckpointError) as exc:
        sys.exit(f"clogs trainer: {exc}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
