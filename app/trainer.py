"""The continual trainer (the slow path), a process of its own: the reservoir topic (a compacted sample
of each source's established normal lines, written by the threshold agents) -> retrain
(model/continual.py) -> the models topic, from which every worker swaps the new model in without a
restart (app/model_service.py).  Started by each worker (CLOGS_TRAINER=auto) or as ``clogs trainer``;
several may run, one leads (the consumer group ``<app>-trainer`` on the one-partition models topic).
"""
import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.kafka.admin import BrokerUnreachable, admin_client
from app.kafka.security import client_options
from app.settings import Settings, kafka_bootstrap, models_dir, topics, trainer_group
from model import CheckpointError, Scorer
from model.checkpoint import to_bytes
from model.continual import retrain

log = logging.getLogger("clogs.trainer")


class Trainer:
    def __init__(self, settings, parent_pid=None):
        self.settings = settings
        names = topics(settings)
        self.reservoir_topic, self.models_topic = names.reservoir, names.models
        self.parent_pid = parent_pid
        self.samples = {}      # "source|slot" -> line
        self.new_samples = 0   # since the last model
        self.scorer = None     # the model the next retrain starts from (its hyper-parameters)
        self.published = 0

    def parent_alive(self):
        return self.parent_pid is None or os.getppid() == self.parent_pid

    async def run(self, once=False):
        settings = self.settings
        bootstrap = kafka_bootstrap(settings)
        self.scorer = Scorer.from_checkpoint(settings.checkpoint_dir)
        await self.wait_for_topics()
        reader = AIOKafkaConsumer(self.reservoir_topic, bootstrap_servers=bootstrap, group_id=None, **client_options(settings),
                                  enable_auto_commit=False, auto_offset_reset="earliest",
                                  max_partition_fetch_bytes=8 << 20)  # no group: every partition, from the start
        leader = AIOKafkaConsumer(self.models_topic, bootstrap_servers=bootstrap, group_id=trainer_group(settings),
                                  **client_options(settings),
                                  enable_auto_commit=False, auto_offset_reset="latest",
                                  max_poll_interval_ms=3_600_000, session_timeout_ms=30_000)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 << 20, acks="all",
                                    **client_options(settings))
        await reader.start()
        await leader.start()
        await producer.start()
        try:
            await self.adopt_published()
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
                due = once or time.monotonic() - last_check >= settings.retrain_seconds
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
        return (self.new_samples >= self.settings.retrain_min_new
                and len(self.samples) >= self.settings.retrain_min_samples)

    async def wait_for_topics(self, timeout=120):
        """The worker declares the reservoir and models topics; wait for them."""
        deadline = time.monotonic() + timeout
        while True:
            admin = await admin_client(self.settings)
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

    async def adopt_published(self):
        """Start from the newest published model, if any (a restarted trainer continues the line)."""
        payload, _ = await latest_model(self.settings, self.models_topic)
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
        folder = models_dir(self.settings)
        try:
            scorer = await asyncio.get_running_loop().run_in_executor(
                None, lambda: retrain(lines, self.scorer, epochs=self.settings.retrain_epochs, threads=1))
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


async def latest_model(settings, models_topic):
    """(the newest checkpoint published on the models topic or None, the offset after it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap(settings), group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 << 20, fetch_max_bytes=16 << 20,
                                **client_options(settings))
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
    parser.add_argument("--broker", default=None, help="Kafka (CLOGS_BROKER)")
    args = parser.parse_args(argv)
    settings = Settings.from_env(broker=args.broker)
    os.nice(settings.trainer_nice)  # training must never slow scoring down: the worker comes first
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [trainer %(process)d] %(message)s")
    try:
        asyncio.run(Trainer(settings, args.parent).run(once=args.once))
    except (BrokerUnreachable, CheckpointError) as exc:
        sys.exit(f"clogs trainer: {exc}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
