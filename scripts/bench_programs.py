#!/usr/bin/env python3
"""The real-program benchmark (issue 23): real software under a normal load, real faults injected,
and how soon clogs and Drain3 0.9.11's new-template alerting notice each.

Programs (each writes its own log; the benchmark follows the files and stamps each line as it
appears):

* PostgreSQL 15 from the Debian packages (its own cluster in a temporary folder, on 127.0.0.1),
  under pgbench, logging connections, checkpoints and autovacuum reports (multi-line);
* a small Python service (scripts/programs/shop_service.py) logging text, and a second one logging
  JSON lines with their tracebacks inside;
* a small Java service (scripts/programs/ShopService.java) logging through java.util.logging;
* Apache Kafka (the project's own broker build, a broker of its own) at INFO, as it ships, with a
  producer and a consumer group keeping it busy.

Faults, each in a recorded time window: PostgreSQL -- wrong passwords, broken statements, a deadlock,
connection exhaustion, a backend killed with SIGKILL, the server killed with SIGKILL and restarted;
the services -- an unreachable dependency, a full disk (/dev/full), a bad input at a new call site;
Kafka -- the broker restarted mid-load, and killed with SIGKILL mid-load and started again.

Judging: each program is one source seen from its first line (cold start: the shipped model has
never seen any of them).  clogs assembles events, scores and decides them as the worker does
(``model.events.read_events``, ``model.online.judge_batch``); an event counts as alerted when it
would be complete in the stream (its next event started, or its quiet timeout passed).  Drain3
(default configuration) alerts on a line that creates a new cluster.  Per program: episodes detected
(an alert inside the window, or up to ``--grace`` s after it), time to detect, and alerts and
incidents (distinct patterns / templates) per hour outside the episodes.

    .venv/bin/python scripts/bench_programs.py [--warmup 60] [--gap 15] [--seed 1] [--json docs/programs.json]
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PROGRAMS = ROOT / "scripts" / "programs"
JUL_FORMAT = "%1$tFT%1$tT.%1$tL %4$s %3$s - %5$s%6$s%n"
PG_FAULTS = ["wrong_password", "broken_statement", "deadlock", "too_many_connections", "backend_killed",
             "server_restart"]
SERVICE_FAULTS = ["dependency_down", "disk_full", "bad_input"]
KAFKA_FAULTS = ["broker_restart", "broker_killed"]


class Follower(threading.Thread):
    """Follows log files as they grow; each complete line is stamped with the time it appeared."""

    def __init__(self, paths):
        super().__init__(daemon=True)
        self.paths = paths            # source -> Path
        self.lines = {source: [] for source in paths}
        self.offsets = {source: 0 for source in paths}
        self.rest = {source: b"" for source in paths}
        self.stopped = threading.Event()

    def poll(self):
        now = time.time()
        for source, path in self.paths.items():
            try:
                with open(path, "rb") as handle:
                    handle.seek(self.offsets[source])
                    data = handle.read()
            except FileNotFoundError:
                continue
            self.offsets[source] += len(data)
            data = self.rest[source] + data
            *complete, self.rest[source] = data.split(b"\n")
            self.lines[source] += [(now, raw.decode("utf-8", "replace")) for raw in complete]

    def run(self):
        while not self.stopped.is_set():
            self.poll()
            time.sleep(0.05)
        self.poll()


class Postgres:
    """A PostgreSQL cluster of its own in ``folder`` (run as the postgres user), on ``port``."""

    def __init__(self, folder, port):
        self.folder, self.port = Path(folder), port
        self.data, self.log = self.folder / "data", self.folder / "postgresql.log"
        self.password = "bench-" + os.urandom(4).hex()

    def as_postgres(self, *args, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], capture_output=True, text=True,
                              **kw)

    def start(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        result = self.as_postgres(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                                  "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        if result.returncode:
            raise RuntimeError(f"initdb failed: {result.stderr}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"""
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.folder}'
max_connections = 20
log_line_prefix = '%m [%p] %q%u@%d '
log_connections = on
log_checkpoints = on
checkpoint_timeout = 30s
log_autovacuum_min_duration = 0
autovacuum_naptime = 5s
deadlock_timeout = 200ms
log_lock_waits = on
""")
        self.pg_ctl("start")

    def pg_ctl(self, action, mode="fast"):
        args = [PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60"]
        args += ["-m", mode] if action == "stop" else []
        result = self.as_postgres(*args, action)
        if result.returncode:
            raise RuntimeError(f"pg_ctl {action} failed: {result.stderr}{result.stdout}")

    def env(self, password=None):
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "postgres",
                "PGPASSWORD": password or self.password, "PGDATABASE": "postgres", "PGCONNECT_TIMEOUT": "5"}

    def psql(self, sql, password=None, wait=True):
        proc = subprocess.Popen([PG_BIN / "psql", "-X", "-q", "-c", sql], env=self.env(password),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait:
            proc.wait(30)
        return proc

    def postmaster_pid(self):
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self):
        try:
            self.pg_ctl("stop", "immediate")
        except RuntimeError:
            pass


class Kafka:
    """An Apache Kafka broker of its own (the project's artifacts, .services/lib/kafka), logging at
    INFO as shipped, on ``port``; a producer and a consumer group keep it busy (``KafkaLoad``)."""

    LOG4J2 = ("status = warn\nappender.console.type = Console\nappender.console.name = STDOUT\n"
              "appender.console.layout.type = PatternLayout\nappender.console.layout.pattern = [%d] %p %m (%c)%n\n"
              "rootLogger.level = INFO\nrootLogger.appenderRef.stdout.ref = STDOUT\n")

    def __init__(self, folder, port):
        self.folder, self.port, self.proc = Path(folder), port, None
        self.log = self.folder / "server.log"
        self.lib = ROOT / ".services" / "lib" / "kafka"

    def available(self):
        return self.lib.is_dir() and shutil.which("java") is not None

    def base(self):
        return ["java", f"-Dlog4j2.configurationFile={self.folder / 'log4j2.properties'}", "-cp", str(self.lib / "*")]

    def start(self, first=True):
        if first:
            self.folder.mkdir(parents=True, exist_ok=True)
            services = services_module()   # the broker configuration of scripts/services, at INFO
            (self.folder / "server.properties").write_text(services.KAFKA_PROPERTIES.format(
                port=self.port, controller_port=self.port + 1, data=self.folder / "data"))
            (self.folder / "log4j2.properties").write_text(self.LOG4J2)
            subprocess.run(self.base() + ["kafka.tools.StorageTool", "format",
                                          f"--cluster-id={services.new_cluster_id()}",
                                          "-c", str(self.folder / "server.properties")], capture_output=True,
                           check=True)
        self.proc = subprocess.Popen(["java", "-Xmx256m", "-Xms64m", *self.base()[1:], "kafka.Kafka",
                                      str(self.folder / "server.properties")],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline and "Kafka Server started" not in self.log.read_text(errors="replace"):
            time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class KafkaLoad(threading.Thread):
    """Five records a second produced to one topic and consumed by a group, reconnecting through
    broker restarts (aiokafka, as clogs' own clients)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stopped = port, threading.Event()

    def run(self):
        import asyncio

        asyncio.run(self.load())

    async def load(self):
        import asyncio

        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        bootstrap = f"127.0.0.1:{self.port}"
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=10000)
        consumer = AIOKafkaConsumer("orders", bootstrap_servers=bootstrap, group_id="billing",
                                    auto_offset_reset="earliest")
        await producer.start()
        await consumer.start()
        number = 0
        while not self.stopped.is_set():
            try:
                await asyncio.wait_for(producer.send_and_wait("orders", f"order {number}".encode()), 5)
                await asyncio.wait_for(consumer.getmany(timeout_ms=100), 5)
            except Exception:   # the broker is restarting: go on trying
                await asyncio.sleep(0.5)
            number += 1
            await asyncio.sleep(0.2)
        await asyncio.gather(producer.stop(), consumer.stop(), return_exceptions=True)


def services_module():
    """scripts/services as a module (it has no .py suffix)."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("clogs_services", str(ROOT / "scripts" / "services"))
    spec = importlib.util.spec_from_loader("clogs_services", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def kafka_fault(kafka, name):
    kafka.stop(signal.SIGTERM if name == "broker_restart" else signal.SIGKILL)
    time.sleep(2)
    kafka.start(first=False)


def pg_fault(pg, name):
    """Carry out one PostgreSQL fault (it returns when done)."""
    if name == "wrong_password":
        for _ in range(3):
            pg.psql("select 1", password="not-the-password")
    elif name == "broken_statement":
        pg.psql("SELEC 1")
        pg.psql("select * from orders_archive")
        pg.psql("insert into pgbench_branches (bid, bbalance) values (1, 0)")   # a duplicate key
    elif name == "deadlock":
        a = pg.psql("begin; update pgbench_accounts set abalance = abalance + 1 where aid = 1; select pg_sleep(1); "
                    "update pgbench_accounts set abalance = abalance + 1 where aid = 2; commit;", wait=False)
        b = pg.psql("begin; update pgbench_accounts set abalance = abalance + 1 where aid = 2; select pg_sleep(1); "
                    "update pgbench_accounts set abalance = abalance + 1 where aid = 1; commit;", wait=False)
        a.wait(30)
        b.wait(30)
    elif name == "too_many_connections":
        holders = [pg.psql("select pg_sleep(3)", wait=False) for _ in range(24)]
        for proc in holders:
            proc.wait(30)
    elif name == "backend_killed":
        sleeper = pg.psql("select pg_sleep(20)", wait=False)
        time.sleep(1.0)
        out = subprocess.run([PG_BIN / "psql", "-X", "-At", "-c", "select pid from pg_stat_activity where query "
                              "like 'select pg_sleep(20)%'"], env=pg.env(), capture_output=True, text=True)
        for pid in out.stdout.split():
            os.kill(int(pid), signal.SIGKILL)
        sleeper.wait(30)
        time.sleep(2)   # the postmaster resets and recovers
    elif name == "server_restart":
        os.kill(pg.postmaster_pid(), signal.SIGKILL)
        time.sleep(3)
        for child in subprocess.run(["pgrep", "-u", "postgres", "-f", str(pg.data)], capture_output=True,
                                    text=True).stdout.split():
            try:
                os.kill(int(child), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(1)
        pg.pg_ctl("start")


class Pgbench(threading.Thread):
    """pgbench at a steady 4 transactions/s, one new connection each (-C: the connection lines are
    part of PostgreSQL's normal traffic), started again whenever it stops (a restart ends its run)."""

    def __init__(self, pg):
        super().__init__(daemon=True)
        self.pg, self.stopped, self.proc = pg, threading.Event(), None
        subprocess.run([PG_BIN / "pgbench", "-i", "-s", "1", "-q"], env=pg.env(), capture_output=True, check=True)

    def run(self):
        while not self.stopped.is_set():
            self.proc = subprocess.Popen([PG_BIN / "pgbench", "-C", "-c", "2", "-j", "1", "-R", "4", "-T", "5"],
                                         env=self.pg.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.proc.wait()
            if self.proc.returncode:
                time.sleep(1)

    def stop(self):
        self.stopped.set()
        if self.proc is not None:
            self.proc.terminate()
        self.join(10)


def clogs_alerts(scorer, policy, lines, source, timeout):
    """(time of each alert, the alert's pattern) for one program's stamped lines, as the worker decides."""
    from dataclasses import replace

    from model.evaluate import online_line
    from model.events import read_events
    from model.multiline import Assembler
    from model.online import judge_batch, new_state

    items = [(i, line, None) for i, (_, line) in enumerate(lines)]
    events = list(read_events(items, Assembler(timeout=timeout)))
    results = scorer.score_batch([e["text"] for e in events]) if events else []
    rows = []
    for index, (event, result) in enumerate(zip(events, results)):
        if "pattern" in event["extras"]:
            result = replace(result, pattern=event["extras"]["pattern"])
        rows.append(online_line(source, dict(event, result=result), index, scorer.model_version))
    stats, memory = new_state()
    docs = judge_batch(rows, stats, memory, scorer.calibration, policy, scorer.prior_at_fatal)
    alerts = []
    for index, (event, doc) in enumerate(zip(events, docs)):
        if not doc["is_anomaly"]:
            continue
        last_line = event["line_no"] + event["lines"] - 1
        complete = lines[last_line][0] + timeout
        if index + 1 < len(events):
            complete = min(complete, lines[events[index + 1]["line_no"]][0])
        alerts.append((complete, doc["pattern_id"], event["line"].splitlines()[0][:160]))
    return alerts, len(events)


def drain3_alerts(lines):
    import logging

    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    logging.getLogger("drain3").setLevel(logging.WARNING)
    miner, alerts = TemplateMiner(config=TemplateMinerConfig()), []   # Drain3's defaults, no .ini looked for
    for stamp, line in lines:
        if not line.strip():
            continue
        change = miner.add_log_message(line)
        if change["change_type"] == "cluster_created":
            alerts.append((stamp, change["cluster_id"], line[:160]))
    return alerts


def detections(alerts, episodes, grace):
    """A program's episodes detected, and the time to detect each (None: missed): an alert inside
    the episode's window or up to ``grace`` s after it."""
    detected = []
    for episode in episodes:
        hits = [t for t, _, _ in alerts if episode["start"] <= t <= episode["end"] + grace]
        detected.append(round(min(hits) - episode["start"], 1) if hits else None)
    return {"detected": sum(d is not None for d in detected), "episodes": len(episodes), "time_to_detect_s": detected}


def normal_rates(alerts, episodes, since, ended, grace, name=""):
    """Alerts and distinct patterns per hour of normal traffic (``since``..``ended`` outside the
    episodes' windows and their grace), and the first alerts there; keys end with ``name``."""
    windows = merged([(e["start"], e["end"] + grace) for e in episodes])
    normal = [a for a in alerts if since <= a[0] <= ended and not any(x <= a[0] <= y for x, y in windows)]
    hours = max(1e-9, (ended - since - sum(min(y, ended) - max(x, since) for x, y in windows
                                            if y > since and x < ended)) / 3600)
    return {f"alerts_per_hour_normal{name}": round(len(normal) / hours, 1),
            f"incidents_per_hour_normal{name}": round(len({p for _, p, _ in normal}) / hours, 1),
            f"normal_examples{name}": [text for _, _, text in normal[:5]]}


def merged(windows):
    out = []
    for start, end in sorted(windows):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of normal traffic before the first fault")
    parser.add_argument("--gap", type=float, default=15.0, help="seconds of normal traffic between faults")
    parser.add_argument("--window", type=float, default=8.0, help="seconds an episode's window lasts")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds after a window an alert still counts")
    parser.add_argument("--seed", type=int, default=1, help="the order of the faults")
    parser.add_argument("--faults", default="", help="a ','-separated subset of the faults (default: all)")
    parser.add_argument("--port", type=int, default=55432)
    parser.add_argument("--keep", help="keep the logs in this folder")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--rejudge", help="judge the run kept in this folder (--keep) again, running nothing")
    args = parser.parse_args()
    if args.rejudge:
        return rejudge(args.rejudge, args.grace, args.json)

    from app.settings import Settings
    from model import Scorer
    from model.online import Policy

    settings = Settings.from_env()
    scorer = Scorer.from_checkpoint(settings.checkpoint_dir)
    policy = Policy.of(settings, learning=True)
    work = Path(tempfile.mkdtemp(prefix="clogs-programs-"))
    work.chmod(0o755)   # the postgres user works in a folder under it
    control = {"python-text": work / "python-text.fault", "python-json": work / "python-json.fault",
               "java": work / "java.fault"}
    logs = {"postgresql": work / "pg" / "postgresql.log", "python-text": work / "python-text.log",
            "python-json": work / "python-json.log", "java": work / "java.log"}
    wanted = set(filter(None, args.faults.split(",")))
    kafka = Kafka(work / "kafka", args.port + 10)
    if kafka.available():
        logs["kafka"] = kafka.log
    else:
        print("no .services/lib/kafka (scripts/services up resolves it) or no java: Kafka left out", flush=True)
    plan = [("postgresql", f) for f in PG_FAULTS] + [(p, f) for p in control for f in SERVICE_FAULTS] + \
        [("kafka", f) for f in KAFKA_FAULTS if "kafka" in logs]
    plan = [step for step in plan if not wanted or step[1] in wanted]
    random.Random(args.seed).shuffle(plan)
    seconds = args.warmup + len(plan) * (args.gap + args.window) + args.gap
    print(f"{len(plan)} faults over {seconds:.0f} s; logs in {work}", flush=True)

    pg = Postgres(work / "pg", args.port)
    procs, load, kafka_load = [], None, None
    follower = Follower(logs)
    episodes = {source: [] for source in logs}
    try:
        pg.start()
        follower.start()
        load = Pgbench(pg)
        load.start()
        if "kafka" in logs:
            kafka.start()
            kafka_load = KafkaLoad(kafka.port)
            kafka_load.start()
        for style in ("text", "json"):
            procs.append(subprocess.Popen([sys.executable, PROGRAMS / "shop_service.py", style, control[f"python-{style}"],
                                           str(seconds), "5"], stdout=open(logs[f"python-{style}"], "wb"),
                                          stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen(["java", f"-Djava.util.logging.SimpleFormatter.format={JUL_FORMAT}",
                                       "ShopService.java", control["java"], str(seconds), "5"], cwd=PROGRAMS,
                                      stdout=open(logs["java"], "wb"), stderr=subprocess.STDOUT))
        started = time.time()
        time.sleep(args.warmup)
        for number, (program, fault) in enumerate(plan, 1):
            start = time.time()
            print(f"[{start - started:6.1f} s] {program}: {fault}", flush=True)
            if program == "postgresql":
                pg_fault(pg, fault)
            elif program == "kafka":
                kafka_fault(kafka, fault)
            else:
                control[program].write_text(f"{fault}:{number}\n")
            time.sleep(max(0.0, args.window - (time.time() - start)))
            episodes[program].append({"fault": fault, "start": start, "end": time.time()})
            time.sleep(args.gap)
        ended = time.time()
    finally:
        if load is not None:
            load.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        pg.stop()
        if kafka_load is not None:
            kafka_load.stopped.set()
            kafka_load.join(15)
        kafka.stop()
        follower.stopped.set()
        if follower.is_alive():
            follower.join(5)
    run = {"started": started, "ended": ended, "warmup": args.warmup, "faults": len(plan), "seed": args.seed,
           "episodes": episodes, "lines": follower.lines}
    if args.keep:
        shutil.copytree(work, args.keep, dirs_exist_ok=True)
        (Path(args.keep) / "run.json").write_text(json.dumps(run))
    shutil.rmtree(work, ignore_errors=True)
    report = judge_run(run, scorer, policy, settings.multiline_timeout, args.grace)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


def judge_run(run, scorer, policy, timeout, grace):
    """The report of a run (its stamped lines and episodes): clogs and Drain3 on the same lines."""
    started, ended, episodes = run["started"], run["ended"], run["episodes"]
    every_episode = [e for program in episodes.values() for e in program]
    report = {"seconds": round(ended - started, 1), "warmup_s": run["warmup"], "faults": run["faults"],
              "seed": run["seed"], "grace_s": grace, "programs": {}}
    for source, lines in run["lines"].items():
        lines = [(t, line) for t, line in lines if line.strip()]
        ours, events = clogs_alerts(scorer, policy, lines, source, timeout)
        theirs = drain3_alerts(lines)
        first = min([started] + [t for t, _ in lines[:1]])
        row = report["programs"][source] = {"lines": len(lines), "events": events,
                                            "faults": [e["fault"] for e in episodes[source]]}
        for who, alerts in (("clogs", ours), ("drain3", theirs)):
            # detection against the program's own faults; normal traffic outside every program's
            # windows, since a fault may show in another program's log (a restarted database)
            row[who] = {**detections(alerts, episodes[source], grace),
                        **normal_rates(alerts, every_episode, first, ended, grace),
                        **normal_rates(alerts, every_episode, started + run["warmup"], ended, grace,
                                       "_after_warmup"),
                        "alerts": len(alerts)}
    return report


def rejudge(folder, grace, out):
    """Judge a kept run again (``--rejudge``): the same stamped lines, the code as it is now."""
    from app.settings import Settings
    from model import Scorer
    from model.online import Policy

    settings = Settings.from_env()
    run = json.loads((Path(folder) / "run.json").read_text())
    report = judge_run(run, Scorer.from_checkpoint(settings.checkpoint_dir), Policy.of(settings, learning=True),
                       settings.multiline_timeout, grace)
    print_report(report)
    if out:
        Path(out).write_text(json.dumps(report, indent=1) + "\n")


def print_report(report):
    print(f"\n{report['faults']} faults in {report['seconds']:.0f} s (seed {report['seed']}, warm-up "
          f"{report['warmup_s']:g} s, an alert counts up to {report['grace_s']:g} s after its window)")
    print("| program | lines / events | detected clogs / Drain3 | time to detect clogs / Drain3 (s) "
          "| alerts per hour of normal traffic clogs / Drain3 (after warm-up) | incidents per hour clogs / Drain3 "
          "(after warm-up) |")
    print("|---|---|---|---|---|---|")
    for name, row in report["programs"].items():
        ours, theirs = row["clogs"], row["drain3"]
        ttd = lambda d: ", ".join("-" if t is None else f"{t:g}" for t in d["time_to_detect_s"])   # noqa: E731
        pair = lambda key: (f"{ours[key]:g} / {theirs[key]:g} ({ours[key + '_after_warmup']:g} / "   # noqa: E731
                            f"{theirs[key + '_after_warmup']:g})")
        print(f"| {name} | {row['lines']} / {row['events']} | {ours['detected']}/{ours['episodes']} / "
              f"{theirs['detected']}/{theirs['episodes']} | {ttd(ours)} / {ttd(theirs)} | "
              f"{pair('alerts_per_hour_normal')} | {pair('incidents_per_hour_normal')} |")
    for name, row in report["programs"].items():
        print(f"{name}: faults in order {', '.join(row['faults'])}")
        for who in ("clogs", "drain3"):
            for text in row[who]["normal_examples_after_warmup"][:3]:
                print(f"  {who} alert in normal traffic after the warm-up: {text[:140]}")


if __name__ == "__main__":
    main()
