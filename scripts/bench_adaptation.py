#!/usr/bin/env python3
"""Online adaptation: protocols B, C and D of ../shared/eval/PROTOCOL.md, and the Drain3 peer.

D  cold start: the sixteen Loghub samples as sixteen sources (labels stripped), each with four
   failure lines of our own writing planted in its second half, judged with the default
   checkpoint and default settings -- offline with ``clogs evaluate --online`` (the worker's own
   ``judge_batch``) and, with ``--stream``, through Kafka -> worker -> Elasticsearch, paced.
   Figures: share of the second halves' normal lines flagged, recall of the planted lines, per
   source and overall; beside them Drain3 (one template miner per source, default config,
   alert when a line creates a new cluster) on the same lines.
C  online BGL: ``evaluate --online`` over BGL_2k in file order from a checkpoint that never saw
   BGL (trained here on the other five shipped samples): ROC-AUC, F1 at the product's decisions.
B  offline chronological: train on the normal lines of the first 50/60/70 % of BGL_2k, score the
   rest with the static model: ROC-AUC, best F1, F1 at the automatic threshold.
Usage: python scripts/bench_adaptation.py [--stream] [--output-classes C --checkpoint-dir DIR] [--out out/bench_adaptation]
"""
import argparse
import csv
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.settings import Settings  # noqa: E402
from model import Scorer, metrics  # noqa: E402
from model.data import read_lines, split_label  # noqa: E402
from model.evaluate import evaluate_online  # noqa: E402
from model.online import Policy, calibration_threshold  # noqa: E402

LOGHUB = (ROOT.parent / "shared" / "datasets" / "loghub") if (ROOT.parent / "shared").is_dir() \
    else ROOT / "data" / "loghub"
LABELLED = ("BGL", "Thunderbird")   # first field is a label, stripped before anything sees the line
FAILURES = [
    "ERROR disk /dev/sda1 is full: write failed, No space left on device",
    "FATAL out of memory: killed process 4242 (java) total-vm:8123456kB",
    "kernel panic - not syncing: Fatal exception in interrupt handler",
    "Segmentation fault (core dumped) in worker thread 7, restarting service",
    "CRITICAL database connection pool exhausted: 0 of 50 connections available",
    "java.lang.OutOfMemoryError: Java heap space while allocating buffer",
    "TLS handshake failed with upstream: certificate has expired",
    "replication stalled: follower lag exceeded 300 seconds, quorum lost",
    "watchdog timeout: heartbeat missed from controller, fencing node",
    "checksum mismatch on block read, data corruption suspected on volume",
    "unhandled exception in request handler: NullPointerException at dispatcher",
    "filesystem mounted read-only after I/O error on journal",
]
PLANTS_PER_SOURCE = 4


def source_lines(path):
    """[(line, kind)] with kind 'normal' or 'alert' (Loghub label), the label stripped."""
    out = []
    labelled = path.name.startswith(LABELLED)
    for _, line, _ in read_lines(path):
        if labelled:
            label, line = split_label(line)
            out.append((line, "normal" if label == "-" else "alert"))
        else:
            out.append((line, "normal"))
    return out


def failure_in_format(previous, text):
    """A planted failure written like its neighbours: the previous line's leading fields that hold
    digits (timestamps, ids, pids: at most four) and then the failure's text."""
    head = []
    for token in previous.split()[:4]:
        if not re.search(r"\d", token):
            break
        head.append(token)
    return " ".join(head + [text])


def planted_sources(seed=0):
    """{source: [(line, kind)]} for the sixteen samples, four failures planted in each second half."""
    sources = {}
    for i, path in enumerate(sorted(LOGHUB.glob("*_2k.log"))):
        lines = source_lines(path)
        rng = random.Random(seed * 1000 + i)
        half = len(lines) // 2
        for position, text in zip(sorted(rng.sample(range(half + 1, len(lines)), PLANTS_PER_SOURCE), reverse=True),
                                  rng.sample(FAILURES, PLANTS_PER_SOURCE)):
            lines.insert(position, (failure_in_format(lines[position - 1][0], text), "planted"))
        sources[path.name.split("_")[0]] = lines
    return sources


def write_sources(sources, base):
    """base/log-<source>/<source>.txt, the layout `clogs ingest` reads."""
    for name, lines in sources.items():
        folder = Path(base) / f"log-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text("".join(line + "\n" for line, _ in lines))


def second_half_mask(kinds):
    """True for lines in the second half of the original sample (plants do not count)."""
    mask, seen, total = [], 0, sum(k != "planted" for k in kinds)
    for kind in kinds:
        mask.append(seen >= total // 2)
        seen += kind != "planted"
    return mask


def cold_start_figures(sources, flags_by_source):
    """Per source and overall: flagged share of the second halves' normal lines, planted recall."""
    rows, normal_total, normal_flagged, planted_total, planted_hit = {}, 0, 0, 0, 0
    for name, lines in sources.items():
        kinds = [k for _, k in lines]
        flags = flags_by_source[name]
        second = second_half_mask(kinds)
        normal = [f for f, k, s in zip(flags, kinds, second) if k == "normal" and s]
        planted = [f for f, k in zip(flags, kinds) if k == "planted"]
        rows[name] = {"flagged_normal": sum(normal) / len(normal), "planted_recall": sum(planted) / len(planted),
                      "normal_lines": len(normal), "planted": len(planted)}
        normal_total += len(normal)
        normal_flagged += sum(normal)
        planted_total += len(planted)
        planted_hit += sum(planted)
    rows["overall"] = {"flagged_normal": normal_flagged / normal_total, "planted_recall": planted_hit / planted_total,
                       "normal_lines": normal_total, "planted": planted_total}
    return rows


def drain3_flags(sources):
    """The peer: one Drain3 miner per source (default config), alert on a new cluster."""
    import logging

    from drain3 import TemplateMiner

    logging.getLogger("drain3").setLevel(logging.WARNING)
    out = {}
    for name, lines in sources.items():
        miner = TemplateMiner()
        out[name] = [miner.add_log_message(line)["change_type"] == "cluster_created" for line, _ in lines]
    return out


def offline_flags(scorer, sources, base, policy, out):
    flags, seconds = {}, time.monotonic()
    for name in sources:
        result, _ = evaluate_online(scorer, Path(base) / f"log-{name}" / f"{name}.txt", Path(out) / "online" / name,
                                    policy, progress=False, source=f"log-{name}")
        with open(Path(out) / "online" / name / "test_anomaly_results.csv", newline="") as handle:
            # one row per event: its flag holds for each of its lines (a planted exception line under a
            # line that announces an error joins it, as it would in a service's log)
            flags[name] = [row["is_anomaly"] == "True" for row in csv.DictReader(handle)
                           for _ in range(int(row["lines"]))]
    return flags, time.monotonic() - seconds


def print_cold_start(title, figures, peer=None):
    print(f"\n{title}")
    print(f"| source | flagged normal (2nd half) | planted recall |" + (" Drain3 flagged | Drain3 recall |" if peer else ""))
    print("|---|---|---|" + ("---|---|" if peer else ""))
    for name, row in figures.items():
        extra = f" {peer[name]['flagged_normal'] * 100:.1f} % | {peer[name]['planted_recall']:.2f} |" if peer else ""
        print(f"| {name} | {row['flagged_normal'] * 100:.1f} % | {row['planted_recall']:.2f} |{extra}")


def stream_flags(settings, sources, base, seconds, env):
    """Protocol D through the product: every source ingested at once, each paced over ``seconds``,
    into one worker with default settings; the decisions read back from Elasticsearch.
    Returns ({source: flags in line order}, latencies in s, retrain windows, the worker log)."""
    import asyncio
    from datetime import datetime

    from elasticsearch.helpers import scan

    from app.inputs.ingest import ingest
    from app.outputs.elastic import sync_client
    from tests.streaming_helpers import Worker, es_count, run_cli, wait_for

    tag = str(int(time.time()))
    names = {"topic": f"bench-adapt-{tag}", "app_id": f"bench-adapt-{tag}", "index": f"bench-adapt-{tag}"}
    total = sum(len(lines) for lines in sources.values())
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, Path(base).parent / f"state-{tag}", env=env)
    worker.args[worker.args.index("--loglevel") + 1] = "info"
    worker.start()
    es = sync_client(settings)
    ingest_settings = settings.replace(topic=names["topic"])
    try:
        async def all_sources():
            delay = seconds / max(len(lines) for lines in sources.values())
            await asyncio.gather(*(ingest(ingest_settings, base, f"log-{name}/*.txt", delay, 50, progress=False)
                                   for name in sources))

        started = time.monotonic()
        asyncio.run(all_sources())
        wait_for(lambda: es_count(names["index"]) >= total, timeout=900, interval=1, what="all lines indexed")
        print(f"streamed {total} lines of {len(sources)} sources through one worker in "
              f"{time.monotonic() - started:.0f} s")
        docs = list(scan(es, index=names["index"], query={"query": {"match_all": {}}},
                         _source=["source", "line_no", "is_anomaly", "ingested_at", "indexed_at", "model_version"]))
        flags, latencies, versions = {}, [], {}
        for hit in docs:
            d = hit["_source"]
            flags.setdefault(d["source"][4:], {})[d["line_no"]] = d["is_anomaly"]
            ingested, indexed = (datetime.fromisoformat(d[k]) for k in ("ingested_at", "indexed_at"))
            latencies.append((ingested, (indexed - ingested).total_seconds()))
            versions[d["model_version"]] = versions.get(d["model_version"], 0) + 1
        log = worker.log_path.read_text(errors="replace")
        return ({name: [by_line[i] for i in sorted(by_line)] for name, by_line in flags.items()}, latencies,
                versions, log)
    finally:
        worker.stop()
        from tests.conftest import remove_leftovers

        remove_leftovers(names)   # its topics (log, internal, changelogs) and indices


def retrain_windows(log):
    """(start, end) datetimes of each retrain, from the trainer's lines in the worker log."""
    from datetime import datetime, timezone

    windows, start = [], None
    for line in log.splitlines():
        match = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\] \[trainer \d+\] (retraining|published)", line)
        if not match:
            continue
        when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone(timezone.utc)
        if match.group(2) == "retraining":
            start = when
        elif start is not None:
            windows.append((start, when))
            start = None
    return windows


def latency_figures(latencies, windows):
    values = np.array([v for _, v in latencies])
    during = np.array([v for t, v in latencies if any(a <= t <= b for a, b in windows)])
    out = {"p50_s": float(np.percentile(values, 50)), "p99_s": float(np.percentile(values, 99)),
           "max_s": float(values.max()), "retrains": len(windows)}
    if len(during):
        out.update(during_retrain_lines=int(len(during)), during_retrain_p99_s=float(np.percentile(during, 99)))
    return out


def train_without_bgl(settings, out, output_classes=0):
    """A checkpoint that never saw BGL: the other five shipped samples (cached in out)."""
    from model.train import train

    folder = Path(out) / f"checkpoint-no-bgl{f'-{output_classes}-classes' if output_classes else ''}"
    if not (folder / "config.json").is_file():
        lines = []
        for name in ("HDFS_2k.log", "OpenSSH_2k.log", "Zookeeper_2k.log", "Apache_2k.log", "Linux_2k.log"):
            lines += [line for _, line, _ in read_lines(ROOT / "data" / "loghub" / name)]
        train(lines, out_dir=folder, max_vocab=3000, progress=False, output_classes=output_classes)
        for stale in folder.glob("autoencoder_epoch_*.pth"):
            stale.unlink()
    return Scorer.from_checkpoint(folder, precision=settings.scorer_precision)


def protocol_c(settings, out, policy, output_classes=0):
    scorer = train_without_bgl(settings, out, output_classes)
    result, _ = evaluate_online(scorer, LOGHUB / "BGL_2k.log", Path(out) / "protocol-c", policy, labels="loghub",
                                progress=False)
    return {k: result[k] for k in ("roc_auc", "roc_auc_second_half", "pr_auc", "best_f1", "precision", "recall",
                                   "f1", "n_anomalies", "n_labelled_anomalies")}


def protocol_b(settings, output_classes=0):
    from model.train import train

    rows = [(line, label != "-") for _, line, label in read_lines(LOGHUB / "BGL_2k.log", labels="loghub")]
    out = {}
    for cut in (0.5, 0.6, 0.7):
        k = int(len(rows) * cut)
        scorer = train([line for line, bad in rows[:k] if not bad], progress=False, max_vocab=3000,
                       output_classes=output_classes)
        y = np.array([bad for _, bad in rows[k:]])
        scores = np.array([r.score for r in scorer.score_batch([line for line, _ in rows[k:]])])
        threshold = calibration_threshold(scorer.calibration, settings.factor)
        out[f"{int(cut * 100)}%"] = {"roc_auc": metrics.roc_auc(y, scores), "best_f1": metrics.best_f1(y, scores)[0],
                                     "f1_at_threshold": metrics.at_threshold(y, scores, threshold)["f1"]}
    out["mean"] = {k: float(np.mean([v[k] for v in out.values()])) for k in ("roc_auc", "best_f1", "f1_at_threshold")}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "bench_adaptation"))
    parser.add_argument("--checkpoint-dir", default=str(ROOT / "checkpoints"))
    parser.add_argument("--seed", type=int, default=0, help="which lines are planted where")
    parser.add_argument("--output-classes", type=int, default=0, help="protocols B and C train class-factored "
                        "models (clogs train --output-classes); give D such a checkpoint with --checkpoint-dir")
    parser.add_argument("--skip", nargs="*", default=[], choices=["B", "C", "D", "peer"])
    parser.add_argument("--stream", action="store_true", help="also protocol D through Kafka -> worker -> "
                        "Elasticsearch on the local services (scripts/services up)")
    parser.add_argument("--stream-seconds", type=float, default=180, help="each source paced over this long")
    parser.add_argument("--retrain-seconds", type=float, default=60,
                        help="the worker's trainer looks for new samples this often during --stream")
    args = parser.parse_args()
    settings = Settings.from_env()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    policy = Policy.of(settings)
    report = {"policy": policy.__dict__, "data": str(LOGHUB)}
    sources = planted_sources(args.seed)
    write_sources(sources, out / "logs")
    if "D" not in args.skip:
        scorer = Scorer.from_checkpoint(args.checkpoint_dir, precision=settings.scorer_precision)
        flags, seconds = offline_flags(scorer, sources, out / "logs", policy, out)
        report["D_offline"] = cold_start_figures(sources, flags)
        peer = cold_start_figures(sources, drain3_flags(sources)) if "peer" not in args.skip else None
        report["D_drain3"] = peer
        print_cold_start(f"Protocol D, clogs evaluate --online ({seconds:.1f} s) beside the Drain3 peer",
                         report["D_offline"], peer)
    if args.stream:
        env = {"CLOGS_TRAINER": "auto", "CLOGS_RETRAIN_SECONDS": str(args.retrain_seconds)}
        flags, latencies, versions, log = stream_flags(settings, sources, out / "logs", args.stream_seconds, env)
        (out / "stream-worker.log").write_text(log)
        report["D_stream"] = cold_start_figures(sources, flags)
        report["stream_latency"] = latency_figures(latencies, retrain_windows(log))
        report["stream_model_versions"] = versions
        print_cold_start("Protocol D through Kafka -> worker -> Elasticsearch (default settings)", report["D_stream"],
                         report.get("D_drain3"))
        print("latency ingest -> indexed: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                         for k, v in report["stream_latency"].items()))
        print(f"documents per model version: {versions}")
    if "C" not in args.skip:
        report["C"] = protocol_c(settings, out, policy, args.output_classes)
        print(f"\nProtocol C (BGL_2k online from a checkpoint without BGL): "
              + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in report["C"].items()))
    if "B" not in args.skip:
        report["B"] = protocol_b(settings, args.output_classes)
        print("\nProtocol B (BGL_2k offline chronological):")
        for cut, row in report["B"].items():
            print(f"  {cut}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out / 'report.json'}")


if __name__ == "__main__":
    main()
