"""Model core: vocabulary, padding invariance, determinism, training, scores with reasons, bad input."""
import json
import math

import numpy as np
import pytest
import torch

from model import CheckpointError, Scorer, Vocabulary
from model import checkpoint as ckpt
from model.metrics import roc_auc
from model.train import train


def test_vocabulary_round_trip(tmp_path):
    vocab = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"], ["d"]], min_freq=1)
    assert vocab.itos[:2] == ["<pad>", "<unk>"]
    assert vocab.itos[2:] == ["a", "b", "c", "d"]  # by frequency, then alphabetically
    assert vocab.encode(["a", "zzz", "d"]) == [2, 1, 5]
    vocab.save(tmp_path / "v.json")
    again = Vocabulary.load(tmp_path / "v.json")
    assert again.itos == vocab.itos and again.counts == vocab.counts
    assert Vocabulary.build([["a", "b", "a"], ["c"]], min_freq=2).itos == ["<pad>", "<unk>", "a"]
    assert len(Vocabulary.build([["a", "b", "c", "d"]], max_size=4)) == 4


def test_vocabulary_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json.*clogs train"):
        Vocabulary.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        Vocabulary.load(tmp_path / "bad.json")


def test_padding_to_the_batch_gives_the_same_scores_as_fixed_padding(small_scorer, bgl):
    token_lists = [small_scorer.prepare(line)[0] for line, _ in bgl[:300:7]]
    tight = small_scorer.score_tokens_padded(token_lists)
    fixed = small_scorer.score_tokens_padded(token_lists, pad_to=small_scorer.max_len)
    assert len({len(t) for t in token_lists}) > 3  # lines of several lengths
    for a, b in zip(tight, fixed):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        assert a.top_tokens == b.top_tokens
    alone = [small_scorer.score_tokens_padded([t])[0].score for t in token_lists[:10]]
    assert alone == pytest.approx([r.score for r in tight[:10]], abs=1e-5)


def test_score_batch_is_deterministic_and_one_result_per_line(small_scorer, bgl):
    lines = [line for line, _ in bgl[:200]] + ["", "   ", "\x00\x01 weird"]
    small_scorer._cache.clear()
    first = small_scorer.score_batch(lines)
    second = small_scorer.score_batch(list(reversed(lines)))[::-1]
    assert len(first) == len(lines)
    assert [r.score for r in first] == pytest.approx([r.score for r in second], abs=1e-6)
    assert first[200].score == 0.0 and first[200].tokens == 0  # empty line: defined score


def test_training_is_reproducible_with_a_seed(bgl):
    lines = [line for line, bad in bgl[:300] if not bad]
    a = train(lines, epochs=2, seed=7, progress=False)
    b = train(lines, epochs=2, seed=7, progress=False)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    assert a.config["history"] == b.config["history"]


def test_loss_decreases_on_a_small_set(bgl):
    lines = [line for line, bad in bgl[:400] if not bad]
    scorer = train(lines, epochs=8, seed=1, progress=False, patience=10)
    losses = [h["train_loss"] for h in scorer.config["history"]]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] * 0.6, losses


def test_small_labelled_run_separates_anomalies(small_scorer, bgl):
    test = [(line, bad) for i, (line, bad) in enumerate(bgl) if i % 2 == 0]
    scores = [r.score for r in small_scorer.score_batch([line for line, _ in test])]
    auc = roc_auc([bad for _, bad in test], scores)
    assert auc > 0.9, auc


def test_unknown_tokens_raise_the_score_and_explain_it(small_scorer, bgl):
    normal = next(line for line, bad in bgl if not bad and "instruction cache parity error corrected" in line)
    novel = normal.replace("parity error corrected", "quantum flux capacitor melted")
    base, strange = small_scorer.score_batch([normal, novel])
    assert base.unknown == 0 and strange.unknown == 4
    assert strange.score > base.score + math.log(2)
    assert set(strange.top_tokens) <= {"quantum", "flux", "capacitor", "melted"}
    cal = small_scorer.calibration
    assert strange.score > cal["mean"] + 3 * cal["std"] > base.score


def test_bad_input_never_crashes(small_scorer):
    huge = "x " * 600_000  # 1.2 MB
    results = small_scorer.score_batch([huge, b"\xff\xfe broken \xc3", "", "ok line"])
    assert len(results) == 4
    assert results[0].truncated and results[0].tokens == small_scorer.max_len
    assert results[1].tokens == 3 and results[1].top_tokens[0] == "\ufffd\ufffd" and np.isfinite(results[1].score)
    assert results[2].tokens == 0


def test_checkpoint_round_trip_and_errors(tmp_path, small_scorer):
    ckpt.save(tmp_path, small_scorer.model, small_scorer.vocab, small_scorer.config)
    loaded = Scorer.from_checkpoint(tmp_path)
    line = "RAS KERNEL INFO instruction cache parity error corrected"
    assert loaded.score_line(line).score == pytest.approx(small_scorer.score_line(line).score, abs=1e-6)
    with pytest.raises(CheckpointError, match="not found.*clogs train"):
        Scorer.from_checkpoint(tmp_path / "nowhere")
    (tmp_path / "model.pth").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="model.pth cannot be loaded"):
        Scorer.from_checkpoint(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        Scorer.from_checkpoint(tmp_path)


def test_empty_training_set_is_a_clear_error():
    with pytest.raises(ValueError, match="empty training set"):
        train(["", "   "], epochs=1, progress=False)


def test_default_checkpoint_is_small_and_scores(default_scorer):
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "checkpoints"
    assert sum(p.stat().st_size for p in folder.iterdir()) < 5_000_000
    config = json.loads((folder / "config.json").read_text())
    assert {"mean", "std", "n"} <= set(config["calibration"])
    r = default_scorer.score_line("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186")
    assert r.unknown == 0 and r.score < config["calibration"]["mean"] + 3 * config["calibration"]["std"]


# Golden values against another CPU or BLAS build: tests/data/reference_scores.json holds them
# unrounded, and they are compared with a tolerance that float noise cannot reach.  The float32
# LSTMs and projection give other last bits on another CPU (kernel, vector width, reduction order):
# scoring the reference lines under ATEN_CPU_CAPABILITY=avx2/default, MKL_ENABLE_INSTRUCTIONS=SSE4_2,
# MKL_CBWR=COMPATIBLE or one thread moved scores by at most 6.6e-7 and a token's loss by at most
# 3.8e-6 (up to 1.4e-4 *relative* on the smallest losses, ~0.005: hence an absolute floor, not a
# relative tolerance alone).  A retrained or altered model moves scores and losses by more than 1e-2.
# GOLDEN_TOL (rel 1e-4, abs 1e-4) sits 25x above the noise and well under a real change.  The scorer
# rounds top_losses and novel penalties to 4 decimals (model/scoring.py), so those are compared with
# half that rounding step more; no value is rounded by the test.  Where two losses are that close, the
# order of their tokens is left open (same_ranking).  Rounded golden values compared with a tolerance
# of the rounding step failed on an AMD EPYC: a loss of 0.03125012 gave 0.0313 here, 0.0312 there.
GOLDEN_TOL = {"rel": 1e-4, "abs": 1e-4}
ROUNDED_TOL = {"rel": 1e-4, "abs": 1e-4 + 0.5e-4}


def golden(want, rounded=False):
    return pytest.approx(want, **(ROUNDED_TOL if rounded else GOLDEN_TOL))


def could_swap(a, b):
    """Two reference losses that float noise within GOLDEN_TOL, moving each, could put in either order."""
    return abs(a - b) <= 2 * max(GOLDEN_TOL["abs"], GOLDEN_TOL["rel"] * max(abs(a), abs(b)))


def same_ranking(got_tokens, want_tokens, want_losses, next_loss, novel):
    """top_tokens as in the reference, but known tokens whose losses could swap (could_swap) in either
    order; where the last ones could swap with the best token after them (``next_loss``), that token
    may take their place.  Never-seen tokens (``novel``) come first, by their penalty: a float64 of
    the checkpoint's counts, not of the float32 model, so their order (ties by first occurrence) is
    exact.  The losses themselves are compared apart, position by position."""
    if len(got_tokens) != len(want_tokens):
        return False
    start = 0
    while start < len(want_tokens):
        end = start + 1
        while (end < len(want_tokens) and want_tokens[end - 1] not in novel and want_tokens[end] not in novel
               and could_swap(want_losses[end - 1], want_losses[end])):
            end += 1
        open_end = (end == len(want_tokens) and next_loss is not None and want_tokens[-1] not in novel
                    and could_swap(want_losses[-1], next_loss))
        if not open_end and sorted(got_tokens[start:end]) != sorted(want_tokens[start:end]):
            return False
        start = end
    return True


@pytest.mark.parametrize("cache_size", [0, 100_000])
def test_scores_are_those_of_the_model_before_the_speed_work(cache_size):
    """Issue 11 made scoring faster (token-wise masking, cheaper bookkeeping) without changing a
    score: the shipped checkpoint gives what commit 5317082 gave on the same lines
    (tests/data/reference_scores.json: Loghub samples, BGL-like lines, empty, huge and odd lines),
    to float noise across CPUs and BLAS builds (GOLDEN_TOL)."""
    from dataclasses import asdict
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    reference = json.loads((root / "tests" / "data" / "reference_scores.json").read_text())
    scorer = Scorer.from_checkpoint(root / "checkpoints", cache_size=cache_size)
    if scorer.model_version != reference["model_version"]:
        pytest.fail(f"the shipped checkpoint is {scorer.model_version}, the reference was made with "
                    f"{reference['model_version']}: make tests/data/reference_scores.json again from the new checkpoint")
    lines = reference["lines"]
    results = [r for start in range(0, len(lines), 97) for r in scorer.score_batch(lines[start:start + 97])]
    assert len(results) == len(reference["results"])
    for line, got, want in zip(lines, results, reference["results"]):
        got, want = asdict(got), dict(want)
        assert got.pop("score") == golden(want.pop("score")), line
        assert got.pop("base") == golden(want.pop("base")), line
        want_losses, next_loss = want.pop("top_losses"), want.pop("next_loss")
        assert got.pop("top_losses") == golden(want_losses, rounded=True), line
        got_tokens, want_tokens = list(got.pop("top_tokens")), want.pop("top_tokens")
        got_novel, want_novel = [list(n) for n in got.pop("novel")], want.pop("novel")
        assert same_ranking(got_tokens, want_tokens, want_losses, next_loss, {t for t, _, _ in want_novel}), \
            (line, got_tokens, want_tokens)
        assert [(t, k) for t, _, k in got_novel] == [(t, k) for t, _, k in want_novel], line
        assert [p for _, p, _ in got_novel] == golden([p for _, p, _ in want_novel], rounded=True), line
        assert got == want, line   # tokens, unknown, truncated, pattern, level: exact


def test_bf16_precision_stays_within_its_documented_tolerance():
    """CLOGS_SCORER_PRECISION=bf16 computes the output projection in bfloat16: scores within 0.03 of
    fp32 (0.011 at most on the reference lines when measured), and a wrong name is refused by name."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    lines = json.loads((root / "tests" / "data" / "reference_scores.json").read_text())["lines"]
    exact = Scorer.from_checkpoint(root / "checkpoints", cache_size=0)
    fast = Scorer.from_checkpoint(root / "checkpoints", cache_size=0, precision="bf16")
    diffs = [abs(a.score - b.score) for a, b in zip(exact.score_batch(lines), fast.score_batch(lines))]
    assert max(diffs) < 0.03 and sorted(diffs)[len(diffs) // 2] < 0.003
    with pytest.raises(ValueError, match="CLOGS_SCORER_PRECISION"):
        Scorer.from_checkpoint(root / "checkpoints", precision="fp8")


def test_class_factored_output_is_a_proper_distribution_and_its_losses_match_it():
    """output_classes=C: -log P(class | h) - log P(token | class, h), with P summing to 1 over the
    whole vocabulary; the grouped computation gives the same losses as the formula, per position."""
    from torch.nn import functional as F

    from model.autoencoder import LSTMAutoencoder

    torch.manual_seed(0)
    model = LSTMAutoencoder(100, embed_dim=8, hidden_dim=16, latent_dim=8, output_classes=7)
    out = model.output
    assert (out.size, out.n_classes) == (15, 7) and [out.width(c) for c in range(7)] == [15] * 6 + [10]
    hidden, targets = torch.randn(60, 16), torch.randint(0, 100, (60,))
    log_class = F.log_softmax(out.classes(hidden), dim=1)
    full = torch.cat([log_class[:, c:c + 1] + F.log_softmax(out.words[c](hidden), dim=1) for c in range(7)], dim=1)
    assert full.shape == (60, 100)
    assert torch.allclose(full.exp().sum(dim=1), torch.ones(60), atol=1e-5)
    want = -full[torch.arange(60), targets]
    assert torch.allclose(out.losses(hidden, targets), want, atol=1e-5)
    ids = torch.randint(2, 100, (3, 6))
    ids[0, 4:] = 0
    losses = model.token_losses(ids, (ids != 0).sum(dim=1))
    assert losses.shape == (3, 6) and (losses[0, 4:] == 0).all() and (losses[:, :4] > 0).all()
    losses.sum().backward()
    assert all(layer.weight.grad is not None for layer in out.words if layer.out_features)


def test_a_class_factored_model_trains_saves_and_retrains_as_one(tmp_path, bgl):
    """`clogs train --output-classes C`: the checkpoint keeps its output type, a retrain (model/continual)
    keeps it too, and a model trained without it keeps its hyperparameters (and version) as before."""
    from model.continual import retrain

    lines = [line for line, bad in bgl[:400] if not bad]
    scorer = train(lines, epochs=4, seed=1, progress=False, output_classes=8, out_dir=tmp_path / "ck")
    assert scorer.model.hparams["output_classes"] == 8 and scorer.config["hyperparameters"]["output_classes"] == 8
    losses = [h["train_loss"] for h in scorer.config["history"]]
    assert losses[-1] < losses[0] * 0.7, losses
    loaded = Scorer.from_checkpoint(tmp_path / "ck")
    line = "RAS KERNEL INFO instruction cache parity error corrected"
    assert loaded.score_line(line).score == pytest.approx(scorer.score_line(line).score, abs=1e-6)
    child = retrain(lines[:100], loaded, epochs=1)
    assert child.model.hparams["output_classes"] == 8
    plain = train(lines[:50], epochs=1, seed=1, progress=False)
    assert "output_classes" not in plain.model.hparams and "output_classes" not in plain.config["hyperparameters"]
    with pytest.raises(ValueError, match="output_classes -1"):
        train(lines[:50], epochs=1, progress=False, output_classes=-1)


def test_scoring_in_several_chunks_gives_the_same_results_in_order(default_scorer, bgl):
    """A batch cut in chunks (sorted by length, each padded to its longest) gives the same results,
    in the same order, as one chunk."""
    lines = [line for line, _ in bgl[:300]] + ["", "zzqx unseen words here"]
    one = Scorer(default_scorer.model, default_scorer.vocab, default_scorer.normaliser, default_scorer.config,
                 cache_size=0, chunk_size=1000)
    many = Scorer(default_scorer.model, default_scorer.vocab, default_scorer.normaliser, default_scorer.config,
                  cache_size=0, chunk_size=16)
    want, got = one.score_batch(lines), many.score_batch(lines)
    assert len(got) == len(lines) and got[300].tokens == 0
    for a, b in zip(want, got):
        assert a.score == pytest.approx(b.score, abs=1e-5) and a.top_tokens == b.top_tokens
        assert (a.pattern, a.level, a.novel) == (b.pattern, b.level, b.novel)


def test_length_chunks_keep_lines_of_about_the_same_length_together():
    """A chunk ends where lengths pass 1.25x its first line's (from 32 lines on) or at the most allowed;
    the chunks cover every line once, in order."""
    from model.scoring import length_chunks

    lengths = [4] * 40 + [5] * 10 + [6] * 40 + [12] * 3
    chunks = list(length_chunks(lengths, 256))
    assert [(c.start, c.stop) for c in chunks] == [(0, 50), (50, 90), (90, 93)]   # 6 > 5 = 4 x 1.25; 12 > 7.5
    assert [(c.start, c.stop) for c in length_chunks([12] * 10 + [64] * 3, 256)] == [(0, 13)]  # under 32 lines: one
    assert [(c.start, c.stop) for c in length_chunks([7] * 100, 48)] == [(0, 48), (48, 96), (96, 100)]
    assert list(length_chunks([], 256)) == []


def test_score_batch_gives_the_caller_its_garbage_collector_back(default_scorer):
    """score_batch pauses cyclic collection for its batch and restores what the caller had."""
    import gc

    assert gc.isenabled()
    default_scorer.score_batch(["a line", "another line 42"])
    assert gc.isenabled()
    gc.disable()
    try:
        default_scorer.score_batch(["a line"])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_top_tokens_from_the_sorted_losses_match_the_general_rule():
    """The top tokens of a line -- each token at its largest loss, highest first, ties in order of
    first occurrence -- are the same from the chunk's sorted losses (no tie) and from _top_tokens."""
    import random

    from model.scoring import _top_in_order, _top_tokens, rank_positions

    def reference(tokens, losses, k=3):
        best = {}
        for token, loss in zip(tokens, losses):
            if loss > best.get(token, -1.0):
                best[token] = loss
        top = sorted(best.items(), key=lambda kv: -kv[1])[:k]
        return [t for t, _ in top], [round(loss, 4) for _, loss in top]

    rng = random.Random(3)
    rows = []
    for _ in range(5000):
        n = rng.randint(1, 20)
        tokens = [rng.choice("abcdef") for _ in range(n)]
        losses = [rng.choice((0.5, 1.0, 2.0)) if rng.random() < 0.3 else rng.random() * 5 for _ in range(n)]
        rows.append((tokens, losses))
    width = 23
    padded = torch.tensor([losses + [0.0] * (width - len(losses)) for _, losses in rows], dtype=torch.float32)
    lengths = torch.tensor([len(tokens) for tokens, _ in rows])
    order, tied = rank_positions(padded, lengths)
    checked = 0
    for (tokens, _), row, row_order, row_tied in zip(rows, padded.tolist(), order, tied):
        losses = row[:len(tokens)]
        want = reference(tokens, losses)
        assert _top_tokens(tokens, losses) == want
        if not row_tied:
            assert _top_in_order(tokens, losses, row_order) == want
            checked += 1
    assert 1000 < checked < 5000   # both kinds of rows were met
