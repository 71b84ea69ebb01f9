#!/usr/bin/env python3
"""Reproduces the shipped default checkpoint (checkpoints/) from the Loghub samples in data/loghub/.

The checkpoint includes replay.txt, its rehearsal sample (2,000 training lines) for retraining.

Trains on the normal lines of all six shipped files (BGL's labelled alerts are left out),
seed 1, then removes the per-epoch files so the folder stays small (< 5 MB).
Usage: python scripts/train_default_checkpoint.py [--out checkpoints] [--epochs 15] [--output-classes C]
(``--output-classes 32 --out out/checkpoint-32``: the same training with a class-factored output,
model fa54cb52b951, the checkpoint of the speed figures in docs/figures.md; both retrain bit for bit.)
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.data import load_lines  # noqa: E402
from model.train import train  # noqa: E402

FILES = ["BGL_2k.log", "HDFS_2k.log", "OpenSSH_2k.log", "Zookeeper_2k.log", "Apache_2k.log", "Linux_2k.log"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "checkpoints"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output-classes", type=int, default=0, help="0: one softmax (the shipped checkpoint)")
    args = parser.parse_args()
    lines = []
    for name in FILES:
        labels = "loghub" if name.startswith("BGL") else "none"
        lines += [line for line, _ in load_lines([ROOT / "data" / "loghub" / name], labels=labels, normal_only=True)]
    print(f"training the default checkpoint on {len(lines)} normal lines from {len(FILES)} Loghub samples")
    scorer = train(lines, out_dir=args.out, epochs=args.epochs, seed=args.seed, max_vocab=3000,
                   output_classes=args.output_classes)
    for stale in Path(args.out).glob("autoencoder_epoch_*.pth"):
        stale.unlink()
    size = sum(p.stat().st_size for p in Path(args.out).iterdir()) / 1e6
    cal = scorer.calibration
    print(f"wrote {args.out}: vocabulary {len(scorer.vocab)}, {size:.2f} MB, calibration mean {cal['mean']:.3f} "
          f"std {cal['std']:.3f}, model_version {scorer.model_version}")


if __name__ == "__main__":
    main()
