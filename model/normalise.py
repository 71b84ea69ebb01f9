"""Normalisation: masks the volatile parts of a log line and splits it into tokens.

The rules are an ordered list of (name, regex, placeholder).  Order matters: composite
shapes (timestamps, addresses, ids) are masked before their parts (numbers) would be.
Users can add or override rules with a JSON file: a list of
``{"name": ..., "pattern": ..., "token": ...}``; a rule with an existing name replaces it
in place, a new name is inserted before the generic ``number`` rules.
Tokenisation is whitespace splitting, as in the seed; a digit run left inside a token
(``R02-M1`` or ``node-246``) is masked inside the token so that the shape survives.
"""
import re

from .rules import load_rules_file

RULES_VERSION = 1

# (name, pattern, placeholder) -- applied in this order
DEFAULT_RULES = [
    ("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "<UUID>"),
    ("iso8601", r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "<TS>"),
    ("bgl_timestamp", r"\b\d{4}-\d{2}-\d{2}-\d{2}\.\d{2}\.\d{2}\.\d+\b", "<TS>"),
    ("weekday_timestamp", r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2} \d{2}:\d{2}:\d{2} \d{4}\b", "<TS>"),
    ("syslog_timestamp", r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}\b", "<TS>"),
    ("hdfs_timestamp", r"^\d{6} \d{6}\b", "<TS>"),
    ("date", r"\b\d{4}[-./]\d{1,2}[-./]\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b", "<DATE>"),
    ("time", r"\b\d{1,2}:\d{2}:\d{2}(?:[.,:]\d+)?\b", "<TIME>"),
    ("epoch", r"\b1[0-9]{9}(?:\.\d+)?\b", "<EPOCH>"),
    ("ipv6", r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?(?![\w:])", "<IP>"),
    ("ipv4", r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\d.])", "<IP>"),
    ("block_id", r"\bblk_-?\d+\b", "<BLK>"),
    ("pid", r"(?<=\w)\[\d+\]", "[<PID>]"),
    ("hex", r"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b", "<HEX>"),
    ("path", r"(?<![\w<])(?:/[\w.$@~+-]+){2,}/?", "<PATH>"),
    ("long_id", r"\b\d{6,}\b", "<ID>"),
    ("number", r"(?<![\w<])[-+]?\d+(?:\.\d+)?(?![\w>])", "<NUM>"),
    ("inner_number", r"\d+", "<N>"),
]

_GENERIC = {"long_id", "number", "inner_number"}

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Scans for the pieces of the timestamp shapes, shared by the pre-checks and PIECES below and by the
# pre-checks of model/eventtime.py (its shapes are these rules').  Each regex starts with a literal character:
# Python's engine then jumps from one occurrence of that character to the next instead of trying
# at every position (the three timestamp-like rules took 7-9 us a line on BGL lines, their
# pre-checks take about 1).
any_month = re.compile("|".join(MONTH_NAMES)).search   # one scan instead of twelve substring tests
any_day = re.compile("|".join(DAY_NAMES)).search
iso_core = re.compile(r"-\d\d-\d\d[T ]\d\d:").search      # inside every iso8601 stamp
bgl_core = re.compile(r"-\d\d-\d\d-\d\d\.").search       # inside every BGL stamp
clock = re.compile(r":\d\d:\d\d").search                   # inside every weekday and syslog stamp
_UUID_CORE = re.compile(r"-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-").search      # inside every uuid

# Cheap necessary conditions for some default rules: a rule whose condition fails on a line
# cannot match it, so its regex is skipped (a third of the normaliser's time on BGL lines).
# tests/test_normalise.py checks that the result is the same with and without them.
PREFILTERS = {
    "weekday_timestamp": lambda line: clock(line) and any_day(line),
    "syslog_timestamp": lambda line: clock(line) and any_month(line),
    "time": lambda line: ":" in line,
    "ipv6": lambda line: "::" in line or line.count(":") >= 7,
    "block_id": lambda line: "blk_" in line,
    "pid": lambda line: "[" in line,
    "path": lambda line: "/" in line,
    "ipv4": lambda line: line.count(".") >= 3,
    "date": lambda line: "-" in line or "." in line or "/" in line,
}

# Rules whose every match holds a piece that a literal-led scan finds fast, always ``offset``
# characters after the match's start.  Such a rule is applied by scanning for its piece and trying
# the rule only there, instead of at every position of the line (``_sub_at_pieces``): a BGL stamp's
# substitution took 3.2 us a line, most of it trying the rule after the stamp, to the line's end.
PIECES = {
    "uuid": (_UUID_CORE, 8),
    "iso8601": (iso_core, 4),
    "bgl_timestamp": (bgl_core, 4),
}

# Rules that never match whitespace, and whose look-arounds see a neighbouring space and the end of
# the text alike (``\b``, ``(?<![\w<])``, ``(?![\d.])``, ...; no ``^`` or ``$``): applied to each
# whitespace token on its own they give the same tokens as applied to the whole line.  The run of
# them that ends the default rules is applied per token, and a token's result is remembered
# (``TOKEN_MEMO`` tokens): log lines repeat most of their words.  Identical tokens are checked by
# tests/test_normalise.py against the line-at-a-time path (``mask``) on every Loghub sample.
TOKEN_LOCAL = {"date", "time", "epoch", "ipv6", "ipv4", "block_id", "pid", "hex", "path", "long_id", "number",
               "inner_number"}
TOKEN_MEMO = 50_000   # about 10 MB at most; cleared when full (unique ids fill it, words come back)


class Normaliser:
    """Masks volatile fields with placeholder tokens and splits on whitespace."""

    def __init__(self, rules=None, prefilters=True):
        self.rules = list(rules if rules is not None else DEFAULT_RULES)
        defaults = {name: pattern for name, pattern, _ in DEFAULT_RULES}
        self._compiled = [
            (name, re.compile(pattern), token, *((PREFILTERS.get(name), PIECES.get(name))
                                                 if prefilters and defaults.get(name) == pattern else (None, None)))
            for name, pattern, token in self.rules]
        split = len(self._compiled)
        while split and self.rules[split - 1][0] in TOKEN_LOCAL and \
                defaults.get(self.rules[split - 1][0]) == self.rules[split - 1][1]:
            split -= 1
        self._line_rules, self._token_rules = self._compiled[:split], self._compiled[split:]
        self._memo = {}

    @classmethod
    def from_file(cls, path, base=None):
        """Default rules (or ``base``) with the rules of a JSON file added or overriding."""
        extra = load_rules_file(path, "normaliser rules")
        rules = list(base if base is not None else DEFAULT_RULES)
        for item in extra:
            try:
                rule = (item["name"], item["pattern"], item["token"])
                re.compile(rule[1])
            except (KeyError, TypeError, re.error) as exc:
                raise ValueError(f"bad rule {item!r} in {path}: {exc}; expected "
                                 '{"name": ..., "pattern": <regex>, "token": <placeholder>}') from None
            names = [r[0] for r in rules]
            if rule[0] in names:
                rules[names.index(rule[0])] = rule
            else:
                first_generic = next(i for i, r in enumerate(rules) if r[0] in _GENERIC)
                rules.insert(first_generic, rule)
        return cls(rules)

    def mask(self, line):
        """The line with every rule applied to it whole (the reference ``tokenize`` agrees with)."""
        return _apply(self._compiled, line)

    def tokenize(self, line, limit=None):
        """The line's tokens (the first ``limit`` of them when given)."""
        tokens = _apply(self._line_rules, line).split()
        if limit is not None:
            tokens = tokens[:limit]
        if not self._token_rules:
            return tokens
        memo, out = self._memo, []
        for token in tokens:
            masked = memo.get(token)
            if masked is None:
                masked = _apply(self._token_rules, token)
                if len(memo) >= TOKEN_MEMO:
                    memo.clear()
                memo[token] = masked
            out.append(masked)
        return out

    def to_json(self):
        return [{"name": n, "pattern": p, "token": t} for n, p, t in self.rules]


def _apply(rules, text):
    for _name, regex, token, applies, pieces in rules:
        if pieces is not None:
            text = _sub_at_pieces(regex, token, text, *pieces)
        elif applies is None or applies(text):
            text = regex.sub(token, text)
    return text


def _sub_at_pieces(regex, token, text, find_piece, offset):
    """``regex.sub(token, text)`` for a rule whose matches all hold a piece ``find_piece`` finds,
    ``offset`` characters after their start: the rule is tried only where a piece is.  Matches come
    in the same order as sub's (a match's piece is at its start + offset), do not overlap, and
    ``regex.match(text, at)`` sees the characters before ``at`` (``\b`` stays right)."""
    piece, out, done = find_piece(text), [], 0
    while piece:
        at = piece.start() - offset
        match = regex.match(text, at) if at >= done else None
        if match:
            out += (text[done:at], token)
            done = match.end()
            piece = find_piece(text, done + offset)
        else:
            piece = find_piece(text, piece.start() + 1)
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)
