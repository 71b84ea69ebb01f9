"""clogs' model: normalisation, vocabulary, LSTM autoencoder, training, evaluation, inference.

``from model import Scorer`` is the one inference path for the CLI, the worker and the benchmarks.
"""
from .checkpoint import CheckpointError
from .normalise import Normaliser
from .scoring import LineScore, Scorer
from .vocab import Vocabulary

__all__ = ["CheckpointError", "LineScore", "Normaliser", "Scorer", "Vocabulary"]
