"""The one inference path: ``Scorer.score_batch(lines) -> [LineScore]``.

Used by the CLI, the Faust worker and the benchmarks alike.

Score of a line = mean reconstruction cross-entropy over its tokens
                  + the largest novelty penalty among its tokens outside the vocabulary.
A never-seen token is the strongest hint of novelty, but the autoencoder reconstructs the
single ``<unk>`` id easily, which would make novel lines look normal; the penalty puts it
back.  It is the surprise of a new token *where it stands*: -log P(novel | previous token),
learnt from the training data (see ``unknown_token_penalty``), so a new file name after
"loading" costs little and a new word in a fixed message costs a lot.  The largest penalty
counts, not their sum: a normal line with several variable fields must not outscore a line
with one truly new word.  The per-token losses, with their penalties, give ``top_tokens``:
the tokens that explain the score.

Inference sorts a batch by length and cuts it in chunks of lines of about the same length, each
padded only to its longest line; scores are the same as with fixed-length padding, to float
rounding (tests/test_model.py).  Lines repeat a lot once
normalised, so results are cached by token sequence (LRU, ``cache_size``; 0 disables it).
"""
import ctypes
import functools
import gc
import math
import sys
import tempfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from operator import itemgetter

import torch

from . import checkpoint
from .patterns import level_at, pattern_key, severity_prior
from .vocab import PAD_ID, UNK_ID

# "fp32": exact.  "bf16": the output projection over the vocabulary (most of the model's arithmetic) in
# bfloat16, the LSTMs and the cross-entropy in fp32 -- scores within about 0.01 of fp32 (docs/figures.md).
PRECISIONS = ("fp32", "bf16")
PROJECTION_DTYPE = {"fp32": None, "bf16": torch.bfloat16}
MAX_LINE_CHARS = 64_000  # a longer line is cut before normalisation (a 1 MB line is never a crash)
TOP_K = 3
BOS = "<s>"
# A chunk (one forward pass) ends where its lines grow LENGTH_STEP times longer than its first, once
# it holds MIN_CHUNK lines: the LSTMs run every line of a chunk over the chunk's longest, so one long
# line among short ones made them do 1.6x the work on bench_speed's lines (1.1x now).
LENGTH_STEP = 1.25
MIN_CHUNK = 32


@dataclass
class LineScore:
    score: float
    tokens: int
    unknown: int
    top_tokens: list = field(default_factory=list)
    top_losses: list = field(default_factory=list)
    truncated: bool = False
    base: float = 0.0           # mean reconstruction cross-entropy, without novelty penalties
    novel: list = field(default_factory=list)   # [token, penalty] for each distinct out-of-vocabulary token
    pattern: str = ""           # model.patterns.pattern_key of the tokens
    level: int = -1             # model.patterns.line_level of the tokens


class Scorer:
    def __init__(self, model, vocab, normaliser, config=None, device="cpu", threads=0, chunk_size=256,
                 cache_size=100_000, replay=None, precision="fp32"):
        self.model = model.to(device).eval()
        self.vocab = vocab
        self.normaliser = normaliser
        self.config = dict(config or {})
        self.device = device
        self.max_len = int(self.config.get("max_len", 64))
        self.chunk_size = chunk_size
        self.unknown_penalty = math.log(len(vocab))
        self.novelty = self.config.get("novelty") or {}
        self.calibration = self.config.get("calibration", {})
        # nats a fatal line's own level adds to its score (0 for checkpoints trained before it existed)
        self.prior_at_fatal = float(self.config.get("hyperparameters", {}).get("severity_prior", 0.0))
        self.model_version = self.config.get("model_version", "unversioned")
        self.cache_size = cache_size
        if precision not in PRECISIONS:
            raise ValueError(f"scoring precision {precision!r} (CLOGS_SCORER_PRECISION): expected one of "
                             f"{', '.join(PRECISIONS)}")
        self.precision = precision
        self._cache = OrderedDict()
        self.replay = list(replay or [])  # a sample of its training lines, rehearsed when it is retrained
        if threads:
            torch.set_num_threads(threads)
        keep_freed_memory()

    @classmethod
    def from_checkpoint(cls, checkpoint_dir="checkpoints", device="cpu", threads=0, **kwargs):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, vocab, normaliser, config = checkpoint.load(checkpoint_dir, device=device)
        return cls(model, vocab, normaliser, config, device=device, threads=threads,
                   replay=checkpoint.load_replay(checkpoint_dir), **kwargs)

    @classmethod
    def from_bytes(cls, payload, device="cpu", **kwargs):
        """A Scorer from a checkpoint published as bytes (``model.checkpoint.to_bytes``)."""
        with tempfile.TemporaryDirectory(prefix="clogs-checkpoint-") as folder:
            checkpoint.unpack(payload, folder)
            return cls.from_checkpoint(folder, device=device, **kwargs)

    def save(self, out_dir):
        """Write this Scorer as a checkpoint folder (model.pth, vocab_full.json, config.json)."""
        checkpoint.save(out_dir, self.model, self.vocab, self.config, replay=self.replay)
        return out_dir

    # -- preparation ------------------------------------------------------------------
    def prepare(self, line):
        """Line (str or bytes) -> (tokens kept, truncated?)."""
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        truncated = len(line) > MAX_LINE_CHARS
        tokens = self.normaliser.tokenize(line[:MAX_LINE_CHARS], limit=self.max_len + 1)
        if len(tokens) > self.max_len:
            tokens, truncated = tokens[: self.max_len], True
        return tokens, truncated

    # -- scoring ----------------------------------------------------------------------
    def score_batch(self, lines):
        """One LineScore per input line, in order; empty lines score 0 with 0 tokens."""
        with gc_paused():
            return self._score_batch(lines)

    def _score_batch(self, lines):
        prepared = [self.prepare(line) for line in lines]
        results = [None] * len(lines)
        todo = {}
        for i, (tokens, truncated) in enumerate(prepared):
            if not tokens:
                results[i] = LineScore(0.0, 0, 0, [], [], truncated)
                continue
            key = tuple(tokens)
            hit = self._cache.get(key) if self.cache_size else None
            if hit is not None:
                self._cache.move_to_end(key)
                results[i] = _with_truncated(hit, truncated)
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            keys = list(todo)
            for key, result in zip(keys, self._score_tokens(keys)):
                if self.cache_size:
                    self._cache[key] = result
                for i in todo[key]:
                    results[i] = _with_truncated(result, prepared[i][1])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return results

    def score_line(self, line):
        return self.score_batch([line])[0]

    @torch.inference_mode()
    def _score_tokens(self, token_lists):
        """Score distinct token lists: sorted by length, chunked, each chunk padded to its longest."""
        order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
        out = [None] * len(token_lists)
        for idx in length_chunks([len(token_lists[i]) for i in order], self.chunk_size):
            idx = order[idx]
            for i, result in zip(idx, self.score_tokens_padded([token_lists[i] for i in idx])):
                out[i] = result
        return out

    @torch.inference_mode()
    def score_tokens_padded(self, token_lists, pad_to=None):
        """Score token lists in one forward pass, padded to ``pad_to`` or to the longest."""
        width = pad_to or max(len(t) for t in token_lists)
        encoded = [self.vocab.encode(tokens) for tokens in token_lists]
        ids = torch.tensor([row + [PAD_ID] * (width - len(row)) for row in encoded], dtype=torch.long)
        lengths = torch.tensor([len(t) for t in token_lists], dtype=torch.long)
        losses = self.model.token_losses(ids.to(self.device), lengths.to(self.device),
                                         PROJECTION_DTYPE[self.precision]).cpu()
        order, tied = rank_positions(losses, lengths)   # the top tokens of most lines need no Python sort
        results = []
        for tokens, row_ids, row_losses, row_order, row_tied in zip(token_lists, encoded, losses.tolist(), order, tied):
            n = len(tokens)
            row_losses = row_losses[:n]
            unknown = [i for i, token_id in enumerate(row_ids) if token_id == UNK_ID] if UNK_ID in row_ids else []
            novel = {}  # token -> [penalty, occurrences]
            for i in unknown:  # the model cannot reconstruct what it never saw: its penalty stands in
                penalty = self.unknown_token_penalty(tokens, i)
                row_losses[i] = penalty
                entry = novel.setdefault(tokens[i], [penalty, 0])
                entry[0], entry[1] = max(entry[0], penalty), entry[1] + 1
            if unknown:
                base = sum(loss for i, loss in enumerate(row_losses) if row_ids[i] != UNK_ID) / n
                score = content_score(base, n, novel.values())
            else:   # the same sum, in the same order, without a Python step per token
                base = score = sum(row_losses) / n   # content_score(base, n, []) is base
            level, at = level_at(tokens)
            prior = severity_prior(level, self.prior_at_fatal)
            if prior:
                score += prior
                row_losses[at] += prior
            top = (_top_tokens(tokens, row_losses, unknown) if unknown or prior or row_tied
                   else _top_in_order(tokens, row_losses, row_order))
            results.append(LineScore(score, n, len(unknown), *top, base=base,
                                     novel=[[t, round(p, 4), k] for t, (p, k) in novel.items()],
                                     pattern=pattern_key(tokens), level=level))
        return results

    def unknown_token_penalty(self, tokens, i, leave_out=False):
        """Surprise of an unknown token at position i: -log P(novel token | previous token).

        P comes from the training data (``config["novelty"]``): how often the previous token
        was followed by a token seen nowhere else, smoothed towards the global rate.  A new
        value in a slot that varies in normal traffic (a file name after "loading") costs
        little; a new word where normal lines never change costs a lot.  Without novelty
        statistics (older checkpoints) the penalty is log |V|.
        """
        if not self.novelty:
            return self.unknown_penalty
        prev = tokens[i - 1] if i > 0 else BOS
        seen, novel = self.novelty["contexts"].get(prev, (0, 0))
        if leave_out:  # calibration: this occurrence is the novel one, take it out
            seen, novel = seen - 1, novel - 1
        alpha, base = self.novelty["alpha"], self.novelty["rate"]
        return -math.log((novel + alpha * base) / (seen + alpha))


def length_chunks(lengths, most):
    """Slices of ``lengths`` (sorted, ascending): at most ``most`` items each, and a new one once the
    next length passes LENGTH_STEP times the slice's first (not before MIN_CHUNK items)."""
    start, n = 0, len(lengths)
    while start < n:
        end, limit, longest = start + 1, min(n, start + most), lengths[start] * LENGTH_STEP
        while end < limit and (lengths[end] <= longest or end - start < MIN_CHUNK):
            end += 1
        yield slice(start, end)
        start = end


@contextmanager
def gc_paused():
    """No cyclic garbage collection inside.  Scoring allocates a dozen containers a line, none of them
    in a cycle, and at Python's defaults the collector walked the heap (torch, the model, the caller's
    data) every 700 of them: 6 us of a line's ~35 us of Python (docs/figures.md, issue 11).  The
    caller's setting is restored after; what scoring left is collected then as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@functools.cache   # once per process
def keep_freed_memory(trim=64 << 20, mmap=16 << 20):
    """Scoring frees and allocates tensors of up to a few MB on every chunk, of varying sizes.  glibc's
    malloc hands such memory back to the kernel as soon as twice the largest block is free at the
    top of its heap, and the next chunk faults every page in again: 10 page faults a line and 3 s of
    system time per 120,000 lines on bench_speed's lines.  Keep up to ``trim`` bytes free instead,
    and serve blocks under ``mmap`` bytes from the heap (peak RSS +20 MB).  glibc only -- elsewhere
    (musl, macOS) nothing is changed."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_TRIM_THRESHOLD, trim)
    mallopt(M_MMAP_THRESHOLD, mmap)


def content_score(base, n, novel):
    """Mean surprise per token -- the reconstruction loss of known tokens (``base`` is their sum
    over n) plus the novelty penalty of each never-seen token -- and the largest penalty once more,
    so one truly new word counts fully however long the line.  ``novel``: [(penalty, occurrences)]."""
    novel = list(novel)
    return base + sum(p * k for p, k in novel) / n + max((p for p, _ in novel), default=0.0)


def _top_tokens(tokens, losses, unknown=(), k=TOP_K):
    """The k tokens that explain a score: never-seen tokens first (by penalty), then by loss."""
    if not unknown and len(set(losses)) == len(losses):
        # No two positions tie: taking positions by loss, highest first, and skipping a token met
        # before picks each token at its largest loss -- the same k tokens, in the same order, as
        # the general path below, without a Python step per token.
        return _top_in_order(tokens, losses, sorted(range(len(losses)), key=losses.__getitem__, reverse=True), k)
    best = {}
    for token, loss in zip(tokens, losses):
        if loss > best.get(token, -1.0):
            best[token] = loss
    if unknown:
        novel = {tokens[i] for i in unknown}
        top = sorted(best.items(), key=lambda kv: (kv[0] not in novel, -kv[1]))[:k]
    else:   # a stable sort by loss, highest first (what heapq.nlargest gives, sorted in C)
        top = sorted(best.items(), key=itemgetter(1), reverse=True)[:k]
    return [t for t, _ in top], [round(loss, 4) for _, loss in top]


def rank_positions(losses, lengths):
    """Each row's positions by loss, highest first (stable, so padding comes last), and whether two
    of its real positions tie, as lists: ``losses`` (rows, width), 0 at padding; ``lengths`` (rows,)."""
    ranked, order = losses.sort(dim=1, descending=True, stable=True)
    tied = (ranked[:, 1:] == ranked[:, :-1]) & (torch.arange(1, losses.size(1)) < lengths[:, None])
    return order.tolist(), tied.any(dim=1).tolist()


def _top_in_order(tokens, losses, order, k=TOP_K):
    """``_top_tokens`` of a line without unknown tokens whose losses do not tie, given its positions
    by loss, highest first (padding last): each token at its first, so largest, loss."""
    top, seen, n = [], set(), len(tokens)
    for i in order:
        if i >= n:
            break
        if tokens[i] not in seen:
            seen.add(tokens[i])
            top.append(i)
            if len(top) == k:
                break
    return [tokens[i] for i in top], [round(losses[i], 4) for i in top]


def _with_truncated(result, truncated):
    if result.truncated == truncated:
        return result
    return replace(result, truncated=truncated)
