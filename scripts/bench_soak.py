#!/usr/bin/env python3
"""Soak: a million lines through one worker with learning (and its trainer) on; memory over time.

Writes ``--lines`` lines for ten sources -- four synthetic services (app/inputs/traffic.py, random values
in fixed templates, a rare failure line now and then) and the six Loghub samples of data/loghub,
each cycled -- ingests them as fast as Kafka takes them, and samples every ``--every`` seconds the
resident memory of the worker and of its trainer, and the documents indexed.  At the end: every
line indexed exactly once (Elasticsearch count = lines), each source's statistics count, the
sizes of the tables (patterns and learned tokens per source, incidents) and of their changelog
topics on disk, and RSS growth after warm-up (the first ``--warmup`` share of the lines).  Writes
docs/soak.png (memory and indexed lines over time) and docs/soak.json.  Uses its own topic, app id
and index (bench-*), on the local services.
Usage: python scripts/bench_soak.py [--lines 1000000] [--every 5]
"""
import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.settings import Settings, incidents_index  # noqa: E402
from app.inputs.traffic import failure_line, service_lines  # noqa: E402
from tests.streaming_helpers import Worker, es_count, run_cli, wait_for  # noqa: E402

SYNTHETIC = [("svc-payments-a", "payments", 1), ("svc-payments-b", "payments", 2),
             ("svc-inventory-a", "inventory", 3), ("svc-inventory-b", "inventory", 4)]


def rss_mb(pid, children=False):
    which = ["--ppid", str(pid)] if children else ["-p", str(pid)]
    out = subprocess.run(["ps", "-o", "rss=", *which], capture_output=True, text=True)
    return sum(int(v) for v in out.stdout.split()) / 1024


def write_sources(base, total):
    """Ten sources of about total/10 lines each; returns {source: lines}."""
    per = total // 10
    counts = {}
    for name, service, seed in SYNTHETIC:
        folder = base / f"log-{name}"
        folder.mkdir(parents=True)
        with open(folder / f"{name}.txt", "w") as f:
            written, chunk = 0, 0
            while written < per:
                lines = service_lines(service, min(5000, per - written), seed=seed * 1000 + chunk)
                if chunk % 7 == 3:   # a failure now and then
                    lines[len(lines) // 2] = failure_line(service, seed=chunk)
                f.write("\n".join(lines) + "\n")
                written += len(lines)
                chunk += 1
        counts[f"log-{name}"] = per
    from model.data import split_label

    for path in sorted((ROOT / "data" / "loghub").glob("*.log")):
        name = path.name.split("_")[0].lower()
        lines = [split_label(line)[1] for line in path.read_text(errors="replace").splitlines()]
        lines = [line for line in lines if line.strip()]
        folder = base / f"log-{name}"
        folder.mkdir(parents=True)
        with open(folder / f"{name}.txt", "w") as f:
            for i in range(per):
                f.write(lines[i % len(lines)] + "\n")
        counts[f"log-{name}"] = per
    return counts


def changelog_sizes(settings, app_id):
    """Bytes of the app's changelog topics' log segments (all partitions; not the preallocated
    index files), by table."""
    logs = Path(settings.services_dir) / "data" / "kafka" / "logs"
    sizes = {}
    for folder in logs.glob(f"{app_id}-*-changelog-*"):
        table = folder.name[len(app_id) + 1:].rsplit("-changelog-", 1)[0]
        sizes[table] = sizes.get(table, 0) + sum(f.stat().st_size for f in folder.glob("*.log"))
    return sizes


def plot(samples, out, warm_at):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in samples]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(t, [s["worker_mb"] for s in samples], label="worker RSS (MB)", color="#c0392b")
    ax.plot(t, [s["trainer_mb"] for s in samples], label="trainer RSS (MB)", color="#8e44ad")
    ax.axvline(warm_at / 60, color="#999", ls=":", label="end of warm-up")
    ax.set_xlabel("minutes")
    ax.set_ylabel("MB")
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    right.plot(t, [s["indexed"] / 1e3 for s in samples], label="lines indexed (thousands)", color="#2c7fb8")
    right.set_ylabel("thousand lines indexed")
    right.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    ax.set_title(f"soak: {samples[-1]['indexed']:,} lines through one worker, learning and trainer on")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=0.2, help="share of the lines counted as warm-up")
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    settings = Settings.from_env()
    tag = str(int(time.time()))
    names = {"topic": f"bench-logs-{tag}", "app_id": f"bench-clogs-{tag}", "index": f"bench-clogs-{tag}"}
    work = Path(tempfile.mkdtemp(prefix="clogs-soak-"))
    counts = write_sources(work / "logs", args.lines)
    total = sum(counts.values())
    print(f"wrote {total:,} lines for {len(counts)} sources under {work}")
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, work / "state", env={"CLOGS_TRAINER": "auto"}).start()
    samples, done = [], threading.Event()
    started = time.monotonic()

    def sample():
        while not done.is_set():
            samples.append({"t": time.monotonic() - started, "worker_mb": rss_mb(worker.proc.pid),
                            "trainer_mb": rss_mb(worker.proc.pid, children=True), "indexed": es_count(names["index"])})
            print(f"  {samples[-1]['t']:6.0f} s  worker {samples[-1]['worker_mb']:6.0f} MB  trainer "
                  f"{samples[-1]['trainer_mb']:5.0f} MB  indexed {samples[-1]['indexed']:>9,}", flush=True)
            done.wait(args.every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run_cli("ingest", "--base-dir", str(work / "logs"), "--topic", names["topic"], timeout=3600)
        sent = time.monotonic() - started
        wait_for(lambda: es_count(names["index"]) >= total, timeout=6 * 3600, interval=2, what="every line indexed")
        seconds = time.monotonic() - started
        time.sleep(args.every * 2)
        done.set()
        sampler.join()
        indexed = es_count(names["index"])
        stats = worker.stats()
        health = worker.stats("/health")
        from app.outputs.elastic import sync_client

        es = sync_client(settings)
        incidents_at = incidents_index(settings.replace(index=names["index"]))
        es.indices.refresh(index=incidents_at)
        incidents = es.count(index=incidents_at)["count"]
        warm = next(s for s in samples if s["indexed"] >= args.warmup * total)
        after = [s for s in samples if s["t"] >= warm["t"]]
        result = {
            "lines": total, "sources": len(counts), "ingest_seconds": round(sent, 1), "seconds": round(seconds, 1),
            "lines_per_second": round(total / seconds), "indexed": indexed, "exactly_once": indexed == total,
            "counts_match": all(stats.get(s, {}).get("count") == n for s, n in counts.items()),
            "worker_rss_mb": {"at_warmup_end": round(warm["worker_mb"]), "max_after": round(max(s["worker_mb"]
                                                                                                for s in after)),
                              "last": round(samples[-1]["worker_mb"]), "max": round(max(s["worker_mb"]
                                                                                         for s in samples))},
            "trainer_rss_mb_max": round(max(s["trainer_mb"] for s in samples)),
            "growth_after_warmup": round(max(s["worker_mb"] for s in after) / warm["worker_mb"] - 1, 3),
            "patterns_per_source": {s: v["patterns"] for s, v in sorted(stats.items()) if isinstance(v, dict)},
            "learned_tokens_per_source": {s: v["learned_tokens"] for s, v in sorted(stats.items())
                                          if isinstance(v, dict)},
            "incidents": incidents, "model_swaps": health.get("model_swaps"),
            "changelog_bytes": changelog_sizes(settings, names["app_id"]),
            "samples": samples,
        }
        out = Path(args.out)
        (out / "soak.json").write_text(json.dumps(result, indent=1))
        plot(samples, out / "soak.png", warm["t"])
        brief = {k: v for k, v in result.items() if k != "samples"}
        print(json.dumps(brief, indent=1))
        print(f"\n{total:,} lines in {seconds:.0f} s ({total / seconds:,.0f} lines/s), indexed {indexed:,} "
              f"(exactly once: {indexed == total}); worker RSS {result['worker_rss_mb']}, growth after warm-up "
              f"{result['growth_after_warmup']:+.1%}; wrote {out / 'soak.png'} and soak.json")
    finally:
        done.set()
        worker.stop(signal.SIGTERM)
        from tests.conftest import remove_leftovers

        remove_leftovers(names)   # its topics (log, internal, changelogs) and indices
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
