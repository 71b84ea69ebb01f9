"""Rate and silence: what a per-line score cannot see.

A source's lines are counted in tumbling windows of ``window`` seconds (the worker keeps the
counts in a Faust windowed table; this module only sees the numbers).  ``RateState``
(model/state.py) keeps, per source, Welford statistics of the counts of its completed windows
(a window flagged as a burst stays out of them, as flagged lines stay out of the score baseline)
and of the gaps between its batches of lines.

* **Burst** (``is_burst``): once the source's usual rate is known (``min_windows`` windows), a
  window whose count exceeds mean + ``factor`` x std *and* ``ratio`` x mean *and* ``min_lines``.
* **Silence** (``is_silent``): a steady source (usual rate known, at least ``min_gaps`` gaps
  measured) that sent nothing for longer than max(``silence_min``, ``silence_factor`` x (mean +
  3 std of its gaps)).  Checked by the worker's timer, since a silent source sends no events.

Times are Unix seconds (the worker's clock: when lines reached the threshold agent).
"""
import math
from dataclasses import dataclass

from .state import welford


@dataclass(frozen=True)
class RatePolicy:
    window: float = 60.0
    history: int = 60
    min_windows: int = 10
    factor: float = 4.0
    ratio: float = 3.0
    min_lines: int = 20
    silence_factor: float = 5.0
    silence_min: float = 120.0
    min_gaps: int = 10

    @classmethod
    def of(cls, settings):
        """The policy that a settings object (app/settings.py ``Settings``) describes."""
        return cls(window=settings.rate_window, history=settings.rate_history, min_windows=settings.rate_min_windows,
                   factor=settings.rate_factor, ratio=settings.rate_ratio, silence_factor=settings.silence_factor,
                   silence_min=settings.silence_min_seconds)


def window_start(t, size):
    return t - (t % size)


def std(n, m2):
    return math.sqrt(m2 / n) if n > 1 else 0.0


def roll(state, now, policy, count_of):
    """Fold the windows that closed before ``now`` into the source's statistics, in place.
    ``count_of(start)`` -> the count of the window starting at ``start``.  A source's first
    window starts its history; at most ``history`` closed windows are read (older ones are gone
    from the windowed table: a longer gap folds as that many empty windows)."""
    current = window_start(now, policy.window)
    if state.closed_until <= 0:
        state.closed_until = current
        return state
    pending = int(round((current - state.closed_until) / policy.window))
    start = max(state.closed_until, current - policy.history * policy.window)
    for _ in range(min(pending, policy.history)):
        if start != state.burst_window:
            state.n, state.mean, state.m2 = welford(state.n, state.mean, state.m2, count_of(start))
        start += policy.window
    state.closed_until = max(state.closed_until, current)   # a clock that stepped back folds nothing twice
    return state


def note_lines(state, now, lines):
    """``lines`` new lines arrived at ``now``: measure the gap since the last ones, in place.
    Returns the seconds of silence that just ended (0.0 if the source was not flagged silent)."""
    ended = 0.0
    if lines <= 0:
        return ended
    if state.silent_since:
        ended = now - state.last_line_at
        state.silent_since = 0.0   # the gap that ended a silence is no usual gap
    elif state.last_line_at:
        state.gap_n, state.gap_mean, state.gap_m2 = welford(state.gap_n, state.gap_mean, state.gap_m2,
                                                            now - state.last_line_at)
    state.last_line_at = now
    return ended


def usual_rate(state):
    return state.mean, std(state.n, state.m2)


def is_burst(state, count, policy):
    if state.n < policy.min_windows:
        return False
    mean, spread = usual_rate(state)
    return count > max(mean + policy.factor * spread, policy.ratio * mean, policy.min_lines)


def silence_after(state, policy):
    """Seconds without a line after which this source counts as silent."""
    return max(policy.silence_min, policy.silence_factor * (state.gap_mean + 3 * std(state.gap_n, state.gap_m2)))


def is_silent(state, now, policy):
    steady = state.n >= policy.min_windows and state.gap_n >= policy.min_gaps and state.last_line_at > 0
    return steady and now - state.last_line_at > silence_after(state, policy)
