"""clogs' configuration: one immutable ``Settings``, built once from the CLOGS_* environment
variables (``Settings.from_env``) and the command line's flags (``Settings.replace``), then handed
to whatever needs it; and the one function for each derived name (topics, indices, groups, folders).

Standard library only: ``scripts/services`` reads it before any package is installed.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional

ROOT = Path(__file__).resolve().parent.parent
FALSE_WORDS = ("0", "false", "no", "off")
REDACT_ALIASES = {"0": "off", "false": "off", "no": "off", "none": "off",
                  "1": "secrets", "true": "secrets", "yes": "secrets", "secret": "secrets"}


class SettingsError(ValueError):
    """A setting with a value clogs cannot use; the message names the variable."""


def _setting(default, env=None, choices=None, low=None, aliases=None, help=""):
    """A field of ``Settings``: its env variable (CLOGS_ + its upper-case name unless ``env``), the
    values it may take (``aliases``: other words for them) and its smallest value."""
    return field(default=default, metadata={"env": env, "choices": choices, "low": low, "aliases": aliases or {},
                                            "help": help})


@dataclass(frozen=True)
class Settings:
    # --- Kafka / Faust ---------------------------------------------------------------
    broker: str = _setting("kafka://127.0.0.1:9092")
    kafka_security_protocol: str = _setting("PLAINTEXT", choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))
    kafka_sasl_mechanism: str = _setting("SCRAM-SHA-256", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
    kafka_username: Optional[str] = _setting(None)
    kafka_password: Optional[str] = _setting(None)
    kafka_ca_file: Optional[str] = _setting(None)
    kafka_cert_file: Optional[str] = _setting(None)
    kafka_key_file: Optional[str] = _setting(None)
    kafka_check_hostname: bool = _setting(True)
    app_id: str = _setting("clogs")
    topic: str = _setting("clogs-logs", help="the log topic")
    partitions: int = _setting(4, low=1)
    anomalies_topic: Optional[str] = _setting(None, help="default: <topic>-anomalies")
    deadletter_topic: Optional[str] = _setting(None, help="default: <topic>-deadletter")
    web_host: str = _setting("127.0.0.1")
    web_port: int = _setting(6066, low=1)
    web_token: Optional[str] = _setting(None, help="when set, every web page needs it")
    data_dir: str = _setting(str(ROOT / ".clogs-data"), help="table state, one folder per app id and web port")
    table_store: str = _setting("rocksdb://", env="CLOGS_STORE")
    session_timeout: float = _setting(30.0, low=1, help="seconds before a killed worker's partitions move")
    batch_size: int = _setting(1024, low=1, help="lines the scoring agent takes at a time (at most)")
    batch_timeout: float = _setting(0.2, low=0, help="seconds an agent waits to fill a batch")
    scored_buffer: int = _setting(32, low=1, help="scored batches waiting for the threshold agent")
    fetch_max_wait: float = _setting(0.1, low=0, help="seconds the broker may hold the worker's fetch")
    producer_linger: float = _setting(0.01, low=0)
    producer_batch_bytes: int = _setting(1_000_000, low=1)
    max_line_bytes: int = _setting(1_000_000, low=1, help="longer records are dead-lettered")
    multiline_timeout: float = _setting(1.0, low=0.01, help="seconds of quiet that complete a multi-line event")
    multiline_max_lines: int = _setting(500, low=1, help="lines of one event (the rest: a following event)")
    multiline_rules: Optional[str] = _setting(None, help="a JSON rules file whose \"multiline\" list holds "
                                                         "per-source rules (pattern, negate, match, ...)")
    source_field: str = _setting("", help="shippers' records: dotted field paths of the source, ','-separated")
    source_header: str = _setting("source", help="... or this Kafka header ('' = off)")
    # --- Elasticsearch and what leaves clogs ------------------------------------------
    es_url: str = _setting("http://127.0.0.1:9200")
    es_user: Optional[str] = _setting(None)
    es_password: Optional[str] = _setting(None)
    es_api_key: Optional[str] = _setting(None)
    es_ca_certs: Optional[str] = _setting(None)
    index: str = _setting("mozilla-clogs-index")
    incidents_index: Optional[str] = _setting(None, help="default: <index>-incidents")
    es_blocked_probe: float = _setting(15.0, low=0.1, help="seconds between tries while writes are refused")
    es_refresh_interval: str = _setting("1s")
    anomalies_only: bool = _setting(False)
    redact: str = _setting("all", choices=("off", "secrets", "all"), aliases=REDACT_ALIASES,
                           help="all: secrets and personal data (e-mails, card numbers, IBANs)")
    redact_rules: Optional[str] = _setting(None, help="a JSON file of extra redaction rules")
    metrics_sources: int = _setting(50, low=1, help="sources with a label of their own on /metrics; the rest: other")
    # --- Notifications of incident changes (model/notifications.py, agents/notify.py) -----
    webhook_url: Optional[str] = _setting(None, help="a generic JSON webhook: setting it is enough to start")
    webhook_secret: Optional[str] = _setting(None, help="HMAC-SHA256 key of the X-Clogs-Signature header")
    slack_webhook_url: Optional[str] = _setting(None, help="a Slack incoming webhook")
    alertmanager_url: Optional[str] = _setting(None, help="Prometheus Alertmanager (POST /api/v2/alerts)")
    notify_routes: Optional[str] = _setting(None, help="a JSON file of routes: [{target, url, min_severity, sources}]")
    notify_min_severity: int = _setting(25, low=0, help="the least severity notified (25: minor and above)")
    notify_sources: str = _setting("", help="shell patterns of the sources notified, ','-separated (empty: all)")
    notify_group_seconds: float = _setting(2.0, low=0, help="a source's changes within this window are one message")
    notify_retries: int = _setting(8, low=0, help="tries after the first on connection errors, 429 and 5xx")
    alertmanager_hold_seconds: float = _setting(86400.0, low=60, help="an open incident's alert fires this long "
                                                "unless it changes (its endsAt)")
    dashboard_url: Optional[str] = _setting(None, help="the dashboard's address in notifications "
                                            "(default: http://<web host>:<web port>/)")
    timezone: str = _setting("UTC", help="the zone of line timestamps that state none (IANA name)")
    # --- Incidents, rate and silence --------------------------------------------------
    incident_examples: int = _setting(5, low=0)
    incidents_per_source: int = _setting(500, low=1, help="a source's incidents waiting to resolve, at most")
    resolve_content_seconds: float = _setting(3600.0, low=0, help="a content incident resolves this long (of "
                                              "its source's event time) after its last line")
    resolve_rate_seconds: float = _setting(900.0, low=0, help="a rate incident resolves this long after its last burst")
    incident_retention_seconds: float = _setting(7 * 86400.0, low=0, help="a resolved incident leaves the table "
                                                 "and the index this long after it resolved")
    rate_window: float = _setting(60.0, low=1)
    rate_history: int = _setting(60, low=1)
    rate_min_windows: int = _setting(10, low=1)
    rate_factor: float = _setting(4.0, low=0)
    rate_ratio: float = _setting(3.0, low=0)
    silence_factor: float = _setting(5.0, low=0)
    silence_min_seconds: float = _setting(120.0, low=0)
    tick_seconds: float = _setting(5.0, low=0.1)
    # --- Model and thresholds ----------------------------------------------------------
    checkpoint_dir: str = _setting("checkpoints")
    factor: float = _setting(3.0, low=0)
    threshold: Optional[float] = _setting(None, help="unset: the dynamic per-source threshold")
    warmup_lines: int = _setting(200, low=0)
    device: str = _setting("cpu")
    torch_threads: int = _setting(0, low=0, help="0 = torch's default")
    scorer_precision: str = _setting("fp32", choices=("fp32", "bf16"))
    gc_threshold: int = _setting(50_000, low=1, help="allocations between the worker's young collections")
    # --- Online learning --------------------------------------------------------------
    learning: bool = _setting(True)
    learning_lines: int = _setting(200, low=0)
    learning_factor: float = _setting(6.0, low=0)
    decay_info: float = _setting(2.0, low=0)
    decay_warning: float = _setting(1.0, low=0)
    info_weight: float = _setting(0.5, low=0)
    window_lines: int = _setting(50, low=1)
    memory_patterns: int = _setting(2000, low=1)
    memory_tokens: int = _setting(2000, low=1)
    reservoir_lines: int = _setting(500, low=0)
    trainer: str = _setting("auto", choices=("auto", "off"))
    retrain_seconds: float = _setting(300.0, low=0)
    retrain_min_new: int = _setting(1000, low=1)
    retrain_min_samples: int = _setting(1000, low=1)
    retrain_epochs: int = _setting(6, low=1)
    trainer_nice: int = _setting(10)
    # --- Local services (scripts/services) --------------------------------------------
    services_dir: str = _setting(str(ROOT / ".services"))
    kafka_port: int = _setting(9092, low=1)
    kafka_controller_port: int = _setting(9093, low=1)
    kafka_heap: str = _setting("512m")
    kafka_properties: Optional[str] = _setting(None, help="a file of extra server.properties lines")
    kafka_scram: str = _setting("", help="SCRAM users made at format time, ';'-separated")
    es_port: int = _setting(9200, low=1)
    es_transport_port: int = _setting(9300, low=1)
    es_heap: str = _setting("1g")
    es_settings: str = _setting("", help="extra node settings, 'key=value,key=value'")
    services_timeout: int = _setting(120, low=1)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value is None:
                continue
            if meta["choices"] and value not in meta["choices"]:
                raise SettingsError(f"{env_name(f)}={value!r}: one of {', '.join(meta['choices'])}")
            if meta["low"] is not None and value < meta["low"]:
                raise SettingsError(f"{env_name(f)}={value!r}: at least {meta['low']}")
        if self.threshold is not None and self.threshold != self.threshold:
            raise SettingsError("CLOGS_THRESHOLD: not a number")
        es_node_settings(self)   # a bad CLOGS_ES_SETTINGS is named now, not when the node starts

    @classmethod
    def from_env(cls, environ=None, **overrides):
        """The settings of the CLOGS_* variables of ``environ`` (the process's by default), then
        ``overrides`` (flags; None = not given).  A value that cannot be used raises SettingsError
        naming the variable."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            text = environ.get(env_name(f))
            if text is not None and text != "":
                values[f.name] = _parse(f, text)
        return cls(**values).replace(**overrides)

    def replace(self, **overrides):
        """These settings with the given values (None: keep) -- the command line's flags."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self

    def as_env(self):
        """The CLOGS_* variables that give these settings (for a worker started as a process)."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                env[env_name(f)] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return env


def env_name(f):
    """The environment variable of a ``Settings`` field."""
    return f.metadata.get("env") or "CLOGS_" + f.name.upper()


def env_names():
    """Every CLOGS_* variable clogs reads."""
    return [env_name(f) for f in dataclasses.fields(Settings)]


def _parse(f, text):
    kind = {bool: bool, int: int, float: float, Optional[float]: float}.get(f.type, str)
    choices = f.metadata["choices"]
    if choices:
        text = text.strip()
        text = f.metadata["aliases"].get(text.lower(), text.upper() if all(c.isupper() for c in choices) else text)
    if kind is bool:
        return text.strip().lower() not in FALSE_WORDS
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{env_name(f)}={text!r}: not {what}") from None


# --- derived names: each made here and nowhere else -----------------------------------
class Topics(NamedTuple):
    log: str          # raw lines, key = source (made by `clogs topic`)
    anomalies: str    # alerts: flagged lines and incidents
    deadletter: str   # bad records with their reason
    scored: str       # scoring agent -> threshold agent
    results: str      # what ticks and feedback change -> the sink agent
    reservoir: str    # sampled normal lines -> the trainer (compacted)
    models: str       # published checkpoints -> the workers (compacted)
    ticks: str        # the timer's ticks, per source
    feedback: str     # operators' feedback, per source
    notifications: str   # incident changes to tell -> the notifier agent


TABLES = ("source-stats", "source-memory", "incidents", "source-incidents", "source-rate", "source-line-counts",
          "notifications-sent", "assembled")


def topics(settings):
    """Every topic of an app: the log, anomalies and dead-letter topics (settings of their own,
    derived from the log topic by default) and the app's internal topics (derived from its id)."""
    internal = {name: f"{settings.app_id}-{name}"
                for name in ("scored", "results", "reservoir", "models", "ticks", "feedback", "notifications")}
    return Topics(log=settings.topic, anomalies=settings.anomalies_topic or f"{settings.topic}-anomalies",
                  deadletter=settings.deadletter_topic or f"{settings.topic}-deadletter", **internal)


def changelog_topic(settings, table):
    """The changelog topic Faust gives a table of the app."""
    return f"{settings.app_id}-{table}-changelog"


def internal_prefix(settings):
    """The prefix of every topic the app makes for itself."""
    return f"{settings.app_id}-"


def dashboard_url(settings):
    return settings.dashboard_url or f"http://{settings.web_host}:{settings.web_port}/"


def incidents_index(settings):
    return settings.incidents_index or f"{settings.index}-incidents"


def trainer_group(settings):
    """The consumer group of the trainers (one of them leads); the workers' group is the app id."""
    return f"{settings.app_id}-trainer"


def worker_datadir(settings):
    """Each worker keeps its table state in its own folder (RocksDB allows one process per folder)."""
    return str(Path(settings.data_dir) / f"{settings.app_id}-{settings.web_port}")


def worker_datadirs(settings):
    """The table-state folders of every worker of the app on this machine."""
    return sorted(Path(settings.data_dir).glob(f"{settings.app_id}-*"))


def models_dir(settings):
    """Where the trainer keeps the checkpoints it made."""
    return Path(settings.data_dir) / "models" / settings.app_id


def ingest_state_file(settings):
    """Where ``clogs ingest --follow`` keeps each file's position by default."""
    return str(Path(settings.data_dir) / "ingest-state.json")


def kafka_bootstrap(settings):
    """`kafka://h1:9092;h2:9092` (Faust's form) -> `h1:9092,h2:9092` (aiokafka's form)."""
    servers = []
    for part in settings.broker.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            servers.append(part)
    return ",".join(servers)


def es_node_settings(settings):
    """CLOGS_ES_SETTINGS as a list of "key=value" strings for the local Elasticsearch."""
    pairs = [p.strip() for p in settings.es_settings.split(",") if p.strip()]
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise SettingsError(f"CLOGS_ES_SETTINGS: not key=value: {', '.join(bad)}")
    return pairs
