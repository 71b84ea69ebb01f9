#!/usr/bin/env python3
"""Scoring speed of the default checkpoint on BGL-like lines: batched vs one line per call.

Prints lines/s of ``Scorer.score_batch`` (cache off, so every line is normalised and run
through the model), of the same with the LRU cache on (real traffic repeats a lot), and of
one-line-per-call scoring, measured in the same run, plus the peak memory of the process.
With ``--precision bf16`` it also prints how far the scores are from fp32's on the same lines.
Usage: python scripts/bench_speed.py [--lines 20000] [--batch 1024] [--threads 0] [--precision fp32|bf16]
"""
import argparse
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from app.settings import Settings  # noqa: E402
from model import Scorer  # noqa: E402
from model.data import split_label  # noqa: E402


def bgl_lines():
    """The 2,000 BGL_2k lines without their label field."""
    return [split_label(line)[1] for line in (ROOT / "data" / "loghub" / "BGL_2k.log").read_text().splitlines()]


def bgl_like(n, words, seed=0):
    """BGL lines, each with two words of the vocabulary appended, so that (almost) no two lines
    are the same after normalisation: neither the cache nor in-batch de-duplication helps."""
    base = bgl_lines()
    rng = random.Random(seed)
    return [f"{rng.choice(base)} {rng.choice(words)} {rng.choice(words)}" for _ in range(n)]


def rate(fn, lines, repeat=2):
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(lines)
        best = max(best, len(lines) / (time.perf_counter() - t0))
    return best


def main():
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--single", type=int, default=2000, help="lines for the one-per-call measurement")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--checkpoint-dir", default=str(ROOT / "checkpoints"))
    parser.add_argument("--precision", default=settings.scorer_precision, help="fp32 (exact) or bf16")
    parser.add_argument("--chunk-size", type=int, default=None, help="lines per forward pass (the Scorer's default)")
    args = parser.parse_args()
    options = {"threads": args.threads, "precision": args.precision}
    if args.chunk_size:
        options["chunk_size"] = args.chunk_size
    scorer = Scorer.from_checkpoint(args.checkpoint_dir, cache_size=0, **options)
    lines = bgl_like(args.lines, scorer.vocab.itos[2:])
    distinct = len({tuple(scorer.prepare(line)[0]) for line in lines})

    def batched(ls):
        for i in range(0, len(ls), args.batch):
            scorer.score_batch(ls[i:i + args.batch])

    def single(ls):
        for line in ls:
            scorer.score_batch([line])

    batched(lines[:2000])  # warm-up
    batch_rate = rate(batched, lines)
    single_rate = rate(single, lines[: args.single], repeat=1)
    cached = Scorer.from_checkpoint(args.checkpoint_dir, **options)
    real = bgl_lines() * 10
    cached_rate = rate(lambda ls: [cached.score_batch(ls[i:i + args.batch]) for i in range(0, len(ls), args.batch)], real)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, vocabulary {len(scorer.vocab)}, "
          f"max_len {scorer.max_len}, precision {scorer.precision}, chunks of {scorer.chunk_size}, output: "
          + (f"{classes} classes" if (classes := scorer.model.hparams.get("output_classes")) else "one softmax"))
    print(f"score_batch (batch {args.batch}, cache off, {args.lines} BGL-like lines, {distinct} distinct after "
          f"normalisation): {batch_rate:,.0f} lines/s")
    print(f"one line per call ({args.single} lines, same run):                 {single_rate:,.0f} lines/s")
    print(f"ratio batched / one-per-call:                                 {batch_rate / single_rate:.1f}x")
    print(f"score_batch with the LRU cache on real BGL_2k traffic x10:     {cached_rate:,.0f} lines/s")
    print(f"peak resident memory of this process:                          {peak_mb:,.0f} MB")
    if scorer.precision != "fp32":
        exact = Scorer.from_checkpoint(args.checkpoint_dir, cache_size=0, threads=args.threads)
        sample = lines[:5000]
        diffs = sorted(abs(a.score - b.score) for a, b in zip(scorer.score_batch(sample), exact.score_batch(sample)))
        print(f"|score - fp32 score| over {len(sample)} lines: max {diffs[-1]:.4f}, p99 {diffs[int(len(diffs) * .99)]:.4f}, "
              f"median {diffs[len(diffs) // 2]:.5f}")


if __name__ == "__main__":
    main()
