"""What a line *is*, beyond its score: its pattern (the key of the online memory) and its level.

``pattern_key(tokens)`` is the line's skeleton: the number of tokens and the purely alphabetic
words among them, after masking.  Two lines that differ only in their variable parts (numbers,
ids, paths, user names glued to punctuation) share a skeleton; a new message, or a known one
with a new word, does not.  It is deliberately coarser than the exact masked sequence: the
masking rules cannot know every variable field of every format, and a skeleton forgives what
they miss.  The key is a short hash so memories stay small whatever the line length.

``line_level(tokens)`` is the severity a line states for itself, read from the first tokens:
``ERROR``, ``[error]``, ``error:``, ``level=error``, ``<Warning>``...  Only upper- or
capitalised words count bare; a lower-case word counts when it is decorated (brackets, a colon,
``level=``), so "in error state" in a message's text is not a level.
"""
import hashlib
import re
from functools import lru_cache

LEVELS = {
    "trace": 0, "debug": 0, "fine": 0, "finer": 0, "finest": 0, "verbose": 0,
    "info": 1, "information": 1, "notice": 1,
    "warn": 2, "warning": 2,
    "error": 3, "err": 3, "severe": 3, "failure": 3,
    "fatal": 4, "critical": 4, "crit": 4, "alert": 4, "emerg": 4, "emergency": 4, "panic": 4,
}
LEVEL_NAMES = {0: "debug", 1: "info", 2: "warning", 3: "error", 4: "fatal"}
UNKNOWN_LEVEL = -1
LEVEL_SCAN_TOKENS = 8
_DECORATED = re.compile(r"^(?:(?:level|severity|lvl)=)?[\[(<{]?([A-Za-z]+)[\])>}]?:?,?$")
_EDGE = "[](){}<>:;,.=\"'|"


def skeleton(tokens):
    """(token count, the purely alphabetic words, punctuation at the edges ignored)."""
    words = []
    for token in tokens:
        word = token.strip(_EDGE)
        if word.isascii() and word.isalpha():   # ASCII letters only, as ^[A-Za-z]+$
            words.append(word)
    return len(tokens), words


def pattern_key(tokens):
    """A 12-hex-digit key of the line's skeleton."""
    count, words = skeleton(tokens)
    return hashlib.blake2b(f"{count}|{' '.join(words)}".encode("utf-8", "replace"), digest_size=6).hexdigest()


def line_level(tokens):
    """Severity from 0 (debug) to 4 (fatal), or -1 when the line states none."""
    return level_at(tokens)[0]


def level_at(tokens):
    """(severity, index of the token stating it), or (-1, None)."""
    return head_level(tuple(tokens[:LEVEL_SCAN_TOKENS]))


@lru_cache(maxsize=50_000)
def head_level(head):
    """``level_at`` of a line's first tokens (remembered: once masked, lines share their heads)."""
    for index, token in enumerate(head):
        level = token_level(token)
        if level is not None:
            return level, index
    return UNKNOWN_LEVEL, None


@lru_cache(maxsize=50_000)
def token_level(token):
    """The severity one token states (``ERROR``, ``[error]``, ``level=warn``...), or None."""
    match = _DECORATED.match(token)
    if not match:
        return None
    word = match.group(1)
    level = LEVELS.get(word.lower())
    if level is None:
        return None
    decorated = word != token
    return level if decorated or word.isupper() or word.istitle() else None


def severity_prior(level, prior_at_fatal):
    """The score a line's own level adds: 0 up to info, then a third, two thirds and all of
    ``prior_at_fatal`` for warning, error and fatal."""
    return prior_at_fatal * max(0, level - 1) / 3
