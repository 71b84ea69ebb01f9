"""Checkpoint folder layout and loading: model.pth, vocab_full.json, config.json.

Every loading error names the file and the fix, because a worker that cannot find its
model must fail fast and say what to do.
"""
import io
import json
import tarfile
from pathlib import Path

import torch

from .autoencoder import LSTMAutoencoder
from .normalise import Normaliser
from .vocab import Vocabulary

MODEL_FILE, VOCAB_FILE, CONFIG_FILE = "model.pth", "vocab_full.json", "config.json"
REPLAY_FILE = "replay.txt"  # optional: a sample of the training lines, rehearsed by every retrain
FIX = ("train one with `clogs train --input LOGS --out DIR`, or set CLOGS_CHECKPOINT_DIR / "
       "--checkpoint-dir to a folder holding model.pth, vocab_full.json and config.json "
       "(the repository ships one in checkpoints/)")


class CheckpointError(RuntimeError):
    pass


def save(out_dir, model, vocab, config, epoch=None, replay=None):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {"state_dict": model.state_dict(), "hparams": model.hparams}
    if epoch is not None:
        torch.save(state, out / f"autoencoder_epoch_{epoch}.pth")
        return
    torch.save(state, out / MODEL_FILE)
    vocab.save(out / VOCAB_FILE)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
    if replay:
        (out / REPLAY_FILE).write_text("".join(line.replace("\n", " ") + "\n" for line in replay))


def load_replay(checkpoint_dir):
    """The checkpoint's rehearsal sample (a list of lines; empty for checkpoints without one)."""
    path = Path(checkpoint_dir) / REPLAY_FILE
    return path.read_text(errors="replace").splitlines() if path.is_file() else []


def load(checkpoint_dir, device="cpu"):
    """Returns (model, vocab, normaliser, config)."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}; {FIX}")
    for name in (MODEL_FILE, VOCAB_FILE, CONFIG_FILE):
        if not (folder / name).is_file():
            raise CheckpointError(f"checkpoint file missing: {folder / name}; {FIX}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint config {folder / CONFIG_FILE} is corrupt ({exc}); {FIX}") from None
    try:
        vocab = Vocabulary.load(folder / VOCAB_FILE)
    except (ValueError, FileNotFoundError) as exc:
        raise CheckpointError(str(exc)) from None
    try:
        state = torch.load(folder / MODEL_FILE, map_location=device, weights_only=True)
        model = LSTMAutoencoder(**state["hparams"])
        model.load_state_dict(state["state_dict"])
    except Exception as exc:  # torch raises many kinds for a truncated or foreign file
        raise CheckpointError(f"checkpoint model {folder / MODEL_FILE} cannot be loaded ({type(exc).__name__}: "
                              f"{str(exc)[:200]}); {FIX}") from None
    if model.hparams["vocab_size"] != len(vocab):
        raise CheckpointError(f"{folder / MODEL_FILE} expects {model.hparams['vocab_size']} tokens but "
                              f"{folder / VOCAB_FILE} has {len(vocab)}: they come from different trainings; {FIX}")
    normaliser = Normaliser([(r["name"], r["pattern"], r["token"]) for r in config["normaliser_rules"]]) \
        if "normaliser_rules" in config else Normaliser()
    model.to(device).eval()
    return model, vocab, normaliser, config


def to_bytes(checkpoint_dir):
    """The checkpoint's files as one gzipped tar (what the trainer publishes on the models topic)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in (MODEL_FILE, VOCAB_FILE, CONFIG_FILE, REPLAY_FILE):
            if name != REPLAY_FILE or (Path(checkpoint_dir) / name).is_file():
                tar.add(Path(checkpoint_dir) / name, arcname=name)
    return buffer.getvalue()


def unpack(payload, folder):
    """Write a ``to_bytes`` payload into folder (only the checkpoint's own files are taken)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
            for name in (MODEL_FILE, VOCAB_FILE, CONFIG_FILE):
                (folder / name).write_bytes(tar.extractfile(name).read())
            if REPLAY_FILE in tar.getnames():
                (folder / REPLAY_FILE).write_bytes(tar.extractfile(REPLAY_FILE).read())
    except (tarfile.TarError, KeyError, AttributeError, OSError, EOFError) as exc:
        raise CheckpointError(f"published checkpoint cannot be read ({type(exc).__name__}: {exc})") from None
    return folder
