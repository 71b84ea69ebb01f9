"""Training: lines -> vocabulary + LSTM autoencoder + score calibration, saved as a checkpoint.

The calibration statistics (``config.json["calibration"]``) are what thresholds use before
a source has seen enough lines of its own.  They come from the training lines' scores with
one correction: a training line cannot contain an unknown token, so its plain score says
nothing about how often normal traffic brings one.  Each training line is therefore scored
as if it had been left out of the vocabulary: tokens that occur in no other training line
count as unknown (a leave-one-out estimate).  See docs/model.md.
"""
import hashlib
import json
import math
import random
import time
from collections import Counter

import numpy as np
import torch
from tqdm import tqdm

from . import checkpoint
from .autoencoder import LSTMAutoencoder
from .normalise import RULES_VERSION, Normaliser
from .scoring import BOS, Scorer
from .vocab import PAD_ID, Vocabulary

REPLAY_LINES = 2000  # training lines kept in the checkpoint, rehearsed by every retrain (model/continual.py)
DEFAULTS = dict(epochs=15, batch_size=64, lr=2e-3, max_len=64, seed=1, val_fraction=0.1, embed_dim=32,
                hidden_dim=64, latent_dim=32, min_freq=1, max_vocab=5000, patience=3, severity_prior=2.0,
                output_classes=0)


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device; use --device cpu or auto")
    return device


def batches(encoded, batch_size, shuffle, rng):
    order = list(range(len(encoded)))
    if shuffle:
        rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        rows = [encoded[i] for i in order[start:start + batch_size]]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        yield ids, torch.tensor([len(r) for r in rows])


def mean_loss(model, ids, lengths):
    losses = model.token_losses(ids, lengths)
    return losses.sum() / lengths.sum()


def train(lines, out_dir=None, normaliser=None, progress=True, **options):
    """Train on ``lines`` (str); returns a ready Scorer and writes a checkpoint if out_dir."""
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    device = pick_device(opts.pop("device", "cpu"))
    if opts["output_classes"] < 0:
        raise ValueError(f"output_classes {opts['output_classes']}: 0 (one softmax) or a number of classes")
    set_seed(opts["seed"])
    normaliser = normaliser or Normaliser()
    token_lists = [normaliser.tokenize(line)[: opts["max_len"]] for line in lines]
    token_lists = [t for t in token_lists if t]
    if not token_lists:
        raise ValueError("empty training set: no line with any token (check --input and --labels)")
    rng = random.Random(opts["seed"])
    order = list(range(len(token_lists)))
    rng.shuffle(order)
    n_val = int(len(order) * opts["val_fraction"]) if len(order) >= 20 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    train_tokens = [token_lists[i] for i in sorted(train_idx)]
    vocab = Vocabulary.build(train_tokens, min_freq=opts["min_freq"], max_size=opts["max_vocab"])
    model = LSTMAutoencoder(len(vocab), opts["embed_dim"], opts["hidden_dim"], opts["latent_dim"],
                            output_classes=opts["output_classes"]).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=opts["lr"])
    encoded_train = [vocab.encode(t) for t in train_tokens]
    encoded_val = [vocab.encode(token_lists[i]) for i in val_idx]
    history, best, best_state, stale = [], math.inf, None, 0
    started = time.time()
    bar = tqdm(range(1, opts["epochs"] + 1), desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        for ids, lengths in batches(encoded_train, opts["batch_size"], True, rng):
            ids, lengths = ids.to(device), lengths.to(device)
            loss = mean_loss(model, ids, lengths)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            total += loss.item() * len(ids)
            count += len(ids)
        model.eval()
        with torch.no_grad():
            val = [float(mean_loss(model, i.to(device), l.to(device))) * len(i)
                   for i, l in batches(encoded_val, 512, False, rng)]
        val_loss = sum(val) / len(encoded_val) if encoded_val else None
        history.append({"epoch": epoch, "train_loss": total / count, "val_loss": val_loss})
        bar.set_postfix(train=f"{total / count:.4f}", val="-" if val_loss is None else f"{val_loss:.4f}")
        if out_dir is not None:
            checkpoint.save(out_dir, model, vocab, None, epoch=epoch)
        watched = val_loss if val_loss is not None else total / count
        if watched < best - 1e-4:
            best, stale = watched, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= opts["patience"]:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    config = {
        "max_len": opts["max_len"],
        # output_classes only when set: a full-softmax model's hyperparameters (and version) as before
        "hyperparameters": {k: opts[k] for k in DEFAULTS if k != "output_classes" or opts[k]},
        "device": device,
        "normaliser_rules_version": RULES_VERSION,
        "normaliser_rules": normaliser.to_json(),
        "history": history,
        "train_lines": len(train_tokens),
        "val_lines": len(encoded_val),
        "vocab_size": len(vocab),
        "data_sha256": hashlib.sha256("\n".join(lines).encode("utf-8", "replace")).hexdigest(),
        "train_seconds": round(time.time() - started, 1),
    }
    config["novelty"] = novelty_statistics(train_tokens)
    scorer = Scorer(model.cpu(), vocab, normaliser, config)
    config["calibration"] = calibration(scorer, train_tokens)
    config["model_version"] = hashlib.sha256(json.dumps([config["data_sha256"], config["hyperparameters"],
                                                         RULES_VERSION], sort_keys=True).encode()).hexdigest()[:12]
    replay = sorted(random.Random(opts["seed"]).sample(lines, min(REPLAY_LINES, len(lines))))
    scorer = Scorer(model, vocab, normaliser, config, replay=replay)
    if out_dir is not None:
        checkpoint.save(out_dir, model, vocab, config, replay=replay)
    return scorer


def novelty_statistics(token_lists, alpha=2.0):
    """For each context token: [times seen before a token, times that token was a hapax].

    A hapax (a token in one training line only) is what a never-seen token looks like from
    inside the training data, so these counts estimate P(novel token | previous token).
    """
    counts = Counter(t for tokens in token_lists for t in tokens)
    line_counts = Counter()
    for tokens in token_lists:
        line_counts.update(set(tokens))
    contexts, novel_total, total = {}, 0, 0
    for tokens in token_lists:
        here = Counter(tokens)
        for i, token in enumerate(tokens):
            prev = tokens[i - 1] if i > 0 else BOS
            entry = contexts.setdefault(prev, [0, 0])
            entry[0] += 1
            is_novel = counts[token] <= here[token]
            entry[1] += is_novel
            novel_total += is_novel
            total += 1
    return {"contexts": contexts, "alpha": alpha, "rate": max(novel_total, 1) / max(total, 1)}


def loo_unknown_positions(token_lists, counts):
    """Per line, the positions of tokens that no other line contains."""
    out = []
    for tokens in token_lists:
        here = Counter(tokens)
        out.append([i for i, t in enumerate(tokens) if counts[t] <= here[t]])
    return out


def calibration(scorer, token_lists):
    """Statistics of the training lines' scores, with leave-one-out unknown tokens."""
    counts = Counter(t for tokens in token_lists for t in tokens)
    positions = loo_unknown_positions(token_lists, counts)
    loo = [len(p) for p in positions]
    base = scorer._score_tokens([tuple(t) for t in token_lists])
    scores = np.array([r.score + max([scorer.unknown_token_penalty(t, i, leave_out=True) for i in p], default=0.0)
                       for r, t, p in zip(base, token_lists, positions)])
    return {
        "n": int(len(scores)),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "median": float(np.median(scores)),
        "p99": float(np.quantile(scores, 0.99)),
        "loo_unknown_rate": float(np.mean(np.array(loo) > 0)),
        "method": "training scores, leave-one-out unknown tokens",
    }
