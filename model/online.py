"""Online learning of each source's normal traffic, and the threshold decision over a batch.

``judge_batch`` is the one place where a source's scored lines are decided and then learned from
(prequential, in offset order): the threshold agent, ``clogs evaluate --online`` and the tests call
it.  A line's score fades as its pattern recurs in the source (``online_score``); the threshold's
modes are ``fixed``, ``learning``, ``warmup`` and ``dynamic`` (``decide``).  docs/model.md explains
the score, the guards and the modes.
"""
import hashlib
from dataclasses import dataclass

from .patterns import severity_prior
from .scoring import content_score
from .severity import event_severity
from .state import SourceMemory, Stats


@dataclass(frozen=True)
class Policy:
    factor: float = 3.0
    fixed: float = None
    warmup_lines: int = 200
    learning: bool = True
    learning_lines: int = 200
    learning_factor: float = 6.0
    decay_info: float = 2.0
    decay_warning: float = 1.0
    info_weight: float = 0.5
    max_patterns: int = 2000
    max_tokens: int = 2000
    reservoir_lines: int = 500
    window: int = 50

    @classmethod
    def of(cls, settings, **overrides):
        """The policy that a settings object (app/settings.py ``Settings``) describes."""
        return cls(**{"factor": settings.factor, "fixed": settings.threshold, "warmup_lines": settings.warmup_lines,
                      "learning": settings.learning, "learning_lines": settings.learning_lines,
                      "learning_factor": settings.learning_factor, "decay_info": settings.decay_info,
                      "decay_warning": settings.decay_warning, "info_weight": settings.info_weight,
                      "max_patterns": settings.memory_patterns, "max_tokens": settings.memory_tokens,
                      "reservoir_lines": settings.reservoir_lines, "window": settings.window_lines, **overrides})


@dataclass
class Decision:
    threshold: float
    mode: str
    mean: float
    std: float


def calibration_threshold(calibration, factor):
    """The checkpoint's own threshold: mean + factor x std of its calibration scores (the training
    lines' scores, model/train.py)."""
    return calibration.get("mean", 0.0) + factor * calibration.get("std", 0.0)


def decide(stats, calibration, policy):
    """The threshold for a source's next line, from its statistics and the checkpoint's calibration."""
    cal_mean, cal_std = calibration.get("mean", 0.0), calibration.get("std", 0.0)
    floor = calibration_threshold(calibration, policy.factor)
    if policy.fixed is not None:
        mean, std = (stats.mean, stats.std) if stats.n >= policy.warmup_lines else (cal_mean, cal_std)
        return Decision(policy.fixed, "fixed", mean, std)
    if policy.learning and stats.count < policy.learning_lines:
        bar = max(cal_mean + policy.learning_factor * cal_std,
                  stats.all_mean + policy.learning_factor * stats.all_std)
        return Decision(bar, "learning", stats.all_mean, stats.all_std)
    if stats.n < policy.warmup_lines:
        return Decision(floor, "warmup", cal_mean, cal_std)
    return Decision(max(stats.mean + policy.factor * stats.std, floor), "dynamic", stats.mean, stats.std)


def familiarity(entry, position, window):
    """In how many earlier windows of ``window`` lines the source produced the pattern."""
    if not entry:
        return 0
    return entry[0] - (entry[1] // window == position // window)


def online_score(line, memory, policy, prior_at_fatal, position):
    """(score, familiarity) of a scored line, the source's ``position``-th, given its memory."""
    unlearned = [(penalty, count) for token, penalty, count in line["novel"] if token not in memory.tokens]
    content = content_score(line["base"], line["n_tokens"], unlearned)
    n = familiarity(memory.patterns.get(line["pattern"]), position, policy.window)
    level = line["level"]
    decay = policy.decay_warning if level >= 2 else policy.decay_info
    weight = policy.info_weight if 0 <= level <= 1 else 1.0
    return weight * content * (1 + n) ** -decay + severity_prior(level, prior_at_fatal), n


def learn(memory, line, flagged, position, policy):
    """Count the line's pattern (once per window); learn its out-of-vocabulary tokens only if
    the line was not flagged."""
    seen = memory.patterns.get(line["pattern"])
    if not seen:
        memory.patterns[line["pattern"]] = [1, position]
    else:
        memory.patterns[line["pattern"]] = [seen[0] + (seen[1] // policy.window < position // policy.window),
                                            position]
    if not flagged:
        for token, _, _ in line["novel"]:
            entry = memory.tokens.get(token)
            memory.tokens[token] = [entry[0] + 1 if entry else 1, position]
    forget_least_recent(memory.patterns, policy.max_patterns)
    forget_least_recent(memory.tokens, policy.max_tokens)


def forget_least_recent(entries, cap):
    """Past ``cap`` entries, drop the least recently seen tenth (entries are [count, last_seen])."""
    if len(entries) <= cap:
        return
    keep = int(cap * 0.9)
    for key, _ in sorted(entries.items(), key=lambda kv: kv[1][1])[: len(entries) - keep]:
        del entries[key]


def rebase(stats, model_version, policy):
    """A new model scores on its own scale: the old baseline is kept as a prior worth one warm-up
    (``warmup_lines`` lines), so the threshold neither jumps at the switch nor stays on the old
    scale: the new model's scores take it over within a few hundred lines."""
    if stats.model_version == model_version:
        return stats
    if stats.model_version and stats.n > policy.warmup_lines:
        stats.m2 *= policy.warmup_lines / stats.n
        stats.n = policy.warmup_lines
    stats.model_version = model_version
    return stats


def reservoir_slot(source, candidate, size):
    """Reservoir sampling, deterministic: the slot (0..size-1) the source's ``candidate``-th
    training candidate takes, or None.  The same candidate always gets the same slot, so a replay
    rewrites the same key of the compacted reservoir topic."""
    if candidate < size:
        return candidate
    digest = hashlib.blake2b(f"{source}|{candidate}".encode(), digest_size=8).digest()
    j = int.from_bytes(digest, "big") % (candidate + 1)
    return j if j < size else None


def judge_batch(lines, stats, memory, calibration, policy, prior_at_fatal=0.0, samples=None, marked_normal=None):
    """Decide and learn a source's lines in offset order; returns the result documents.

    ``lines``: scored lines (``scored_line``); ``stats`` and
    ``memory`` are updated in place.  A line counted before (``Stats.replayed``) is a replay: it is
    decided again but neither counted nor learned twice.  With a ``samples`` list, the slow path's
    training candidates are appended to it as (slot, line): lines that were not flagged and whose
    pattern the source had already produced twice (established normal traffic, never a one-off).
    ``marked_normal(pattern)`` -> the id of the incident an operator marked normal for this
    pattern, or None (model/incidents.py): such a line is not flagged and, with learning on, its
    tokens are learned; its score stays out of the baseline.  The document keeps that incident id.
    """
    docs = []
    for line in lines:
        replay = stats.replayed(line["kafka_partition"], line["kafka_offset"])
        if not replay:
            rebase(stats, line["model_version"], policy)
        decision = decide(stats, calibration, policy)
        position = stats.count
        if policy.learning:
            score, seen = online_score(line, memory, policy, prior_at_fatal, position)
        else:
            score, seen = line["anomaly_score"], None
        is_anomaly = score > decision.threshold
        if is_anomaly and policy.learning and not replay and line["pattern"] not in memory.patterns:
            is_anomaly = not calmed(memory, score, decision.threshold, position, policy)
        restart = policy.learning and not replay and restarted(memory, line["pattern"], position, policy)
        is_anomaly = is_anomaly or restart
        pattern = RESTART_PATTERN if restart else line["pattern"]
        normal_by = marked_normal(pattern) if is_anomaly and marked_normal else None
        if normal_by:
            is_anomaly = False
        if not replay:
            stats.add(score, line["kafka_offset"], is_anomaly, in_baseline=not (is_anomaly or normal_by),
                      partition=line["kafka_partition"])
            if policy.learning:
                if samples is not None and not is_anomaly and seen >= 2 and policy.reservoir_lines:
                    slot = reservoir_slot(line["source"], memory.candidates, policy.reservoir_lines)
                    memory.candidates += 1
                    if slot is not None:
                        samples.append((slot, line["line"]))
                learn(memory, line, is_anomaly, position, policy)
                memory.last_offset = line["kafka_offset"]
        doc = result_document(line, score, decision, is_anomaly, seen)
        if restart:   # one incident per source for its restarts (model/incidents.py summary_of)
            doc.update(pattern_id=RESTART_PATTERN, restart=True)
        if normal_by:
            doc["incident_id"] = normal_by
        docs.append(doc)
    return docs


NOVEL_PER_WINDOW = 5   # brand-new patterns flagged per window of a source before a storm is calmed
STORM_FACTOR = 1.5     # ... after which a brand-new pattern is flagged only this far over the threshold


def calmed(memory, score, threshold, position, policy):
    """Whether a flagged line of a brand-new pattern is part of a novelty storm and stays unflagged:
    a program that boots, dumps its configuration or is upgraded writes dozens of lines it never
    wrote before within seconds (one Thunderbird node's boot: 145 in one second).  The first
    ``NOVEL_PER_WINDOW`` of a window are flagged (the storm is seen, and opens its incidents); after
    them, only a line ``STORM_FACTOR`` times over the threshold is, so a failure inside the storm
    still stands out.  Repeats of a flagged pattern are not concerned (they are no longer new).
    ``memory.novel_window`` counts the window's new patterns."""
    window = position // policy.window
    if memory.novel_window[0] != window:
        memory.novel_window = [window, 0]
    memory.novel_window[1] += 1
    return memory.novel_window[1] > NOVEL_PER_WINDOW and score <= STORM_FACTOR * threshold


RESTART_PATTERN = "restart"
STARTUP_LINES = 30     # a source's first lines: its start-up, as far as clogs can know it
RARE_WINDOWS = 2       # a start-up pattern that normal traffic does not produce: in at most this many windows
                       # (plus one for each restart seen)
AWAY_WINDOWS = 5       # ... and not for this many windows, when it returns
RESTART_PATTERNS = 3   # distinct such patterns returning within one window: the source restarted


def restarted(memory, pattern, position, policy):
    """Whether this line shows that the source restarted: with it, ``RESTART_PATTERNS`` distinct
    patterns of the source's start-up (its first ``STARTUP_LINES`` lines) that its normal traffic
    does not produce (in at most ``RARE_WINDOWS`` windows more than the restarts seen so far, and not
    for ``AWAY_WINDOWS``) returned
    within one window.  Each such line is familiar, so none is flagged on its own; together they say
    that the program started again -- after a crash, a kill or a deploy.  Once per window at most;
    ``memory`` keeps the start-up's patterns and the recent returns."""
    if position < STARTUP_LINES:
        if pattern not in memory.startup:
            memory.startup.append(pattern)
        return False
    entry = memory.patterns.get(pattern)
    if pattern not in memory.startup or not entry or entry[0] > RARE_WINDOWS + memory.restarts or \
            position - entry[1] < AWAY_WINDOWS * policy.window:
        return False
    recent = [r for r in memory.recurring if position - r[0] < policy.window and r[1] != pattern]
    memory.recurring = (recent + [[position, pattern]])[-2 * RESTART_PATTERNS:]
    if len(memory.recurring) >= RESTART_PATTERNS and (memory.restart_at < 0 or
                                                      position - memory.restart_at >= policy.window):
        memory.restart_at = position
        memory.restarts += 1
        return True
    return False


RESULT_DROP = ("base", "novel", "pattern", "n_tokens", "event_time")


def result_document(line, score, decision, is_anomaly, seen=None):
    """The document of a decided line (a dict; app/outputs/documents.py gives it its Elasticsearch names);
    "id" is its log topic-partition-offset; "@timestamp" the time the line states, else its
    ingest time ("timestamp_source" says which)."""
    doc = {k: v for k, v in line.items() if k not in RESULT_DROP}
    doc.update(anomaly_score=score, model_score=line["anomaly_score"], is_anomaly=is_anomaly,
               threshold_used=decision.threshold, threshold_mode=decision.mode, mean_score=decision.mean,
               std_score=decision.std, pattern_id=line.get("pattern", ""), pattern_seen=seen, incident_id=None,
               severity=event_severity(score, decision.threshold, decision.std, line.get("level"), seen, is_anomaly))
    stated = line.get("event_time")
    doc["@timestamp"], doc["timestamp_source"] = (stated, "line") if stated else (line.get("ingested_at"), "ingest")
    doc["id"] = f"{line['kafka_topic']}-{line['kafka_partition']}-{line['kafka_offset']}"
    return doc


def new_state():
    """A source's state before its first line."""
    return Stats(), SourceMemory()


# of a structured line or an event (model/events.py prepare_event)
LINE_EXTRAS = ("original", "logger", "error", "fields", "error_type", "stack_trace", "call_site", "event_lines",
               "truncated", "continued")


def scored_line(record, result, model_version, topic, partition, offset, scored_at=None):
    """The scored line that ``judge_batch`` decides: a log record (source, line and where it came
    from), the Scorer's result for it (a LineScore), the model version that scored it and the
    log-topic coordinates that identify it.  The worker's scoring agent, ``clogs evaluate --online``
    and the tests make it here."""
    return {"source": record["source"], "file": str(record.get("file") or ""), "line_no": record.get("line_no", 0),
            "line": record["line"], "ingested_at": record.get("ingested_at"), "event_time": record.get("event_time"),
            "host": str(record.get("host") or ""), "model_version": model_version, "kafka_topic": topic,
            "kafka_partition": partition, "kafka_offset": offset, "scored_at": scored_at,
            "anomaly_score": result.score, "unknown_tokens": result.unknown, "top_tokens": result.top_tokens,
            "n_tokens": result.tokens, "base": result.base, "novel": result.novel,
            "pattern": record.get("pattern") or result.pattern,   # a stack trace's: its types and call site
            "level": result.level, **{key: record[key] for key in LINE_EXTRAS if key in record}}
