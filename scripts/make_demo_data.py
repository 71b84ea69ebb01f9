#!/usr/bin/env python3
"""Multi-source demo traffic: data/kafka/log-<source>/<source>.txt from the shipped Loghub samples.

Each source gets its sample (BGL's label field stripped) with a few planted anomalies: lines
of a kind that source never produces, inserted at fixed, seeded positions.  The planted lines
and their positions are written to data/kafka/planted.json, so a demo can check what it found.
Usage: python scripts/make_demo_data.py [--out data/kafka] [--lines 2000] [--seed 7]
"""
import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.data import split_label  # noqa: E402

SOURCES = {"bgl": "BGL_2k.log", "hdfs": "HDFS_2k.log", "openssh": "OpenSSH_2k.log",
           "zookeeper": "Zookeeper_2k.log", "apache": "Apache_2k.log", "linux": "Linux_2k.log"}
PLANTED = {
    "bgl": ["1118536327 2005.06.11 R30-M0-N9-C:J16-U01 2005-06-11-17.32.07.581048 R30-M0-N9-C:J16-U01 RAS KERNEL "
            "FATAL coolant pump pressure lost on midplane, emergency shutdown initiated"],
    "hdfs": ["081109 213000 512 FATAL dfs.FSNamesystem: Journal quorum lost, namenode refusing all writes"],
    "openssh": ["Dec 10 07:07:38 LabSZ sshd[24206]: FATAL kernel oops in privilege separation child, "
                "segfault at 0000000000000008"],
    "zookeeper": ["2015-07-29 19:21:36,502 - FATAL [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:ZooKeeperServer@511] - "
                  "Snapshot checksum mismatch, transaction log corrupted beyond repair"],
    "apache": ["[Sun Dec 04 06:12:40 2005] [crit] disk quota exhausted on /var/www, refusing uploads"],
    "linux": ["Jun 14 15:16:01 combo kernel: Out of memory: Killed process 3124 (httpd) total-vm:912345kB"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "data" / "kafka"))
    parser.add_argument("--lines", type=int, default=2000, help="lines per source taken from its sample")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    planted = []
    total = 0
    for source, name in SOURCES.items():
        lines = (ROOT / "data" / "loghub" / name).read_text(errors="replace").splitlines()[: args.lines]
        if source == "bgl":
            lines = [split_label(line)[1] for line in lines]
        for text in PLANTED[source]:
            position = rng.randint(len(lines) // 2, len(lines))  # after the warm-up of the source
            lines.insert(position, text)
            planted.append({"source": f"log-{source}", "line_no": position + 1, "line": text})
        folder = out / f"log-{source}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{source}.txt").write_text("\n".join(lines) + "\n")
        total += len(lines)
    (out / "planted.json").write_text(json.dumps(planted, indent=2))
    print(f"wrote {total} lines for {len(SOURCES)} sources under {out} ({len(planted)} planted anomalies, "
          f"listed in {out / 'planted.json'})")


if __name__ == "__main__":
    main()
