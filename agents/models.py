"""The worker's model: a Faust service that loads the Scorer when the worker starts and swaps in
newer checkpoints while it runs.

``models.scorer`` is the Scorer the scoring agent uses for its next micro-batch.  At start-up it
is loaded from CLOGS_CHECKPOINT_DIR (a missing or corrupt checkpoint stops the worker with a
message naming the file and the fix).  With learning on, the service then follows the models
topic (``<app>-models``, one partition, compacted): the continual trainer (``clogs trainer``)
publishes each new checkpoint there, and every worker loads it off the event loop and swaps it
in between two micro-batches -- no restart.  The calibration of the last few versions is kept so
that lines scored by the previous model are judged on that model's scale.
"""
import asyncio
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import faust

from app import settings
from model import CheckpointError, Scorer

log = logging.getLogger(__name__)


class ModelService(faust.Service):
    """Owns the Scorer: loaded on start, replaced when the trainer publishes a new version."""

    def __init__(self, app, **kwargs):
        super().__init__(**kwargs)
        self.app = app
        self.scorer = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clogs-scorer")
        self.versions = OrderedDict()  # model_version -> (calibration, severity prior), newest last
        self.swaps = 0
        self.loaded = asyncio.Event()

    async def on_start(self):
        try:
            scorer = Scorer.from_checkpoint(settings.CHECKPOINT_DIR, device=settings.DEVICE,
                                            threads=settings.TORCH_THREADS)
        except CheckpointError as exc:
            log.critical("clogs worker: %s", exc)
            raise SystemExit(f"clogs worker: {exc}") from None
        self.use(scorer)
        self.loaded.set()
        log.info("model %s loaded from %s", scorer.model_version, settings.CHECKPOINT_DIR)

    async def ready(self):
        """Wait until the model is loaded (agents may start before the service)."""
        await self.loaded.wait()
        return self.scorer

    def use(self, scorer):
        self.scorer = scorer
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
        results = await asyncio.get_running_loop().run_in_executor(self.executor, scorer.score_batch, lines)
        return scorer.model_version, results

    async def swap_from_bytes(self, payload):
        """Load a published checkpoint off the event loop and make it the current model."""
        scorer = await asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: Scorer.from_bytes(payload, device=settings.DEVICE))
        if scorer.model_version != self.scorer.model_version:
            old = self.scorer.model_version
            self.use(scorer)
            self.swaps += 1
            log.info("model swapped without restart: %s -> %s", old, scorer.model_version)
        return scorer.model_version
