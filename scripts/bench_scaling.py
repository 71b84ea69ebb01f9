#!/usr/bin/env python3
"""The end-to-end benchmark (scripts/bench_stream.py) with 1, 2 and 4 partitions and 1 and 2 workers.

Runs each point in turn on the local services (one benchmark at a time: they share the cores),
keeps the figures in docs/scaling.json and plots lines/s per point in docs/scaling.png.
Usage: python scripts/bench_scaling.py [--partitions 1 2 4] [--workers 1 2] [--out docs]
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def plot(points, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for workers in sorted({p["workers"] for p in points}):
        mine = sorted((p for p in points if p["workers"] == workers), key=lambda p: p["partitions"])
        ax.plot([p["partitions"] for p in mine], [p["lines_per_s"] for p in mine], marker="o",
                label=f"{workers} worker{'s' if workers > 1 else ''}")
        for p in mine:
            # the label goes on the side away from the other points at this partition count
            others = [q["lines_per_s"] for q in points if q["partitions"] == p["partitions"] and q is not p]
            highest = all(p["lines_per_s"] >= v for v in others)
            ax.annotate(f"{p['lines_per_s']:,}", (p["partitions"], p["lines_per_s"]), textcoords="offset points",
                        xytext=(0, 6 if highest else -13), ha="center", fontsize=8)
    ax.set_xlabel("partitions of the log topic")
    ax.set_ylabel("lines/s end to end (32,000 Loghub lines)")
    ax.set_xticks(sorted({p["partitions"] for p in points}))
    ax.set_ylim(0, max(p["lines_per_s"] for p in points) * 1.12)
    ax.set_title("clogs end to end on 2 cores (Kafka, Elasticsearch, workers on one machine)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    raw = out / "scaling.jsonl"
    raw.unlink(missing_ok=True)
    for workers in args.workers:
        for partitions in args.partitions:
            print(f"--- {partitions} partition(s), {workers} worker(s)", flush=True)
            subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_stream.py"), "--partitions", str(partitions),
                            "--workers", str(workers), "--no-recovery", "--json", str(raw)], check=True, cwd=ROOT)
    points = [json.loads(line) for line in raw.read_text().splitlines()]
    (out / "scaling.json").write_text(json.dumps(points, indent=1) + "\n")
    raw.unlink()
    plot(points, out / "scaling.png")
    print(f"{'partitions':>10} {'workers':>7} {'lines/s':>8}  largest RSS")
    for p in points:
        print(f"{p['partitions']:>10} {p['workers']:>7} {p['lines_per_s']:>8,}  {p['rss_mb']}")
    print(f"plot: {out / 'scaling.png'}")


if __name__ == "__main__":
    main()
