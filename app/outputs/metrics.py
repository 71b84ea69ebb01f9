"""The worker's metrics, in the Prometheus text format (``GET /metrics``, through prometheus_client):
what comes in and is flagged per source, dead letters per reason, Elasticsearch bulk latency and
failures, scoring latency, the lag from ingest to indexed, and -- gathered at each scrape by the
worker's hooks -- open incidents, consumer lag, the model version and each source's learning.

Per-source labels stay bounded (``SourceLabels``): the busiest ``named`` sources a worker has seen
keep their name, every other source is counted under ``other``, so ten thousand file paths cannot
explode a Prometheus.
"""
from bisect import bisect_left
from collections import Counter as Tally

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

OTHER = "other"
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class SourceLabels:
    """Counts per source under bounded labels: at most ``named`` sources keep their own label,
    chosen as the busiest ones at each scrape while labels are free (a named source stays named,
    so its series never moves); the others are summed under ``other``.  At most ``remembered``
    unnamed sources are counted one by one (to find the busiest); past that the quieter half of them is
    folded into ``other``."""

    def __init__(self, named=50, remembered=10_000):
        self.named, self.remembered = named, remembered
        self.labels = set()
        self.events, self.flagged = Tally(), Tally()

    def add(self, source, events, flagged):
        if source not in self.events and len(self.events) >= self.remembered + len(self.labels) + 1:
            self._fold_quieter_half()
        self.events[source] += events
        self.flagged[source] += flagged

    def _fold_quieter_half(self):
        """Make room: the quieter half of the unnamed sources is folded into ``other`` (a busy
        source that came late stays above the half, and is named once a label is free)."""
        unnamed = sorted((n, s) for s, n in self.events.items() if s not in self.labels and s != OTHER)
        for _, source in unnamed[: len(unnamed) // 2 + 1]:
            self.events[OTHER] += self.events.pop(source)
            self.flagged[OTHER] += self.flagged.pop(source, 0)

    def label(self, source):
        return source if source in self.labels else OTHER

    def series(self):
        """[(label, events, flagged)], naming the busiest sources while labels are free."""
        free = self.named - len(self.labels)
        if free > 0:
            waiting = [(n, s) for s, n in self.events.items() if s not in self.labels and s != OTHER]
            self.labels.update(s for _, s in sorted(waiting, reverse=True)[:free])
        totals = {}
        for source, events in self.events.items():
            label = self.label(source)
            seen, flagged = totals.get(label, (0, 0))
            totals[label] = (seen + events, flagged + self.flagged[source])
        return sorted((label, events, flagged) for label, (events, flagged) in totals.items())


class PlainHistogram:
    """A histogram kept as plain counts, for values observed once per line by the event loop's own
    thread (prometheus_client's Histogram takes a lock per bucket and value: a microsecond a line)."""

    def __init__(self, name, documentation, buckets):
        self.name, self.documentation, self.bounds = name, documentation, list(buckets)
        self.counts, self.sum = [0] * (len(self.bounds) + 1), 0.0

    def observe(self, value):
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self):
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts):
            cumulative += count
            buckets.append((bound, cumulative))
        return HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self.sum)


class Metrics:
    """One worker's metrics and the registry /metrics renders."""

    def __init__(self, named_sources=50):
        self.registry = CollectorRegistry()
        self.sources = SourceLabels(named_sources)
        self.hooks = []   # callables that yield metric families at scrape time (app/web.py)
        r = self.registry
        self.deadletters = Counter("clogs_deadletters", "Records sent to the dead-letter topic, by reason",
                                   ["reason"], registry=r)
        self.bulk_seconds = Histogram("clogs_elasticsearch_bulk_seconds", "Seconds per bulk request Elasticsearch "
                                      "accepted", registry=r)
        self.bulk_failures = Counter("clogs_elasticsearch_failures", "Failed Elasticsearch writes, by kind "
                                     "(unreachable, retryable, blocked, rejected)", ["kind"], registry=r)
        self.scoring_seconds = Histogram("clogs_scoring_batch_seconds", "Seconds the model took per micro-batch",
                                         registry=r)
        self.scored_lines = Counter("clogs_scored_lines", "Lines the model scored", registry=r)
        self.lag_seconds = PlainHistogram("clogs_end_to_end_lag_seconds", "Seconds from a line's ingest to the "
                                          "moment Elasticsearch accepted its bulk request", LAG_BUCKETS)
        self.notifications = Counter("clogs_notifications", "Notification messages, by target and outcome (sent, "
                                     "refused: a 4xx, failed: the tries ran out)", ["target", "outcome"], registry=r)
        self.model_info = Gauge("clogs_model_info", "The model version that scores new lines (value 1)",
                                ["model_version"], registry=r)
        r.register(self)

    def count(self, source, events, flagged):
        """A source's new events and how many of them were flagged."""
        self.sources.add(source, events, flagged)

    def model(self, version):
        self.model_info.clear()
        self.model_info.labels(model_version=version).set(1)

    def collect(self):
        """prometheus_client's collector protocol: the per-source counts, then the hooks' families."""
        events = CounterMetricFamily("clogs_events", "Events that reached the threshold agent, per source "
                                     "(the busiest by name, the rest as 'other')", labels=["source"])
        flagged = CounterMetricFamily("clogs_events_flagged", "Events flagged as anomalies, per source",
                                      labels=["source"])
        for label, seen, anomalies in self.sources.series():
            events.add_metric([label], seen)
            flagged.add_metric([label], anomalies)
        yield events
        yield flagged
        yield self.lag_seconds.family()
        for hook in self.hooks:
            yield from hook()

    def describe(self):
        return []   # collected at each scrape (no fixed description)

    def render(self):
        """(body, content type) of the /metrics page."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
