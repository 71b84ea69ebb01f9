"""Multi-line events: a source's physical lines assembled into log events before anything scores them.

``Assembler.feed`` takes a source's lines one by one and hands back the events they complete.  An
event is complete when the next one starts, when its source has been quiet for the timeout
(``Assembler.quiet``: no line for ``timeout`` seconds; also a gap of ``timeout`` between two lines'
own times), or at ``max_lines`` (the rest of its lines make a following event marked
``continued``, and the first is marked ``truncated``: nothing is dropped).  A partial line (a
container runtime's ``P`` / a Docker line without its newline) is joined with the next one first.

Which line continues an event, with no configuration:

* any line that starts with whitespace (Java's ``\\tat``, .NET's and Node's ``   at``, Python's
  frames, Go's file lines, PostgreSQL's indented detail lines, pretty-printed JSON);
* Java's ``Caused by:``, ``Suppressed:``, ``... N more``; .NET's ``--- End of ... ---``; Node's
  ``Node.js vN`` trailer and the ``Error: ...`` line under its caret;
* Python's ``Traceback (most recent call last):`` under a line that announces an error, the final
  ``Type: message`` line after the frames, and a chained traceback's linking sentence;
* inside a Go panic or goroutine dump: ``goroutine N [...]:``, function lines, ``created by``,
  ``[signal ...``, ``exit status N``;
* an exception line (``java.io.IOException: ...``) under a line that announces an error.

A line that does not start the way records start (indented) never starts an event when there is
one to continue.  Users add rules per source in the rules file (Filebeat's shape: ``pattern``,
``negate``, ``match`` after/before, ``max_lines``, ``timeout``); a source with a rule of its own is
assembled by that rule alone.  The worker's scoring agent, ``clogs score`` and ``clogs evaluate``
all assemble through this class (``assemble`` for a whole file).
"""
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .traces import PY_FINAL, PY_TRACEBACK

DEFAULT_TIMEOUT = 1.0
DEFAULT_MAX_LINES = 500

ALWAYS_CONTINUES = re.compile(
    r"^(?:Caused by: |Suppressed: |\.\.\. \d+ (?:more|common frames omitted)|--- End of |Node\.js v\d)")
PY_CHAIN = ("During handling of the above exception, another exception occurred:",
            "The above exception was the direct cause of the following exception:")
EXCEPTION_LINE = re.compile(
    r"^(?:Exception in thread \"[^\"]*\" |Unhandled [Ee]xception[.:] ?)?(?:[A-Za-z_$][\w$]*\.)*[\w$]*"
    r"(?:Exception|Error|Throwable|Fault)(?: \[\w+\])?(?::.*)?$")
ANNOUNCES = re.compile(r"(?i)\b(?:error|errors|exception|fatal|critical|severe|fail|failed|failure|panic|"
                       r"warn|warning)\b|:\s*$")
GO_START = re.compile(r"^(?:panic: |fatal error: |SIG[A-Z]+: )")
GO_CONTINUES = re.compile(r"^(?:goroutine \d+ \[[^\]]*\]:|\[signal |created by |exit status \d+|panic: |"
                          r"runtime stack:|PC=0x|[\w./*()\[\]{}-]+\(.*\)$)")
CARET = re.compile(r"^\s*\^+\s*$")
NOTE_STARTS = frozenset("TpfS")   # the first letters of the lines that start a Python or Go trace
LONG_LINE = 4096                 # longer lines are only checked for a leading space or a fixed prefix


def announces(line):
    """Whether a line announces an error (so an exception line under it is its continuation); a JSON
    line is whole and announces nothing."""
    return not line.startswith("{") and bool(ANNOUNCES.search(line))


@dataclass
class Rule:
    """A user's rule for the sources matching ``source`` (a glob), in Filebeat's terms: with
    ``match="after"`` a line for which ``pattern`` matches (does not, with ``negate``) continues the
    event before it; with ``match="before"`` such a line continues into the next one."""
    source: str
    pattern: re.Pattern
    negate: bool = False
    match: str = "after"
    max_lines: int = DEFAULT_MAX_LINES
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def of(cls, entry, default_timeout=DEFAULT_TIMEOUT, default_max_lines=DEFAULT_MAX_LINES):
        """A rule from one entry of the rules file's ``multiline`` list; a wrong entry names itself."""
        if not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str):
            raise ValueError(f"multiline rule {entry!r}: needs a \"pattern\" (a regular expression)")
        match = entry.get("match", "after")
        if match not in ("after", "before"):
            raise ValueError(f"multiline rule {entry!r}: \"match\" is \"after\" or \"before\", not {match!r}")
        try:
            pattern = re.compile(entry["pattern"])
        except re.error as exc:
            raise ValueError(f"multiline rule {entry!r}: pattern is not a regular expression: {exc}") from None
        max_lines = int(entry.get("max_lines", default_max_lines))
        timeout = float(entry.get("timeout", default_timeout))
        if max_lines < 1 or timeout <= 0:
            raise ValueError(f"multiline rule {entry!r}: max_lines and timeout must be positive")
        return cls(str(entry.get("source", "*")), pattern, bool(entry.get("negate", False)), match, max_lines, timeout)


def rules_from(data, default_timeout=DEFAULT_TIMEOUT, default_max_lines=DEFAULT_MAX_LINES):
    """The ``multiline`` rules of a rules file's JSON value (a list of entries, or none)."""
    entries = data.get("multiline", []) if isinstance(data, dict) else []
    if not isinstance(entries, list):
        raise ValueError("the rules file's \"multiline\" must be a list of rules")
    return [Rule.of(entry, default_timeout, default_max_lines) for entry in entries]


@dataclass(slots=True)
class Event:
    """One log event: its lines (partial lines already joined), what the caller attached to each
    physical line it fed (``metas``: offsets, Kafka events to ack...), and how it ended."""
    source: str
    lines: list
    metas: list
    truncated: bool = False        # reached max_lines: the lines after it are the next event
    continued: bool = False        # the rest of a truncated event
    kind: str = None               # "python" / "go" while inside such a trace
    last_cond: bool = False        # a user rule with match="before": the last line continues into the next
    at: float = None               # the last line's own time (seconds), when known
    clock: float = None            # when its last line arrived (the caller's clock)

    @property
    def first(self):
        return self.metas[0]


@dataclass
class Assembler:
    rules: list = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT
    max_lines: int = DEFAULT_MAX_LINES
    max_line_chars: int = 1_000_000                # a partial line longer than this is taken as it is
    pending: dict = field(default_factory=dict)    # key -> Event
    partials: dict = field(default_factory=dict)   # key -> (text, metas, at, clock, source) of a partial line

    def rule_for(self, source):
        for rule in self.rules:
            if fnmatchcase(source, rule.source):
                return rule
        return None

    def feed(self, source, text, meta=None, at=None, clock=None, partial=False, key=None):
        """Take one physical line of ``source`` (under ``key``: default the source); returns the events
        it completed (the one before it, or a truncated one).  ``at``: the line's own time in seconds
        (a gap of the timeout ends an event); ``clock``: now, for ``quiet``; ``partial``: the line goes
        on in the next one (it is held until complete, then taken as one line)."""
        key = source if key is None else key
        held = self.partials.pop(key, None)
        metas = [meta]
        if held is not None:
            text, metas = held[0] + text, held[1] + metas
            at = at if at is not None else held[2]
        if partial and len(text) < self.max_line_chars:   # a line that never ends is taken at the cap
            self.partials[key] = (text, metas, at, clock, source)
            return []
        return self._take(source, key, text, metas, at, clock)

    def _take(self, source, key, text, metas, at, clock):
        rule = self.rule_for(source)
        timeout, max_lines = (rule.timeout, rule.max_lines) if rule else (self.timeout, self.max_lines)
        event = self.pending.get(key)
        done = []
        gap = at is not None and event is not None and event.at is not None and at - event.at > timeout
        cond = bool(rule.pattern.search(text)) != rule.negate if rule else False
        if event is not None and not gap and self.continues(event, text, rule, cond):
            if len(event.lines) >= max_lines:
                event.truncated = True
                done.append(event)
                event = self.pending[key] = Event(source, [text], metas, continued=True, kind=event.kind)
            else:
                event.lines.append(text)
                event.metas.extend(metas)
        else:
            if event is not None:
                done.append(event)
            event = self.pending[key] = Event(source, [text], metas)
        self.note(event, text)
        event.last_cond, event.at, event.clock = cond, at, clock
        return done

    @staticmethod
    def continues(event, text, rule=None, cond=False):
        """Whether ``text`` continues ``event`` (the built-in recognizers, or the source's rule)."""
        if rule is not None:
            return cond if rule.match == "after" else event.last_cond
        if text[:1] in (" ", "\t") or ALWAYS_CONTINUES.match(text):
            return True
        if len(text) > LONG_LINE:   # the checks below read whole lines: a huge one starts its own event
            return False
        last = event.lines[-1][:LONG_LINE]
        if text.startswith(PY_TRACEBACK):
            return event.kind == "python" or announces(last)
        if event.kind == "python":
            return text.startswith(PY_CHAIN) or (last[:1] in (" ", "\t") and bool(PY_FINAL.match(text)))
        if event.kind == "go":
            return bool(GO_CONTINUES.match(text))
        if EXCEPTION_LINE.match(text):   # right under the one log line that announced it
            return bool(CARET.match(last)) or (len(event.lines) == 1 and last[:1] not in (" ", "\t")
                                               and not EXCEPTION_LINE.match(last) and announces(last))
        return False

    @staticmethod
    def note(event, text):
        """Follow which kind of trace an event is in, from the line just added."""
        if text[:1] not in NOTE_STARTS:
            return
        if text.startswith(PY_TRACEBACK):
            event.kind = "python"
        elif event.kind is None and GO_START.match(text):
            event.kind = "go"

    def quiet(self, clock):
        """The events whose source has sent nothing for their timeout (by the caller's clock): complete
        (a partial line that never got its end is taken as it is)."""
        done = []
        for key, (text, metas, at, since, source) in list(self.partials.items()):
            if since is not None and clock - since >= self.timeout_for(source):
                del self.partials[key]
                done += self._take(source, key, text, metas, at, since)
        for key, event in list(self.pending.items()):
            if key not in self.partials and event.clock is not None and \
                    clock - event.clock >= self.timeout_for(event.source):
                done.append(self.pending.pop(key))
        return done

    def timeout_for(self, source):
        rule = self.rule_for(source)
        return rule.timeout if rule else self.timeout

    def flush(self):
        """Every pending event as it is: the end of the input (or of this reader)."""
        done = []
        for key, (text, metas, at, clock, source) in list(self.partials.items()):
            del self.partials[key]
            done += self._take(source, key, text, metas, at, clock)
        done += self.pending.values()
        self.pending.clear()
        return done


def assemble(lines, source="-", assembler=None):
    """The events of a whole input: ``lines`` are (meta, text) pairs in order; blank lines carry no
    content and are left out, as the stream's ingest leaves them out.  Yields Events."""
    assembler = assembler or Assembler()
    for meta, text in lines:
        if not text.strip():
            continue
        yield from assembler.feed(source, text, meta)
    yield from assembler.flush()


def assembler_of(settings):
    """The Assembler the settings ask for: CLOGS_MULTILINE_TIMEOUT, CLOGS_MULTILINE_MAX_LINES and the
    ``multiline`` rules of CLOGS_MULTILINE_RULES (a wrong file or rule stops the caller, named)."""
    from .rules import load_rules_file

    rules = []
    if settings.multiline_rules:
        rules = rules_from(load_rules_file(settings.multiline_rules, "multiline rules"), settings.multiline_timeout,
                           settings.multiline_max_lines)
    return Assembler(rules, settings.multiline_timeout, settings.multiline_max_lines, settings.max_line_bytes)
