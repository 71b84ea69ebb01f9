"""Redaction of what leaves clogs -- a line as indexed, sent to the anomalies topic or
dead-lettered, an incident's summary and examples, the tokens that explain a score -- by an ordered
list of rules ``(name, pattern, replacement, category)``; the model still scores the line as it was.

``CLOGS_REDACT`` picks the categories: ``all`` (the default: secrets, and personal data -- e-mail
addresses, Luhn-valid card numbers, IBANs with valid check digits), ``secrets`` or ``off``; ``CLOGS_REDACT_RULES`` names a JSON file of rules that add, replace (same name) or remove
(``"pattern": null``) rules, or ``{"replace_defaults": true, "rules": [...]}``.  Each default rule
has a cheap substring pre-check (``_PRECHECK``), so a line without a hint costs about a microsecond.
"""
import re
from functools import lru_cache

from app.settings import REDACT_ALIASES
from model.rules import load_rules_file

REDACTED = "[REDACTED]"
TOKEN_MEMO = 20_000   # top tokens whose redaction a Redactor remembers (a few MB at most)
MODES = {"off": (), "secrets": ("secret",), "all": ("secret", "personal")}
_MODE_ALIASES = REDACT_ALIASES
CATEGORIES = ("secret", "personal")

# Key names whose value is a secret: password=..., "api_key": "...", X-Auth-Token: ...
# A key may carry a prefix (db_password, client_secret, X-Api-Key, aws_secret_access_key) or a
# camelCase one (userPassword), but not a glued lowercase one (``wtoken`` stays).
_NOT_DONE = r"(?!\[REDACTED\])"
_KEYWORDS = (r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|"
             r"secret[_-]?key|private[_-]?key|auth)")
_KEY_PREFIX = r"(?:[a-z0-9]+[_.-])*(?:[a-z0-9]*(?-i:[a-z0-9])(?=(?-i:[A-Z])))?"
_TOKEN_CHARS = r"[A-Za-z0-9._~+/-]"
# The value of a key: "double quoted" (escapes allowed), 'single quoted' or bare up to a space or
# a delimiter (``&`` only before another ``key=``); a bare word that opens an object or a call --
# token=Token{a64f992 ...}, Token: Token { kind: ... } -- is a description, not a value.
_VALUE = (r"(?P<q>[\"']?)" + _NOT_DONE +
          r"(?:(?<=\")(?:[^\"\\]|\\.)*(?=\")|(?<=')[^']*(?=')"
          r"|(?<![\"'])(?:[^\s\"',;&(){}\[\]]|&(?!\w+=))+(?![^\s\"',;&(){}\[\]]|&(?!\w+=)|[({]|\s\{))(?P=q)")


def luhn_ok(digits):
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _issuer_ok(digits):
    """True when the prefix and length are those of a major card network."""
    n = len(digits)
    p2, p4 = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":                                   # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:               # Mastercard
        return n == 16
    if p2 in (34, 37):                                     # American Express
        return n == 15
    if p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:  # Diners Club
        return 14 <= n <= 19
    if digits.startswith("6011") or p2 in (62, 65) or 644 <= int(digits[:3]) <= 649:  # Discover, UnionPay
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:                                 # JCB
        return 16 <= n <= 19
    return False


def iban_ok(compact):
    """True when an IBAN (no spaces) has a plausible length and passes its ISO 7064 mod-97 check."""
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def iban(match):
    """Replacement function of the ``iban`` rule: redacts only an IBAN whose check digits agree."""
    text = match.group(0)
    return REDACTED if iban_ok(text.replace(" ", "")) else text


def card_number(match):
    """Replacement function of the ``card_number`` rule: redacts only a plausible card number."""
    text = match.group(0)
    digits = text.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and _issuer_ok(digits) and luhn_ok(digits):
        return REDACTED
    return text


# (name, pattern, replacement, category) -- applied in this order; specific shapes come before
# the generic key=value rule so that the hit is counted under the most telling name.
DEFAULT_RULES = [
    ("private_key",
     r"(?s)(?P<begin>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----)" + _NOT_DONE + r".*?"
     r"(?:(?P<end>-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)|\Z)",
     r"\g<begin>" + REDACTED + r"\g<end>", "secret"),
    ("url_credentials",
     r"(?i)(?P<pre>\b[a-z][a-z0-9+.-]*://[^\s:/@\"'<>]*:)" + _NOT_DONE + r"[^\s/?#\"'<>]+(?=@)",
     r"\g<pre>" + REDACTED, "secret"),
    ("authorization_header",
     r"(?i)(?P<key>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
     r"(?P<scheme>(?:bearer|basic|digest|token|negotiate|ntlm|apikey|aws4-hmac-sha256)\s+)?"
     r"(?!(?:bearer|basic|digest|token|negotiate|ntlm|apikey|aws4-hmac-sha256)\s)" + _NOT_DONE + r"[^\s\"',;]+",
     r"\g<key>\g<scheme>" + REDACTED, "secret"),
    ("bearer_token",
     r"(?i)(?P<key>\bbearer\s+)" + _NOT_DONE +
     r"(?:(?=[A-Za-z._~+/-]*[0-9])" + _TOKEN_CHARS + r"{6,}|" + _TOKEN_CHARS + r"{20,})=*",
     r"\g<key>" + REDACTED, "secret"),
    ("aws_access_key_id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", REDACTED, "secret"),
    ("aws_secret_access_key",
     r"(?i)(?P<key>aws[_-]?secret[_-]?access[_-]?key[\"']?\s*[:=]\s*[\"']?)" + _NOT_DONE +
     r"[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])",
     r"\g<key>" + REDACTED, "secret"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})\b", REDACTED, "secret"),
    ("slack_token", r"\bxox[abeoprs]-[A-Za-z0-9-]{10,}", REDACTED, "secret"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*", REDACTED, "secret"),
    ("key_value_secret",
     r"(?i)(?P<key>(?<![\w./-])" + _KEY_PREFIX + _KEYWORDS + r"(?:[\"']\s*[:=]\s*|\s*=\s*|\s*:\s+))"
     + _VALUE, r"\g<key>\g<q>" + REDACTED + r"\g<q>", "secret"),
    ("cli_flag_secret",
     r"(?i)(?P<key>(?<![\w-])--(?:[a-z0-9]+-)*(?:password|passwd|passphrase|secret|token|api-?key|auth-token)"
     r"(?:=|\s+))(?!-)" + _VALUE, r"\g<key>\g<q>" + REDACTED + r"\g<q>", "secret"),
    ("email", r"(?i)(?<![a-z0-9._+-])[a-z0-9._+-]+(?:@|%40)(?:[a-z0-9-]+\.)+[a-z]{2,}\b", REDACTED, "personal"),
    ("card_number",
     # the look-behind comes after the first four digits: the same test, twice as fast to scan
     r"[0-9]{4}(?<![\w.-][0-9]{4})(?:[0-9]{9,15}|(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{1,4}"
     r"(?:(?P=sep)[0-9]{1,3})?|(?P<sep2>[ -])[0-9]{6}(?P=sep2)[0-9]{4,5})(?![\w]|[.-][0-9])",
     card_number, "personal"),
    ("iban", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", iban, "personal"),
]

_GITHUB_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")
_KV_HINTS = ("pass", "pwd", "secret", "token", "key", "auth")
_EMAIL_HINT = re.compile(r"@[A-Za-z0-9-]+\.[A-Za-z]")  # starts with a literal: a fast scan
_IBAN_HINT = re.compile(r"[A-Z]{2}[0-9]{2}[ A-Z0-9]{11}")

# Cheap necessary conditions, given the line and its lower-case form: a default rule whose
# condition fails cannot match, so its regex is skipped.  tests/test_redaction.py checks that
# the result is the same with and without them.
_PRECHECK = {
    "private_key": lambda text, lower: "PRIVATE KEY" in text,
    "url_credentials": lambda text, lower: "@" in text and "://" in text,
    "authorization_header": lambda text, lower: "authorization" in lower,
    "bearer_token": lambda text, lower: "bearer" in lower,
    "aws_access_key_id": lambda text, lower: "AKIA" in text or "ASIA" in text,
    "aws_secret_access_key": lambda text, lower: "aws" in lower and "secret" in lower,
    "github_token": lambda text, lower: "_" in text and any(p in text for p in _GITHUB_PREFIXES),
    "slack_token": lambda text, lower: "xox" in text,
    "jwt": lambda text, lower: "eyJ" in text,
    "key_value_secret": lambda text, lower: ("=" in text or ":" in text) and any(k in lower for k in _KV_HINTS),
    "cli_flag_secret": lambda text, lower: "--" in text and any(k in lower for k in _KV_HINTS),
    "email": lambda text, lower: ("@" in text and _EMAIL_HINT.search(text) is not None) or "%40" in text,
    "iban": lambda text, lower: _IBAN_HINT.search(text) is not None,
}

# One scan for all of them: a substring that every condition above needs, in the lower-case form
# (each condition's literal is lower-cased here).  A line without any of them -- most lines --
# skips every rule at the cost of one regex search, when every rule that applies has a condition.
_ANY_HINT = re.compile("|".join(re.escape(hint) for hint in (
    "private key", "@", "%40", "://", "authorization", "bearer", "akia", "asia", "aws", "xox", "eyj",
    *_GITHUB_PREFIXES, *_KV_HINTS)))


def _mode(mode):
    value = str(mode if mode is not None else "all").strip().lower()
    value = _MODE_ALIASES.get(value, value)
    if value not in MODES:
        raise ValueError(f"redaction mode {mode!r}: expected one of {', '.join(MODES)}")
    return value


def _counting(function):
    """A replacement function that counts the matches it actually changed."""
    def replace(match):
        out = function(match)
        if out != match.group(0):
            replace.hits += 1
        return out
    replace.hits = 0
    return replace


class Redactor:
    """Applies the rules of the chosen categories to text; ``mode`` is off, secrets or all."""

    def __init__(self, rules=None, mode="all", prechecks=True):
        self.mode = _mode(mode)
        self.rules = [tuple(r) for r in (rules if rules is not None else DEFAULT_RULES)]
        defaults = {r[0]: r[1] for r in DEFAULT_RULES}
        wanted = MODES[self.mode]
        self._compiled = []
        for name, pattern, replacement, category in self.rules:
            if category not in CATEGORIES:
                raise ValueError(f"redaction rule {name!r}: category {category!r} is not one of {CATEGORIES}")
            if category not in wanted:
                continue
            check = _PRECHECK.get(name) if prechecks and defaults.get(name) == pattern else None
            self._compiled.append((name, re.compile(pattern), replacement, check))
        self._gated = bool(self._compiled) and all(check is not None for *_, check in self._compiled)
        # ``redact`` of the short tokens that explain a score, remembered: they come back line after line
        self.redact_token = lru_cache(maxsize=TOKEN_MEMO)(self.redact)
        self.counts = {}   # rule name -> hits of ``redact_document`` (for /health)

    @property
    def enabled(self):
        return bool(self._compiled)

    @classmethod
    def from_settings(cls, settings):
        """The redactor that ``CLOGS_REDACT`` and ``CLOGS_REDACT_RULES`` describe."""
        if settings.redact_rules:
            return cls.from_file(settings.redact_rules, settings.redact)
        return cls(mode=settings.redact)

    @classmethod
    def from_file(cls, path, mode="all", base=None):
        """Default rules (or ``base``) with the rules of a JSON file added, replaced or removed."""
        data = load_rules_file(path, "redaction rules")
        rules = list(base if base is not None else DEFAULT_RULES)
        if isinstance(data, dict):
            if data.get("replace_defaults"):
                rules = []
            data = data.get("rules", [])
        if not isinstance(data, list):
            raise ValueError(f"redaction rules file {path}: expected a list of rules or "
                             '{"replace_defaults": ..., "rules": [...]}')
        for item in data:
            try:
                name, pattern = item["name"], item.get("pattern")
                if pattern is not None:
                    re.compile(pattern)
                    rule = (name, pattern, item.get("replacement", REDACTED), item.get("category", "secret"))
                    if rule[3] not in CATEGORIES or not isinstance(rule[2], str):
                        raise ValueError(f"category must be one of {CATEGORIES}, replacement a string")
            except (KeyError, TypeError, AttributeError, ValueError, re.error) as exc:
                raise ValueError(f"bad rule {item!r} in {path}: {exc}; expected "
                                 '{"name": ..., "pattern": <regex>, "replacement": "[REDACTED]", '
                                 '"category": "secret" | "personal"}') from None
            names = [r[0] for r in rules]
            if name in names:
                if pattern is None:
                    del rules[names.index(name)]
                else:
                    rules[names.index(name)] = rule
            elif pattern is not None:
                last_secret = max((i for i, r in enumerate(rules) if r[3] == "secret"), default=-1)
                rules.insert(last_secret + 1, rule)
        return cls(rules, mode)

    def redact(self, text):
        """``(redacted text, {rule name: hits})``; the text itself when nothing matched."""
        if not self._compiled or not text or not isinstance(text, str):
            return text, {}
        hits = {}
        lower = text.lower()
        if self._gated and _ANY_HINT.search(lower) is None:
            return text, hits
        for name, regex, replacement, check in self._compiled:
            if check is not None and not check(text, lower):
                continue
            if callable(replacement):
                counting = _counting(replacement)
                text = regex.sub(counting, text)
                n = counting.hits
            else:
                text, n = regex.subn(replacement, text)
            if n:
                hits[name] = hits.get(name, 0) + n
                lower = text.lower()
        return text, hits

    def redact_document(self, doc):
        """Redact a document about to leave clogs, in place, counting the hits (``redact_document``)."""
        return redact_document(doc, self, self.counts)

    def to_json(self):
        return [{"name": n, "pattern": p, "replacement": r if isinstance(r, str) else f"<function {r.__name__}>",
                 "category": c} for n, p, r, c in self.rules]


def redact_document(doc, redactor, counts=None):
    """Redacts in place the text of a line document (``message``, ``line``), an incident
    document (``examples[*].message``) or a dead-letter document (``value_preview``).
    Returns the total number of hits; ``counts``, a dict, gets the hits per rule added."""
    if redactor is None or not redactor.enabled or not isinstance(doc, dict):
        return 0
    total = 0

    def apply(holder, key):
        nonlocal total
        value = holder.get(key)
        if isinstance(value, str) and value:
            new, hits = redactor.redact(value)
            if hits:
                holder[key] = new
                for name, n in hits.items():
                    total += n
                    if counts is not None:
                        counts[name] = counts.get(name, 0) + n

    for key in ("message", "line", "value_preview", "summary", "detail"):
        apply(doc, key)
    for holder, keys in ((doc.get("event"), ("original",)), (doc.get("error"), ("message", "stack_trace"))):
        if isinstance(holder, dict):   # a structured line's raw form and its error
            for key in keys:
                apply(holder, key)
    fields = doc.get("fields")
    if isinstance(fields, dict):   # a structured line's other fields: a field named like a secret is
        for key, value in fields.items():   # redacted whole, the others as key=value
            if redactor.mode != "off" and _SECRET_KEY.search(str(key)) and value not in (None, "", REDACTED):
                fields[key] = REDACTED
                total += 1
                if counts is not None:
                    counts["secret_field"] = counts.get("secret_field", 0) + 1
            elif isinstance(value, str) and value:
                pair = {"text": f"{key}={value}"}
                apply(pair, "text")
                fields[key] = pair["text"].split("=", 1)[1] if "=" in pair["text"] else pair["text"]
    for example in doc.get("examples") or ():
        if isinstance(example, dict):
            apply(example, "message")
    if isinstance(doc.get("top_tokens"), list):
        # The tokens that explain a score are the normaliser's, digits masked (``Sup<N>rS<N>cret``):
        # not substrings of the line, and the masks break the rules' patterns.  When the text they
        # came from had something redacted, a token whose literal pieces are not all still in the
        # redacted text overlapped a secret, and goes; each token also gets the rules on its own.
        texts = None   # gathered only when the text had a hit (rare)
        tokens = []
        for token in doc["top_tokens"]:
            if not isinstance(token, str):
                tokens.append(token)
                continue
            new, hits = redactor.redact_token(token)
            if total and not hits and texts is None:
                texts = [doc.get(k) for k in ("message", "line", "summary") if isinstance(doc.get(k), str)]
                texts += [e.get("message") for e in doc.get("examples") or ()
                          if isinstance(e, dict) and isinstance(e.get("message"), str)]
            if total and not hits and not _pieces_remain(token, texts):
                new, hits = REDACTED, {"token_in_secret": 1}
            total += sum(hits.values())
            if counts is not None:
                for name, n in hits.items():
                    counts[name] = counts.get(name, 0) + n
            tokens.append(new)
        doc["top_tokens"] = tokens
    return total


_MASK = re.compile(r"<[A-Z]+>")
_SECRET_KEY = re.compile(r"(?i)(?:^|[_.-])" + _KEYWORDS + r"$|^" + _KEYWORDS + r"(?:[_.-]|$)")


def _pieces_remain(token, texts):
    """Whether every literal piece of a (masked) token is still in one of the redacted texts."""
    pieces = [p for p in _MASK.split(token) if p]
    return any(all(p in text for p in pieces) for text in texts)
