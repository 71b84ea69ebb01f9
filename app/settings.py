"""All of clogs' configuration, in one place.

Every setting is read from an environment variable prefixed ``CLOGS_`` with a default
that works on a laptop with the local services (``scripts/services up``).  Command-line
flags override these values (see ``app.cli``).  This module imports nothing outside the
standard library so that ``scripts/services`` can read it before any package is installed.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env(name, default):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _env_float(name, default):
    value = _env(name, None)
    return default if value is None else float(value)


def _env_int(name, default):
    value = _env(name, None)
    return default if value is None else int(value)


# --- Kafka / Faust ---------------------------------------------------------------
BROKER = _env("CLOGS_BROKER", "kafka://127.0.0.1:9092")
KAFKA_SECURITY_PROTOCOL = _env("CLOGS_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")  # app/kafka_security.py
KAFKA_SASL_MECHANISM = _env("CLOGS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
KAFKA_USERNAME = _env("CLOGS_KAFKA_USERNAME", None)
KAFKA_PASSWORD = _env("CLOGS_KAFKA_PASSWORD", None)
KAFKA_CA_FILE = _env("CLOGS_KAFKA_CA_FILE", None)
KAFKA_CERT_FILE = _env("CLOGS_KAFKA_CERT_FILE", None)
KAFKA_KEY_FILE = _env("CLOGS_KAFKA_KEY_FILE", None)
KAFKA_CHECK_HOSTNAME = _env("CLOGS_KAFKA_CHECK_HOSTNAME", "1") not in ("0", "false", "no")
APP_ID = _env("CLOGS_APP_ID", "clogs")
TOPIC = _env("CLOGS_TOPIC", "clogs-logs")
PARTITIONS = _env_int("CLOGS_PARTITIONS", 4)
WEB_HOST = _env("CLOGS_WEB_HOST", "127.0.0.1")
WEB_PORT = _env_int("CLOGS_WEB_PORT", 6066)
WEB_TOKEN = _env("CLOGS_WEB_TOKEN", None)  # when set, every web page needs it (app/webauth.py)
DATA_DIR = _env("CLOGS_DATA_DIR", str(ROOT / ".clogs-data"))  # one sub-folder per app id and web port
TABLE_STORE = _env("CLOGS_STORE", "rocksdb://")
SESSION_TIMEOUT = _env_float("CLOGS_SESSION_TIMEOUT", 30.0)  # a killed worker's partitions move after this
ANOMALIES_TOPIC = _env("CLOGS_ANOMALIES_TOPIC", TOPIC + "-anomalies")
DEADLETTER_TOPIC = _env("CLOGS_DEADLETTER_TOPIC", TOPIC + "-deadletter")

# --- Elasticsearch -----------------------------------------------------------------
ES_URL = _env("CLOGS_ES_URL", "http://127.0.0.1:9200")
ES_USER = _env("CLOGS_ES_USER", None)
ES_PASSWORD = _env("CLOGS_ES_PASSWORD", None)
ES_API_KEY = _env("CLOGS_ES_API_KEY", None)
ES_CA_CERTS = _env("CLOGS_ES_CA_CERTS", None)
INDEX = _env("CLOGS_INDEX", "mozilla-clogs-index")
ES_BLOCKED_PROBE = _env_float("CLOGS_ES_BLOCKED_PROBE", 15.0)  # seconds between tries while writes are refused
ES_REFRESH_INTERVAL = _env("CLOGS_ES_REFRESH_INTERVAL", "1s")   # of the indices clogs creates: how soon a line is searchable
INCIDENTS_INDEX = _env("CLOGS_INCIDENTS_INDEX", INDEX + "-incidents")
ANOMALIES_ONLY = _env("CLOGS_ANOMALIES_ONLY", "0") not in ("0", "false", "no")
TIMEZONE = _env("CLOGS_TIMEZONE", "UTC")   # the zone of line timestamps that state none (IANA name)

# --- Incidents, rate and silence (model/incidents.py, model/rates.py) -----------------
INCIDENT_EXAMPLES = _env_int("CLOGS_INCIDENT_EXAMPLES", 5)       # example lines kept per incident
INCIDENTS_PER_SOURCE = _env_int("CLOGS_INCIDENTS_PER_SOURCE", 500)  # least recently seen forgotten first
RATE_WINDOW = _env_float("CLOGS_RATE_WINDOW", 60.0)       # seconds per tumbling window of line counts
RATE_HISTORY = _env_int("CLOGS_RATE_HISTORY", 60)         # windows kept in the windowed table
RATE_MIN_WINDOWS = _env_int("CLOGS_RATE_MIN_WINDOWS", 10)  # a source's usual rate is known after this many
RATE_FACTOR = _env_float("CLOGS_RATE_FACTOR", 4.0)        # burst: above mean + this x std of window counts
RATE_RATIO = _env_float("CLOGS_RATE_RATIO", 3.0)          # ... and above this x the mean
SILENCE_FACTOR = _env_float("CLOGS_SILENCE_FACTOR", 5.0)  # silence: no line for this x the usual longest gap
SILENCE_MIN_SECONDS = _env_float("CLOGS_SILENCE_MIN_SECONDS", 120.0)
TICK_SECONDS = _env_float("CLOGS_TICK_SECONDS", 5.0)      # how often silence and closed windows are checked

# --- Model and thresholds ----------------------------------------------------------
CHECKPOINT_DIR = _env("CLOGS_CHECKPOINT_DIR", "checkpoints")
FACTOR = _env_float("CLOGS_FACTOR", 3.0)
THRESHOLD = _env("CLOGS_THRESHOLD", None)  # unset = dynamic per-source threshold
THRESHOLD = None if THRESHOLD is None else float(THRESHOLD)
WARMUP_LINES = _env_int("CLOGS_WARMUP_LINES", 200)
DEVICE = _env("CLOGS_DEVICE", "cpu")
TORCH_THREADS = _env_int("CLOGS_TORCH_THREADS", 0)  # 0 = torch's default
# fp32 (exact) or bf16 (the output projection in bfloat16: faster, scores within ~0.01; model/scoring.py)
SCORER_PRECISION = _env("CLOGS_SCORER_PRECISION", "fp32")
# The worker's garbage collector: allocations between young collections (Python's default is 700).
# The worker allocates a dict per line per stage and keeps large long-lived structures (the scoring
# cache, tables): at the default, collections took a fifth of its time (issue 11).
GC_THRESHOLD = _env_int("CLOGS_GC_THRESHOLD", 50_000)
BATCH_SIZE = _env_int("CLOGS_BATCH_SIZE", 1024)     # lines the scoring agent takes at a time (at most)
# The Kafka producer gathers a partition's messages for up to this long (seconds) and this many
# bytes per request: the agents send several small messages per batch (scored batches, changelogs,
# alerts), one request each at Faust's defaults (0 s, 16 KB) -- issue 11.
PRODUCER_LINGER = _env_float("CLOGS_PRODUCER_LINGER", 0.01)
PRODUCER_BATCH_BYTES = _env_int("CLOGS_PRODUCER_BATCH_BYTES", 1_000_000)
BATCH_TIMEOUT = _env_float("CLOGS_BATCH_TIMEOUT", 0.2)   # seconds an agent waits to fill a batch
# How long the broker may hold the worker's fetch when none of its partitions has new records.  The
# consumer keeps one fetch in flight per broker, and a partition that runs dry waits for it: with
# Faust's 1.5 s, the scored topic's next batches waited up to 1.5 s behind a fetch that only asked
# for log partitions with nothing new (app/faust_fixes.py fix 5, issue 11).
FETCH_MAX_WAIT = _env_float("CLOGS_FETCH_MAX_WAIT", 0.1)
SCORED_BUFFER = _env_int("CLOGS_SCORED_BUFFER", 32)   # scored batches waiting for the threshold agent
MAX_LINE_BYTES = _env_int("CLOGS_MAX_LINE_BYTES", 1_000_000)
SOURCE_FIELD = _env("CLOGS_SOURCE_FIELD", "")   # shippers' records: dotted field paths of the source, ","-separated
SOURCE_HEADER = _env("CLOGS_SOURCE_HEADER", "source")  # ... or this Kafka header ("" = off); agents/parsing.py
REDACT = _env("CLOGS_REDACT", "secrets")        # off | secrets | all (secrets + e-mails, card numbers)
REDACT_RULES = _env("CLOGS_REDACT_RULES", None)  # a JSON file of extra rules (app/redaction.py)

# --- Online learning (model/online.py) ------------------------------------------------
LEARNING = _env("CLOGS_LEARNING", "1") not in ("0", "false", "no")
LEARNING_LINES = _env_int("CLOGS_LEARNING_LINES", 200)      # a new source's learning period
LEARNING_FACTOR = _env_float("CLOGS_LEARNING_FACTOR", 6.0)  # its high bar: calibration mean + this x std
DECAY_INFO = _env_float("CLOGS_DECAY_INFO", 2.0)            # a repeat's score fades as (1 + n) ** -decay
DECAY_WARNING = _env_float("CLOGS_DECAY_WARNING", 1.0)      # ... slower at warning level and above
INFO_WEIGHT = _env_float("CLOGS_INFO_WEIGHT", 0.5)          # share of the content score of info/debug lines
WINDOW_LINES = _env_int("CLOGS_WINDOW_LINES", 50)           # familiarity counts the windows a pattern recurs in
MEMORY_PATTERNS = _env_int("CLOGS_MEMORY_PATTERNS", 2000)   # per source, least recently seen forgotten first
MEMORY_TOKENS = _env_int("CLOGS_MEMORY_TOKENS", 2000)
RESERVOIR_LINES = _env_int("CLOGS_RESERVOIR_LINES", 500)    # per source: the slow path's training sample
TRAINER = _env("CLOGS_TRAINER", "auto")                     # auto: each worker runs a trainer, one leads; off
RETRAIN_SECONDS = _env_float("CLOGS_RETRAIN_SECONDS", 300.0)  # how often the trainer looks for new samples
RETRAIN_MIN_NEW = _env_int("CLOGS_RETRAIN_MIN_NEW", 1000)     # new samples needed for a retrain
RETRAIN_MIN_SAMPLES = _env_int("CLOGS_RETRAIN_MIN_SAMPLES", 1000)  # never a model from a smaller reservoir
RETRAIN_EPOCHS = _env_int("CLOGS_RETRAIN_EPOCHS", 6)
TRAINER_NICE = _env_int("CLOGS_TRAINER_NICE", 10)           # the trainer runs at a lower CPU priority

# --- Local services (scripts/services) ---------------------------------------------
SERVICES_DIR = _env("CLOGS_SERVICES_DIR", str(ROOT / ".services"))
KAFKA_PORT = _env_int("CLOGS_KAFKA_PORT", 9092)
KAFKA_CONTROLLER_PORT = _env_int("CLOGS_KAFKA_CONTROLLER_PORT", 9093)
KAFKA_HEAP = _env("CLOGS_KAFKA_HEAP", "512m")
KAFKA_PROPERTIES = _env("CLOGS_KAFKA_PROPERTIES", None)  # a file of extra server.properties lines
KAFKA_SCRAM = _env("CLOGS_KAFKA_SCRAM", "")  # SCRAM users made at format time, ';'-separated
ES_PORT = _env_int("CLOGS_ES_PORT", 9200)
ES_TRANSPORT_PORT = _env_int("CLOGS_ES_TRANSPORT_PORT", 9300)
ES_HEAP = _env("CLOGS_ES_HEAP", "1g")
ES_SETTINGS = _env("CLOGS_ES_SETTINGS", "")  # extra node settings, "key=value,key=value" (tests: a small
#                                              http.max_content_length)
SERVICES_TIMEOUT = _env_int("CLOGS_SERVICES_TIMEOUT", 120)


def policy_options():
    """Keyword arguments of model.online.Policy: the thresholds and the learning, as configured."""
    return dict(factor=FACTOR, fixed=THRESHOLD, warmup_lines=WARMUP_LINES, learning=LEARNING,
                learning_lines=LEARNING_LINES, learning_factor=LEARNING_FACTOR, decay_info=DECAY_INFO,
                decay_warning=DECAY_WARNING, info_weight=INFO_WEIGHT, max_patterns=MEMORY_PATTERNS,
                max_tokens=MEMORY_TOKENS, reservoir_lines=RESERVOIR_LINES, window=WINDOW_LINES)


def es_node_settings():
    """CLOGS_ES_SETTINGS as a list of "key=value" strings for the local Elasticsearch."""
    pairs = [p.strip() for p in ES_SETTINGS.split(",") if p.strip()]
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise ValueError(f"CLOGS_ES_SETTINGS: not key=value: {', '.join(bad)}")
    return pairs


def rate_options():
    """Keyword arguments of model.rates.RatePolicy, as configured."""
    return dict(window=RATE_WINDOW, history=RATE_HISTORY, min_windows=RATE_MIN_WINDOWS, factor=RATE_FACTOR,
                ratio=RATE_RATIO, silence_factor=SILENCE_FACTOR, silence_min=SILENCE_MIN_SECONDS)


def app_topics(app_id=None):
    """The topics an app derives from its id (the log, anomalies and dead-letter topics have settings
    of their own): derived names live here and nowhere else."""
    app_id = app_id or APP_ID
    return {name: f"{app_id}-{name}" for name in ("scored", "results", "reservoir", "models", "ticks", "feedback")}


def worker_datadir(app_id=None, web_port=None):
    """Each worker keeps its table state in its own folder (RocksDB allows one process per folder)."""
    return str(Path(DATA_DIR) / f"{app_id or APP_ID}-{web_port or WEB_PORT}")


def kafka_bootstrap(broker=None):
    """`kafka://h1:9092;h2:9092` (Faust's form) -> `h1:9092,h2:9092` (aiokafka's form)."""
    broker = broker or BROKER
    servers = []
    for part in broker.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            servers.append(part)
    return ",".join(servers)
