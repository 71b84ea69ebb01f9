#!/usr/bin/env python3
"""Detection quality on ../shared/eval/PROTOCOL.md (BGL_2k, seeds 1-5), with three classical baselines.

For each seed: shuffle the 2,000 line indices with numpy.random.RandomState(seed), train on the
normal lines of the first half, score the second half.  Reports ROC-AUC, PR-AUC, precision /
recall / F1 at the product's own threshold (mean + 3 x std of the checkpoint's calibration
statistics) and the best F1, beside token rarity, PCA and IsolationForest on the same splits.
Usage: python scripts/bench_quality.py [--seeds 1 2 3 4 5] [--output-classes C] [--out docs/bench_quality.json]
"""
import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model import metrics  # noqa: E402
from model.data import split_label  # noqa: E402
from model.normalise import Normaliser  # noqa: E402
from model.online import calibration_threshold  # noqa: E402
from model.train import train  # noqa: E402

DATA = ROOT / "data" / "loghub" / "BGL_2k.log"


def split(seed, n=2000):
    order = np.random.RandomState(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def baselines(train_tokens, test_tokens, seed):
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest

    counts = Counter(t for tokens in train_tokens for t in tokens)
    total = sum(counts.values())
    rarity = [np.mean([-np.log((counts.get(t, 0) + 1) / (total + len(counts) + 1)) for t in tokens] or [0.0])
              for tokens in test_tokens]
    index = {t: i for i, t in enumerate(counts)}

    def matrix(token_lists):
        m = np.zeros((len(token_lists), len(index) + 1))
        for row, tokens in enumerate(token_lists):
            for t in tokens:
                m[row, index.get(t, len(index))] += 1
        return m

    x_train, x_test = matrix(train_tokens), matrix(test_tokens)
    pca = PCA(n_components=10, random_state=seed).fit(x_train)
    pca_score = ((x_test - pca.inverse_transform(pca.transform(x_test))) ** 2).sum(axis=1)
    forest = IsolationForest(random_state=seed).fit(x_train)
    return {"token rarity": rarity, "PCA (10 comp.)": pca_score, "IsolationForest": -forest.score_samples(x_test)}


def plot(curves, path, factor):
    """ROC curves per seed, with the point the automatic threshold picks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for seed, y, scores, threshold in curves:
        order = np.argsort(-scores)
        tpr = np.r_[0, np.cumsum(y[order]) / y.sum()]
        fpr = np.r_[0, np.cumsum(~y[order]) / (~y).sum()]
        line, = ax.plot(fpr, tpr, label=f"seed {seed} (AUC {metrics.roc_auc(y, scores):.3f})")
        pred = scores > threshold
        ax.plot([(pred & ~y).sum() / (~y).sum()], [(pred & y).sum() / y.sum()], "o", color=line.get_color())
    ax.set_xlim(0, 0.2)
    ax.set_xlabel("false-positive rate (normal lines flagged)")
    ax.set_ylabel("recall (labelled alerts flagged)")
    ax.set_title(f"clogs on BGL_2k (PROTOCOL.md); dots: mean + {factor:g} x std")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--factor", type=float, default=3.0)
    parser.add_argument("--precision", default="fp32", help="the Scorer's precision at scoring time (fp32, bf16)")
    parser.add_argument("--output-classes", type=int, default=0,
                        help="train class-factored models (clogs train --output-classes); 0 = one softmax")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench_quality.json"))
    args = parser.parse_args()
    raw = DATA.read_text(errors="replace").splitlines()
    labels = np.array([split_label(line)[0] != "-" for line in raw])
    content = [split_label(line)[1] for line in raw]
    normaliser = Normaliser()
    rows, base_rows, curves = [], [], []
    for seed in args.seeds:
        tr, te = split(seed, len(raw))
        started = time.time()
        scorer = train([content[i] for i in tr if not labels[i]], seed=seed, progress=False,
                       output_classes=args.output_classes)
        scorer.precision = args.precision
        seconds = time.time() - started
        y = labels[te]
        scores = np.array([r.score for r in scorer.score_batch([content[i] for i in te])])
        threshold = calibration_threshold(scorer.calibration, args.factor)
        at = metrics.at_threshold(y, scores, threshold)
        best, _ = metrics.best_f1(y, scores)
        row = {"seed": seed, "roc_auc": metrics.roc_auc(y, scores), "pr_auc": metrics.pr_auc(y, scores),
               "threshold": threshold, "precision": at["precision"], "recall": at["recall"], "f1": at["f1"],
               "best_f1": best, "train_seconds": round(seconds, 1)}
        rows.append(row)
        curves.append((seed, y, scores, threshold))
        print(f"seed {seed}: ROC-AUC {row['roc_auc']:.3f}  PR-AUC {row['pr_auc']:.3f}  "
              f"F1@mean+{args.factor:g}std {row['f1']:.3f} (P {row['precision']:.2f} R {row['recall']:.2f}, "
              f"thr {threshold:.2f})  best F1 {best:.3f}  [{seconds:.0f} s]", flush=True)
        train_tokens = [normaliser.tokenize(content[i]) for i in tr if not labels[i]]
        test_tokens = [normaliser.tokenize(content[i]) for i in te]
        for name, s in baselines(train_tokens, test_tokens, seed).items():
            base_rows.append({"seed": seed, "baseline": name, "roc_auc": metrics.roc_auc(y, s),
                              "best_f1": metrics.best_f1(y, s)[0]})
    print("\n| metric | mean | min |\n|---|---|---|")
    summary = {}
    for key in ("roc_auc", "pr_auc", "f1", "best_f1", "precision", "recall"):
        values = [r[key] for r in rows]
        summary[key] = {"mean": float(np.mean(values)), "min": float(np.min(values))}
        print(f"| {key} | {np.mean(values):.3f} | {np.min(values):.3f} |")
    print("\n| baseline (same splits) | ROC-AUC mean | best F1 mean | clogs / baseline ROC-AUC |\n|---|---|---|---|")
    for name in dict.fromkeys(r["baseline"] for r in base_rows):
        auc = np.mean([r["roc_auc"] for r in base_rows if r["baseline"] == name])
        f1 = np.mean([r["best_f1"] for r in base_rows if r["baseline"] == name])
        print(f"| {name} | {auc:.3f} | {f1:.3f} | {summary['roc_auc']['mean'] / auc:.2f}x |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    plot(curves, Path(args.out).with_suffix(".png"), args.factor)
    Path(args.out).write_text(json.dumps({"seeds": rows, "summary": summary, "baselines": base_rows}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
