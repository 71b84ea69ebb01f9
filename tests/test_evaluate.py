"""Offline evaluation through the CLI: files, columns, metrics with labels."""
import csv
import json

from app.cli import main


def test_evaluate_writes_its_files_with_labels(tmp_path, small_scorer, bgl):
    from model import checkpoint as ckpt

    ckpt.save(tmp_path / "ckpt", small_scorer.model, small_scorer.vocab, small_scorer.config)
    sample = tmp_path / "bgl_sample.log"
    sample.write_text("\n".join(("APPREAD " if bad else "- ") + line for line, bad in bgl[:600]) + "\n")
    out = tmp_path / "out"
    main(["evaluate", "--input", str(sample), "--checkpoint-dir", str(tmp_path / "ckpt"), "--out-dir", str(out),
          "--labels", "loghub", "--top", "5"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"n", "mean", "std", "threshold", "factor", "n_anomalies", "precision", "recall", "f1", "roc_auc",
            "pr_auc", "best_f1"} <= set(metrics)
    assert metrics["n"] == 600 and metrics["factor"] == 3.0
    assert metrics["threshold"] == metrics["mean"] + 3.0 * metrics["std"]
    assert 0.8 < metrics["roc_auc"] <= 1.0
    with open(out / "test_anomaly_results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["line_no", "lines", "score", "is_anomaly", "unknown", "top_tokens", "line", "label"]
    assert len(rows) == 600 and rows[0]["line_no"] == "1" and rows[0]["label"] == "-"
    assert not rows[0]["line"].startswith("-")  # the label is stripped
    with open(out / "anomalies_only.csv") as handle:
        flagged = list(csv.DictReader(handle))
    assert len(flagged) == metrics["n_anomalies"] and all(r["is_anomaly"] == "True" for r in flagged)
    assert (out / "score_hist.png").read_bytes()[:4] == b"\x89PNG"


def test_train_cli_writes_a_checkpoint(tmp_path, bgl):
    sample = tmp_path / "logs" / "a" / "bgl.log"
    sample.parent.mkdir(parents=True)
    sample.write_text("\n".join(("KERNDTLB " if bad else "- ") + line for line, bad in bgl[:300]) + "\n")
    main(["train", "--input", str(tmp_path / "logs"), "--out", str(tmp_path / "ck"), "--epochs", "2",
          "--labels", "loghub", "--device", "cpu"])
    for name in ("model.pth", "vocab_full.json", "config.json", "autoencoder_epoch_1.pth", "autoencoder_epoch_2.pth"):
        assert (tmp_path / "ck" / name).is_file(), name
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["train_lines"] + config["val_lines"] == sum(1 for _, bad in bgl[:300] if not bad)
    assert len(config["data_sha256"]) == 64 and config["hyperparameters"]["epochs"] == 2
