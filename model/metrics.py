"""Detection metrics in plain numpy: ROC-AUC, PR-AUC (average precision), F1 at a threshold, best F1."""
import numpy as np


def roc_auc(labels, scores):
    """Probability that an anomaly outscores a normal line (ties count half)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_recall_points(labels, scores):
    """Precision and recall at every distinct threshold, highest threshold first."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(int(y.sum()), 1)
    return precision, recall, s[last]


def pr_auc(labels, scores):
    """Average precision: sum over thresholds of precision x recall increment."""
    if not np.any(labels):
        return float("nan")
    precision, recall, _ = precision_recall_points(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_f1(labels, scores):
    """(best F1 over all thresholds, the threshold reaching it)."""
    if not np.any(labels):
        return float("nan"), float("nan")
    precision, recall, thresholds = precision_recall_points(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    i = int(np.argmax(f1))
    return float(f1[i]), float(thresholds[i])


def at_threshold(labels, scores, threshold):
    """Precision, recall, F1 of `score > threshold`."""
    return of_decisions(labels, np.asarray(scores, dtype=float) > threshold)


def of_decisions(labels, flags):
    """Precision, recall, F1 of the given decisions (a threshold per line, as online)."""
    y = np.asarray(labels, dtype=bool)
    pred = np.asarray(flags, dtype=bool)
    tp = int((pred & y).sum())
    precision = tp / max(int(pred.sum()), 1)
    recall = tp / max(int(y.sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp,
            "fp": int((pred & ~y).sum()), "fn": int((~pred & y).sum())}
