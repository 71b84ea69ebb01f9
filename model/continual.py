"""The slow path: a new model from a reservoir of recent normal traffic.

The fast path (model/online.py) learns each source's patterns within a few lines; the model
itself learns slowly, by retraining.  Its training data is the reservoir: per source, a uniform
sample of at most CLOGS_RESERVOIR_LINES lines that were not flagged and whose pattern the
source had produced twice before (``model.online.judge_batch``).  ``retrain`` trains a fresh
model on it with the running checkpoint's hyper-parameters and normaliser, so every
retrain is reproducible from its sample (same lines, same seed: same weights, same
``model_version``), and records where it came from (``parent_version``, ``samples``).
Forgetting is the classic risk of retraining on recent traffic only: the parent's rehearsal
sample (``replay.txt``, 2,000 of its training lines) is trained on again each time, and the
child keeps a sample of its own training lines in turn.
It runs in the trainer process (app/trainer.py) or in ``clogs evaluate --online --retrain-every``,
never in a worker's event loop or scoring thread.
"""
import time

import torch

from .normalise import Normaliser
from .train import DEFAULTS, train

KEPT = ("batch_size", "lr", "max_len", "seed", "val_fraction", "embed_dim", "hidden_dim", "latent_dim", "min_freq",
        "max_vocab", "patience", "severity_prior", "output_classes")


def retrain(lines, parent, epochs=6, threads=1, out_dir=None):
    """A Scorer trained like its ``parent`` Scorer on ``lines`` (the reservoir) and on the parent's
    rehearsal sample, so what the parent knew is not forgotten, in ``epochs`` at most."""
    if threads:
        torch.set_num_threads(threads)
    parent_config = parent.config
    samples, lines = len(lines), list(lines) + list(parent.replay)
    hyper = {**DEFAULTS, **parent_config.get("hyperparameters", {})}
    rules = parent_config.get("normaliser_rules")
    normaliser = Normaliser([(r["name"], r["pattern"], r["token"]) for r in rules]) if rules else Normaliser()
    started = time.monotonic()
    scorer = train(sorted(lines), normaliser=normaliser, progress=False, device="cpu",
                   **{k: hyper[k] for k in KEPT}, epochs=epochs)
    scorer.config.update(parent_version=parent_config.get("model_version"), samples=samples,
                         rehearsed=len(parent.replay),
                         retrain_seconds=round(time.monotonic() - started, 1))
    scorer.precision = parent.precision   # scored as its parent was (CLOGS_SCORER_PRECISION)
    if out_dir is not None:
        scorer.save(out_dir)
    return scorer
