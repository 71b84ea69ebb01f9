"""Synthetic traffic of services no shipped model has seen: for the demo, the tests and the benchmarks.

``service_lines(service, n, seed)`` writes ``n`` lines of a fictional service in a format of its
own (ISO timestamps, levels, key=value fields), drawn from a fixed set of message templates
with random values, so that a source's normal traffic repeats its patterns with varying fields,
as real services do.  ``FAILURES`` are lines no normal template produces.
"""
import random
from datetime import datetime, timedelta, timezone

TEMPLATES = {
    "payments": [
        (30, "INFO", "request_id={rid} POST /v1/charges status=200 latency_ms={ms} merchant={merchant}"),
        (20, "INFO", "request_id={rid} GET /v1/balance status=200 latency_ms={ms}"),
        (10, "INFO", "ledger sync committed batch={n} entries={n2} in {ms}ms"),
        (8, "DEBUG", "cache hit ratio={ratio} keys={n2}"),
        (5, "INFO", "settlement window closed for merchant={merchant} total={amount}"),
        (3, "WARN", "retrying call to fraud-scoring attempt={small} after {ms}ms"),
        (2, "INFO", "worker pool resized from {small} to {small2}"),
    ],
    "inventory": [
        (30, "info", "sku={sku} reserved qty={small} warehouse={wh} order={rid}"),
        (20, "info", "sku={sku} released qty={small} warehouse={wh}"),
        (10, "info", "replenishment scheduled sku={sku} eta_days={small}"),
        (8, "debug", "stock snapshot written rows={n2} duration={ms}ms"),
        (4, "warning", "low stock sku={sku} remaining={small} threshold={small2}"),
        (2, "info", "reindex of catalogue shard={small} finished in {ms}ms"),
    ],
}
LEVEL_FORMAT = {"payments": "{ts} {level:<5} [payments-api] {message}",
                "inventory": "{ts} level={level} svc=inventory {message}"}
FAILURES = {
    "payments": ("ERROR", "request_id={rid} ledger write rejected: constraint violation on journal, transaction rolled back"),
    "inventory": ("error", "sku={sku} warehouse={wh} stock table corrupted: negative quantity after compaction"),
}
SERVICES = tuple(TEMPLATES)


def _values(rng):
    return {"rid": f"{rng.getrandbits(48):012x}", "ms": rng.randint(2, 900), "n": rng.randint(1, 9999),
            "n2": rng.randint(100, 99999), "ratio": f"{rng.random():.2f}", "merchant": f"m_{rng.randint(1, 400)}",
            "amount": f"{rng.uniform(10, 9000):.2f}", "small": rng.randint(1, 16), "small2": rng.randint(1, 16),
            "sku": f"SKU-{rng.randint(10000, 99999)}", "wh": rng.choice(["ams1", "fra2", "dub1", "lis3"])}


def service_lines(service, n, seed=0, start=None):
    """``n`` normal lines of a synthetic service, one second apart from ``start``."""
    rng = random.Random(f"{service}-{seed}")
    weights, levels, messages = zip(*TEMPLATES[service])
    start = start or datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    out = []
    for i in range(n):
        k = rng.choices(range(len(messages)), weights)[0]
        ts = (start + timedelta(seconds=i, milliseconds=rng.randint(0, 999))).isoformat(timespec="milliseconds")
        out.append(LEVEL_FORMAT[service].format(ts=ts, level=levels[k], message=messages[k].format(**_values(rng))))
    return out


def failure_line(service, seed=0, when=None):
    """A failure the service's normal traffic never shows, in the service's own format."""
    rng = random.Random(f"{service}-failure-{seed}")
    ts = (when or datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)).isoformat(timespec="milliseconds")
    level, message = FAILURES[service]
    return LEVEL_FORMAT[service].format(ts=ts, level=level, message=message.format(**_values(rng)))
