"""clogs' model: normalisation, vocabulary, LSTM autoencoder, training, evaluation, inference, and the
learning state and logic of each source.

``from model import Scorer`` is the one inference path for the CLI, the worker and the benchmarks.
The names below are imported on first use (PEP 562), so that the pure-Python parts (the normaliser,
event times, the learning state) can be imported without torch.
"""
import importlib

_EXPORTS = {"CheckpointError": "checkpoint", "Normaliser": "normalise", "LineScore": "scoring", "Scorer": "scoring",
            "Vocabulary": "vocab"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
