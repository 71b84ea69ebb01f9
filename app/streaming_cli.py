"""Streaming commands of the CLI: topic, ingest, consume (a worker), stream (all three), trainer,
report, feedback.  Each command takes the settings (app/settings.py) with its flags applied;
``consume`` hands them to ``faust -A app worker`` as CLOGS_* variables, so a worker started either
way reads the same settings.
"""
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from app.settings import ROOT, incidents_index, ingest_state_file


def _die(command, exc):
    sys.exit(f"clogs {command}: {exc}")


# --- topic -----------------------------------------------------------------------------
def cmd_topic(args, settings):
    from app.kafka.admin import BrokerUnreachable, cli_topics, ensure_topics
    from app.settings import internal_prefix

    try:
        created = asyncio.run(ensure_topics(settings, args.recreate))
    except BrokerUnreachable as exc:
        _die("topic", exc)
    verb = "recreated" if args.recreate else "ensured"
    print(f"{verb} topics {', '.join(cli_topics(settings))} ({settings.partitions} partitions); "
          f"created now: {', '.join(created) or 'none'}; the worker's own topics are {internal_prefix(settings)}*")


# --- ingest ----------------------------------------------------------------------------
def run_ingest(args, settings):
    """``clogs ingest``: the files under --base-dir once (default), stdin (``clogs ingest -``) or the
    files followed (``--follow``); returns the summary."""
    from app.inputs.ingest import ingest, ingest_follow, ingest_stream
    from app.kafka.admin import BrokerUnreachable

    if getattr(args, "rate", 0):
        args.delay = 1.0 / args.rate
    source_input = getattr(args, "input", None)
    follow = getattr(args, "follow", False) or getattr(args, "follow_for", None) is not None
    if source_input not in (None, "-"):
        _die("ingest", f"unknown input {source_input!r}: `-` reads stdin; files come from --base-dir/--pattern")
    if source_input == "-" and follow:
        _die("ingest", "`-` (stdin) and --follow exclude each other")

    async def go():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if source_input == "-" or follow:   # a clean stop: flush, and save the state when following
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        if source_input == "-":
            return await ingest_stream(settings, sys.stdin.buffer, args.source, args.delay, args.batch, stop=stop)
        if follow:
            from app.inputs.follow import default_pattern

            print(f"following {args.pattern or default_pattern(args.base_dir)} under {args.base_dir} (state: "
                  f"{args.state_file or ingest_state_file(settings)}; Ctrl-C stops)", flush=True)
            return await ingest_follow(settings, args.base_dir, args.pattern, args.state_file, args.follow_for, stop,
                                       args.delay, args.batch, args.from_end)
        return await ingest(settings, args.base_dir, args.pattern, args.delay, args.batch)

    try:
        summary = asyncio.run(go())
    except (BrokerUnreachable, FileNotFoundError) as exc:
        _die("ingest", exc)
    dead = ", ".join(f"{k}: {v}" for k, v in summary["dead_lettered"].items()) or "none"
    origin = "stdin" if source_input == "-" else f"{summary['files']} files"
    print(f"ingested {summary['lines']} lines ({summary['bytes'] / 1e6:.2f} MB) from {origin} in "
          f"{summary['seconds']:.1f} s = {summary['rate']:,.0f} lines/s; dead-lettered: {dead}")
    for source, count in sorted(summary["sources"].items()):
        print(f"  {source}: {count} lines")
    if summary.get("state_file"):
        print(f"positions saved in {summary['state_file']}")
    return summary


def cmd_ingest(args, settings):
    run_ingest(args, settings)


# --- consume (a worker) ----------------------------------------------------------------
def worker_env(settings):
    """The environment of a worker process: these settings as CLOGS_* variables."""
    return {**os.environ, **settings.as_env()}


def worker_command(args, settings):
    faust = str(Path(sys.executable).parent / "faust")
    if not Path(faust).exists():
        faust = "faust"
    return [faust, "-A", "app", "worker", "-l", args.loglevel, "--web-port", str(settings.web_port),
            "--web-host", settings.web_host]


def preflight(settings):
    """Fail fast, naming the fix: no checkpoint, an unknown time zone, or no broker."""
    from app.kafka.admin import BrokerUnreachable, admin_client
    from model import checkpoint
    from model.eventtime import checked_zone

    folder = Path(settings.checkpoint_dir)
    for name in (checkpoint.MODEL_FILE, checkpoint.VOCAB_FILE, checkpoint.CONFIG_FILE):
        if not (folder / name).is_file():
            _die("consume", f"checkpoint file missing: {folder / name}; {checkpoint.FIX}")
    try:
        checked_zone(settings.timezone)
        from model.multiline import assembler_of
        from model.notifications import routes_from

        routes_from(settings)   # a bad CLOGS_NOTIFY_ROUTES file is named now
        assembler_of(settings)  # and a bad CLOGS_MULTILINE_RULES file
    except (ValueError, FileNotFoundError) as exc:
        _die("consume", exc)

    async def probe():
        admin = await admin_client(settings)
        await admin.close()

    try:
        asyncio.run(probe())
    except BrokerUnreachable as exc:
        _die("consume", exc)


def cmd_consume(args, settings):
    preflight(settings)
    command = worker_command(args, settings)
    print("starting worker:", " ".join(command), flush=True)
    os.chdir(ROOT)
    os.execvpe(command[0], command, worker_env(settings))


def start_worker(args, settings, log_path=None):
    """A worker as a child process (for stream and the demo); returns the Popen."""
    preflight(settings)
    out = open(log_path, "ab") if log_path else None
    return subprocess.Popen(worker_command(args, settings), env=worker_env(settings), cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT if out else None, start_new_session=True)


def wait_for_web(settings, timeout=120, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the worker exited with code {proc.returncode} while starting")
        try:
            from app.webauth import auth_headers

            request = urllib.request.Request(f"http://{settings.web_host}:{settings.web_port}/health",
                                             headers=auth_headers(settings.web_token))
            with urllib.request.urlopen(request, timeout=2) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the worker's web server did not answer on port {settings.web_port} within {timeout} s")


def stop_worker(proc, timeout=60):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- stream ----------------------------------------------------------------------------
def wait_until_indexed(settings, expected, timeout=600, progress=True):
    """Poll Elasticsearch until the index holds `expected` documents; returns the count."""
    from tqdm import tqdm

    from app.outputs.elastic import sync_client

    es = sync_client(settings)
    index = settings.index
    deadline = time.monotonic() + timeout
    count = 0
    with tqdm(total=expected, desc="indexed", unit=" docs", disable=not progress) as bar:
        while time.monotonic() < deadline:
            try:
                es.indices.refresh(index=index)
                count = es.count(index=index)["count"]
            except Exception:  # index not created yet
                count = 0
            bar.update(count - bar.n)
            if count >= expected:
                return count
            time.sleep(1.0)
    return count


def cmd_stream(args, settings):
    cmd_topic(args, settings)
    proc = start_worker(args, settings)
    try:
        wait_for_web(settings, proc=proc)
        print(f"worker up: http://{settings.web_host}:{settings.web_port}/stats/")
        summary = run_ingest(args, settings)
        if args.until_indexed:
            expected = summary["lines"] if not args.anomalies_only else 0
            count = wait_until_indexed(settings, expected)
            print(f"{count} documents in index {settings.index}")
            print_report(settings, args.top)
        else:
            print("ingest done; the worker keeps running (Ctrl-C stops it)")
            proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_worker(proc)


# --- trainer ---------------------------------------------------------------------------
def cmd_trainer(args, settings):
    from app.trainer import main as trainer_main

    trainer_main(["--once"] * args.once + (["--broker", args.broker] if args.broker else []))


# --- report and feedback -----------------------------------------------------------------
def print_incidents(settings, status="open", source=None, size=200, min_severity=0):
    """Incidents, the most severe first, then the newest; returns them."""
    from app.outputs.elastic import async_client
    from app.outputs.queries import incidents

    index = incidents_index(settings)

    async def fetch():
        es = async_client(settings)
        try:
            if await es.indices.exists(index=index):
                await es.indices.refresh(index=index)
            return await incidents(es, index, status, source, size, min_severity)
        finally:
            await es.close()

    found = asyncio.run(fetch())
    print(f"\n{len(found)} {status if status != 'all' else ''} incidents in {index}"
          f"{' for ' + source if source else ''}{f' of severity {min_severity}+' if min_severity else ''}, "
          "the most severe first")
    for i in found:
        severity = (i.get("event") or {}).get("severity")
        band = i.get("severity_band") or "-"
        score = f"{i['max_score']:.2f}" if i.get("max_score") is not None else "-"
        print(f"\n  {'-' if severity is None else severity:>3} {band:<8} {i['source']}  {i['incident_id']}  "
              f"{i['kind']:<7} {i['status']:<12} x{i['count']:<5} max {score:<6} "
              f"first {i['first_seen'][:19]}  last {i['last_seen'][:19]}")
        print(f"      {i['summary'][:150]}")
        for example in (i.get("examples") or [])[:2]:
            print(f"      e.g. {example['message'][:140]}")
    return found


def print_report(settings, top=5):
    from app.outputs.elastic import sync_client

    es = sync_client(settings)
    index = settings.index
    es.indices.refresh(index=index)
    aggs = es.search(index=index, size=0, aggs={"sources": {"terms": {"field": "source", "size": 100}, "aggs": {
        "anomalies": {"filter": {"term": {"is_anomaly": True}}}}}})["aggregations"]["sources"]["buckets"]
    print(f"\nindex {index}: {sum(b['doc_count'] for b in aggs)} lines from {len(aggs)} sources")
    for bucket in aggs:
        source = bucket["key"]
        print(f"\n== {source}: {bucket['doc_count']} lines, {bucket['anomalies']['doc_count']} anomalies")
        hits = es.search(index=index, size=top, sort=[{"anomaly_score": "desc"}],
                         query={"bool": {"filter": [{"term": {"source": source}}, {"term": {"is_anomaly": True}}]}})
        for hit in hits["hits"]["hits"]:
            d = hit["_source"]
            print(f"  {d['anomaly_score']:7.2f} > {d['threshold_used']:.2f} ({d['threshold_mode']}) "
                  f"{d['log']['file']['path']}:{d['line_no']} [{', '.join(d['top_tokens'])}] {d['message'][:90]}")


def cmd_report(args, settings):
    if args.lines:
        print_report(settings, args.top)
    else:
        print_incidents(settings, args.status, args.source, min_severity=args.min_severity)


def cmd_feedback(args, settings):
    from app.kafka.admin import BrokerUnreachable
    from app.outputs.elastic import async_client
    from app.outputs.queries import feedback_message, find_incident, send_feedback

    async def go():
        es = async_client(settings)
        try:
            incident = await find_incident(es, incidents_index(settings), args.incident_id)
        finally:
            await es.close()
        if incident is None:
            raise LookupError(f"no incident {args.incident_id!r} in {incidents_index(settings)} "
                              "(`clogs report` lists them)")
        key, value = feedback_message(incident, args.action, args.duration)
        await send_feedback(settings, key, value)
        return incident, value

    try:
        incident, value = asyncio.run(go())
    except (LookupError, ValueError, BrokerUnreachable) as exc:
        _die("feedback", exc)
    until = f" until {value['until']}" if value["until"] else ""
    print(f"sent: {args.action} for incident {incident['incident_id']} of {incident['source']} "
          f"({incident['kind']}: {incident['summary'][:80]}){until}; the worker that owns the source applies it")


# --- argument parsing ------------------------------------------------------------------
def _kafka_flags(p, settings):
    p.add_argument("--broker", default=None, help=f"Kafka (CLOGS_BROKER, default {settings.broker})")
    p.add_argument("--topic", default=None, help=f"log topic (CLOGS_TOPIC, default {settings.topic})")


def _ingest_flags(p):
    p.add_argument("--base-dir", default="data/kafka", help="folder holding log-<source>/ folders")
    p.add_argument("--pattern", default=None,
                   help="globs under --base-dir, ','-separated (default: *.txt, *.log, *.json, *.jsonl, *.ndjson "
                        "in its log-* folders, or anywhere under it when it has none)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds between lines, kept on average (0 = full speed)")
    p.add_argument("--rate", type=float, default=0.0, help="lines per second, kept on average (sets --delay to 1/rate)")
    p.add_argument("--batch", type=int, default=1000, help="lines in flight before waiting for the broker")


def _ingest_input_flags(p, settings):
    p.add_argument("input", nargs="?", default=None, metavar="-",
                   help="`-` reads lines from stdin (source: --source) instead of the files under --base-dir")
    p.add_argument("--source", default="stdin", help="the source of the lines read from stdin (default stdin)")
    p.add_argument("--follow", action="store_true", help="follow the files as tail -F does (new lines, rotation, "
                   "truncation, new files) until SIGINT/SIGTERM; positions are kept in --state-file")
    p.add_argument("--follow-for", type=float, default=None, metavar="SECONDS",
                   help="follow for this long, then stop cleanly (implies --follow)")
    p.add_argument("--state-file", default=None, help="where --follow keeps each file's position "
                   f"(default {ingest_state_file(settings)})")
    p.add_argument("--from-end", action="store_true", help="with --follow and no saved position: start the files "
                   "already there at their end (files created later are read from their start)")


def _worker_flags(p, settings):
    p.add_argument("--app-id", default=None, help=f"Faust app id (CLOGS_APP_ID, default {settings.app_id})")
    p.add_argument("--index", default=None, help=f"Elasticsearch index (CLOGS_INDEX, default {settings.index})")
    p.add_argument("--es-url", default=None, help=f"Elasticsearch (CLOGS_ES_URL, default {settings.es_url})")
    p.add_argument("--checkpoint-dir", default=None, help=f"model (CLOGS_CHECKPOINT_DIR, default {settings.checkpoint_dir})")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--factor", type=float, default=None, help=f"dynamic threshold = mean + factor x std "
                       f"(CLOGS_FACTOR, default {settings.factor})")
    group.add_argument("--threshold", type=float, default=None, help="fixed threshold (CLOGS_THRESHOLD)")
    p.add_argument("--warmup-lines", type=int, default=None, help="lines before a source's own statistics are used")
    p.add_argument("--no-learning", action="store_true", help="static mode: no online learning (CLOGS_LEARNING=0)")
    p.add_argument("--learning-lines", type=int, default=None, help="a new source's learning period, in lines "
                   f"(CLOGS_LEARNING_LINES, default {settings.learning_lines})")
    p.add_argument("--anomalies-only", action="store_true", help="index only anomalies")
    p.add_argument("--web-port", type=int, default=None, help=f"worker web port (CLOGS_WEB_PORT, default {settings.web_port})")
    p.add_argument("--data-dir", default=None, help="folder for the workers' table state (CLOGS_DATA_DIR)")
    p.add_argument("--partitions", type=int, default=None, help=f"partitions (CLOGS_PARTITIONS, default {settings.partitions})")
    p.add_argument("--loglevel", default="info")


def add_streaming_commands(sub, settings):
    p = sub.add_parser("topic", help="ensure (or --recreate) the log, anomalies and dead-letter topics")
    _kafka_flags(p, settings)
    p.add_argument("--app-id", default=None)
    p.add_argument("--partitions", type=int, default=None)
    p.add_argument("--recreate", action="store_true", help="delete the topics, the app's internal topics and "
                   "the local table state first")
    p.set_defaults(func=cmd_topic)

    p = sub.add_parser("ingest", help="send every line of the log files (or stdin: `-`; or --follow them) "
                       "to the log topic (key = source)")
    _kafka_flags(p, settings)
    _ingest_flags(p)
    _ingest_input_flags(p, settings)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("consume", help="start a worker (faust -A app worker) with these settings")
    _kafka_flags(p, settings)
    _worker_flags(p, settings)
    p.set_defaults(func=cmd_consume)

    p = sub.add_parser("stream", help="topic + worker + ingest in one command")
    _kafka_flags(p, settings)
    _ingest_flags(p)
    _worker_flags(p, settings)
    p.add_argument("--recreate", action="store_true")
    p.add_argument("--until-indexed", action="store_true", help="stop once every line is in Elasticsearch, "
                   "then print a report")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("trainer", help="the continual trainer: retrain on the reservoir, publish models "
                       "(workers start one each by default, CLOGS_TRAINER=auto)")
    p.add_argument("--broker", default=None, help=f"Kafka (CLOGS_BROKER, default {settings.broker})")
    p.add_argument("--once", action="store_true", help="retrain once when enough samples are there, then exit")
    p.set_defaults(func=cmd_trainer)

    p = sub.add_parser("report", help="open incidents, the most severe first, then the newest (--lines: the top "
                       "anomalous lines per source)")
    p.add_argument("--status", default="open", help="open (default), acknowledged, normal, suppressed, active, all")
    p.add_argument("--source", default=None, help="only this source's incidents")
    p.add_argument("--min-severity", type=int, default=0, metavar="0-100",
                   help="only incidents at least this severe (25 minor, 50 major, 75 critical)")
    p.add_argument("--lines", action="store_true", help="the top anomalous lines per source instead")
    p.add_argument("--index", default=None)
    p.add_argument("--es-url", default=None, help=f"Elasticsearch (CLOGS_ES_URL, default {settings.es_url})")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("feedback", help="an operator's word on an incident: normal, suppress --for 2h, ack, reopen")
    p.add_argument("action", choices=["normal", "suppress", "ack", "reopen"])
    p.add_argument("incident_id")
    p.add_argument("--for", dest="duration", default="2h", help="how long a suppression lasts (90s, 30m, 2h, 1d)")
    p.add_argument("--app-id", default=None, help=f"the workers' app id (CLOGS_APP_ID, default {settings.app_id})")
    p.add_argument("--broker", default=None, help=f"Kafka (CLOGS_BROKER, default {settings.broker})")
    p.add_argument("--es-url", default=None, help=f"Elasticsearch (CLOGS_ES_URL, default {settings.es_url})")
    p.set_defaults(func=cmd_feedback)
