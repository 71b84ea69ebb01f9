"""Offline evaluation (the seed's notebook as a command): score a file, report, plot, write CSVs.

Threshold = mean + factor x std of the checkpoint's calibration statistics (the training
lines' scores with leave-one-out unknown tokens, see model/train.py), the same statistics a
streaming source uses during warm-up.  The scores of the evaluated file itself are reported
beside them (``file_mean``, ``file_std``) but do not set the threshold: an evaluated file
full of anomalies must not hide them by raising its own bar.
"""
import csv
import json
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import metrics
from .data import read_lines
from .online import calibration_threshold, judge_batch, new_state, scored_line
from .events import read_events

CHUNK = 2048


def score_file(scorer, path, labels="none", progress=True, assembler=None):
    """The file's events (model/multiline.py, as the worker assembles them), each scored once: rows
    with the event's first ``line_no``, its ``lines``, the ``line`` people read, ``label`` and
    ``result``.  A Loghub-labelled event is anomalous when one of its lines is."""
    rows, batch = [], []
    lines = tqdm(read_lines(path, labels), desc=f"scoring {Path(path).name}", unit=" lines", disable=not progress)
    for row in read_events(lines, assembler, source=Path(path).stem):
        batch.append(row)
        if len(batch) >= CHUNK:
            rows += scored_rows(scorer, batch)
            batch = []
    return rows + scored_rows(scorer, batch)


def scored_rows(scorer, events):
    """``read_events``' rows with the Scorer's result each (a stack trace keeps its own pattern key)."""
    rows = []
    for row, result in zip(events, scorer.score_batch([row["text"] for row in events]) if events else ()):
        if "pattern" in row["extras"]:
            result = replace(result, pattern=row["extras"]["pattern"])
        rows.append(dict(row, result=result))
    return rows


def evaluate_online(scorer, input_path, out_dir, policy, top=20, labels="none", progress=True, source=None,
                    retrain_every=0, retrain_epochs=6, retrain_min_samples=1000, assembler=None):
    """Prequential: each event of the file is decided, then learned, in file order, through
    ``model.online.judge_batch`` -- the worker's own code, the file being one source.

    With ``retrain_every`` N, the slow path runs too, synchronously: after every N lines a model
    is retrained on the reservoir (``model.continual.retrain``, as the trainer process does, and
    like it only from a reservoir of at least ``retrain_min_samples`` lines) and scores the lines
    that follow.  The worker retrains in the background, so its decisions match
    these only at the same model versions."""
    input_path = Path(input_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"input not found: {input_path}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = list(read_events(read_lines(input_path, labels), assembler, source=source or input_path.stem))
    stats, memory = new_state()
    reservoir, rows, docs, versions = {}, [], [], []
    step = retrain_every or len(items) or 1
    bar = tqdm(total=len(items), desc=f"online {input_path.name}", unit=" events", disable=not progress)
    for start in range(0, len(items), step):
        chunk = items[start:start + step]
        rows += scored_rows(scorer, chunk)
        lines = [online_line(source or input_path.stem, row, start + i, scorer.model_version)
                 for i, row in enumerate(rows[start:])]
        samples = []
        docs += judge_batch(lines, stats, memory, scorer.calibration, policy, scorer.prior_at_fatal, samples)
        reservoir.update(samples)
        bar.update(len(chunk))
        if retrain_every and start + step < len(items) and len(reservoir) >= retrain_min_samples:
            from .continual import retrain

            scorer = retrain(list(reservoir.values()), scorer, epochs=retrain_epochs, threads=0)
            versions.append({"after_line": start + step, "model_version": scorer.model_version,
                             "samples": len(reservoir)})
    bar.close()
    scores = np.array([d["anomaly_score"] for d in docs])
    flags = np.array([d["is_anomaly"] for d in docs], dtype=bool)
    for row, doc in zip(rows, docs):
        row["result"] = replace(row["result"], score=doc["anomaly_score"])
    result = {"n": len(rows), "mode": "online", "n_anomalies": int(flags.sum()), "factor": policy.factor,
              "policy": asdict(policy), "model_version": scorer.model_version, "input": str(input_path),
              "modes": dict(Counter(d["threshold_mode"] for d in docs)), "patterns": len(memory.patterns),
              "learned_tokens": len(memory.tokens), "threshold": docs[-1]["threshold_used"] if docs else None,
              "mean": stats.mean, "std": stats.std, "retrains": versions}
    if labels == "loghub":
        y = np.array([r["label"] != "-" for r in rows])
        decided = metrics.of_decisions(y, flags)
        result.update(precision=decided["precision"], recall=decided["recall"], f1=decided["f1"],
                      roc_auc=metrics.roc_auc(y, scores), pr_auc=metrics.pr_auc(y, scores),
                      n_labelled_anomalies=int(y.sum()))
        result["best_f1"], result["best_f1_threshold"] = metrics.best_f1(y, scores)
        half = len(rows) // 2
        result["roc_auc_second_half"] = metrics.roc_auc(y[half:], scores[half:])
    write_outputs(out, rows, flags, labels, result, scores, result["threshold"] or 0.0, input_path.name)
    ranked = sorted(range(len(rows)), key=lambda i: -scores[i])[:top]
    return result, [(rows[i], bool(flags[i])) for i in ranked]


def online_line(source, row, index, model_version):
    """A file line as the worker's scoring agent would hand it on (offset = line index)."""
    record = {"source": source, "line_no": row["line_no"], "line": row["line"], **row.get("extras", {})}
    return scored_line(record, row["result"], model_version, "file", 0, index)


def write_outputs(out, rows, flags, labels, result, scores, threshold, title):
    write_csv(out / "test_anomaly_results.csv", rows, flags, labels)
    write_csv(out / "anomalies_only.csv", [r for r, f in zip(rows, flags) if f], [True] * int(flags.sum()), labels)
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    plot_histogram(out / "score_hist.png", scores, threshold, title,
                   [r["label"] != "-" for r in rows] if labels == "loghub" else None)


def evaluate(scorer, input_path, out_dir, factor=3.0, top=20, labels="none", progress=True, assembler=None):
    input_path = Path(input_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"input not found: {input_path}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = score_file(scorer, input_path, labels, progress, assembler)
    scores = np.array([r["result"].score for r in rows])
    cal = scorer.calibration or {"mean": float(scores.mean()), "std": float(scores.std())}
    threshold = calibration_threshold(cal, factor)
    flags = scores > threshold
    result = {"n": len(rows), "mean": cal["mean"], "std": cal["std"], "threshold": threshold, "factor": factor,
              "n_anomalies": int(flags.sum()), "statistics": "checkpoint calibration",
              "file_mean": float(scores.mean()) if len(rows) else 0.0,
              "file_std": float(scores.std()) if len(rows) else 0.0,
              "model_version": scorer.model_version, "input": str(input_path)}
    if labels == "loghub":
        y = np.array([r["label"] != "-" for r in rows])
        result.update({k: v for k, v in metrics.at_threshold(y, scores, threshold).items()})
        result["roc_auc"] = metrics.roc_auc(y, scores)
        result["pr_auc"] = metrics.pr_auc(y, scores)
        result["best_f1"], result["best_f1_threshold"] = metrics.best_f1(y, scores)
        result["n_labelled_anomalies"] = int(y.sum())
    write_outputs(out, rows, flags, labels, result, scores, threshold, input_path.name)
    ranked = sorted(range(len(rows)), key=lambda i: -scores[i])[:top]
    return result, [(rows[i], bool(flags[i])) for i in ranked]


def write_csv(path, rows, flags, labels):
    columns = ["line_no", "lines", "score", "is_anomaly", "unknown", "top_tokens", "line"] + \
        (["label"] if labels != "none" else [])   # per event: its first line number and its lines
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row, flag in zip(rows, flags):
            r = row["result"]
            values = [row["line_no"], row.get("lines", 1), f"{r.score:.6f}", bool(flag), r.unknown,
                      " ".join(r.top_tokens), row["line"]]
            writer.writerow(values + ([row["label"]] if labels != "none" else []))


def plot_histogram(path, scores, threshold, title, anomalous=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(0, max(float(np.max(scores, initial=1.0)), threshold) * 1.05, 60)
    if anomalous is not None:
        a = np.asarray(anomalous, dtype=bool)
        ax.hist(scores[~a], bins=bins, alpha=0.7, label="normal (label -)")
        ax.hist(scores[a], bins=bins, alpha=0.7, label="anomalous (labelled)")
    else:
        ax.hist(scores, bins=bins, alpha=0.8, label="lines")
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("anomaly score (reconstruction loss + novelty)")
    ax.set_ylabel("lines (log scale)")
    ax.set_title(f"Score distribution: {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
