"""The worker's model: a Faust service that loads the Scorer when the worker starts (a missing or
corrupt checkpoint stops it, naming the fix), scores micro-batches in its own thread, and swaps in
each model the trainer publishes on the models topic, without a restart.  It remembers the
calibration of the last few versions, so a line is judged on the scale of the model that scored it.
"""
import asyncio
import gc
import logging
import os
import subprocess
import sys
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka.security import client_options
from app.settings import ROOT, kafka_bootstrap
from app.trainer import latest_model
from model import CheckpointError, Scorer

log = logging.getLogger(__name__)


def tune_gc(threshold):
    """What is loaded by now (Faust, torch, the model) stays for the worker's life: move it out of
    the collector's way (gc.freeze), and collect the young generation less often (CLOGS_GC_THRESHOLD)."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(max(threshold, 1), max(middle, 20), old)


class ModelService(faust.Service):
    """Owns the Scorer: loaded on start, replaced when the trainer publishes a new version."""

    def __init__(self, settings, models_topic, reservoir_topic, metrics=None, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.metrics = settings, metrics
        self.models_topic, self.reservoir_topic = models_topic, reservoir_topic
        self.trainer = None
        self.followed_from = 0  # models-topic offset the follower starts at
        self.scorer = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clogs-scorer")
        self.versions = OrderedDict()  # model_version -> (calibration, severity prior), newest last
        self.swaps = 0
        self.loaded = asyncio.Event()

    async def on_start(self):
        settings = self.settings
        try:
            scorer = Scorer.from_checkpoint(settings.checkpoint_dir, device=settings.device,
                                            threads=settings.torch_threads, precision=settings.scorer_precision)
        except (CheckpointError, ValueError) as exc:
            log.critical("clogs worker: %s", exc)
            raise SystemExit(f"clogs worker: {exc}") from None
        self.use(scorer)
        log.info("model %s loaded from %s", scorer.model_version, settings.checkpoint_dir)
        tune_gc(settings.gc_threshold)
        if settings.learning:
            await self.models_topic.maybe_declare()
            await self.reservoir_topic.maybe_declare()
            payload, self.followed_from = await latest_model(settings, self.models_topic.get_topic_name())
            if payload:  # a restarted worker goes on with the newest published model
                await self.swap_from_bytes(payload)
            if settings.trainer == "auto":
                self.start_trainer()
        self.loaded.set()

    def start_trainer(self):
        self.trainer = subprocess.Popen([sys.executable, "-m", "app.trainer", "--parent", str(os.getpid())],
                                        cwd=ROOT, env={**os.environ, **self.settings.as_env()})

    @faust.Service.timer(30.0)
    async def keep_trainer_running(self):
        """A trainer that died is logged and started again (the slow path must not stop silently)."""
        if self.trainer is not None and self.trainer.poll() is not None and not self.should_stop:
            log.error("the trainer process exited with code %s; starting it again", self.trainer.returncode)
            self.start_trainer()

    async def on_stop(self):
        if self.trainer is not None and self.trainer.poll() is None:
            self.trainer.terminate()

    @faust.Service.task
    async def follow_published_models(self):
        """Swap in each checkpoint the trainer publishes, for as long as the worker runs."""
        await self.loaded.wait()
        if not self.settings.learning:
            return
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap(self.settings), group_id=None,
                                    enable_auto_commit=False, max_partition_fetch_bytes=16 << 20,
                                    fetch_max_bytes=16 << 20, **client_options(self.settings))
        await consumer.start()
        try:
            partition = TopicPartition(self.models_topic.get_topic_name(), 0)
            consumer.assign([partition])
            consumer.seek(partition, self.followed_from)
            while not self.should_stop:
                batch = await consumer.getmany(partition, timeout_ms=1000)
                for record in batch.get(partition, []):
                    try:
                        await self.swap_from_bytes(record.value)
                    except CheckpointError as exc:
                        log.error("published model at offset %d ignored: %s", record.offset, exc)
        finally:
            await consumer.stop()

    async def ready(self):
        """Wait until the model is loaded (agents may start before the service)."""
        await self.loaded.wait()
        return self.scorer

    def use(self, scorer):
        self.scorer = scorer
        if self.metrics is not None:
            self.metrics.model(scorer.model_version)
        self.versions[scorer.model_version] = (scorer.calibration, scorer.prior_at_fatal)
        self.versions.move_to_end(scorer.model_version)
        while len(self.versions) > 8:
            self.versions.popitem(last=False)

    def scale_of(self, model_version):
        """(calibration, severity prior) of the model that scored a line (the current one if unknown)."""
        return self.versions.get(model_version) or (self.scorer.calibration, self.scorer.prior_at_fatal)

    async def score(self, lines):
        """Score lines in the scorer's own thread, so the event loop keeps heartbeats and commits going."""
        scorer = self.scorer or await self.ready()
        started = time.perf_counter()
        results = await asyncio.get_running_loop().run_in_executor(self.executor, scorer.score_batch, lines)
        if self.metrics is not None:
            self.metrics.scoring_seconds.observe(time.perf_counter() - started)
            self.metrics.scored_lines.inc(len(lines))
        return scorer.model_version, results

    async def swap_from_bytes(self, payload):
        """Load a published checkpoint off the event loop and make it the current model."""
        scorer = await asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: Scorer.from_bytes(payload, device=self.settings.device,
                                                     precision=self.settings.scorer_precision))
        if scorer.model_version != self.scorer.model_version:
            old = self.scorer.model_version
            self.use(scorer)
            self.swaps += 1
            log.info("model swapped without restart: %s -> %s", old, scorer.model_version)
        return scorer.model_version
