"""The dead-letter topic: bad records with their reason, and per-reason counters for the web pages."""
from collections import Counter

from app.faust_app import deadletter_topic, metrics, redactor
from app.inputs.records import dead_letter

counters = Counter()  # reason -> count, for this worker since it started


async def send(reason, detail, message=None, value=None):
    """Publish a bad record from the log topic (its Kafka message gives topic/partition/offset)."""
    counters[reason] += 1
    metrics().deadletters.labels(reason=reason).inc()
    doc = dead_letter(reason, detail, redactor(), key=getattr(message, "key", None), value=value,
                      topic=getattr(message, "topic", None), partition=getattr(message, "partition", None),
                      offset=getattr(message, "offset", None))
    key = doc["key"].encode("utf-8") if doc["key"] else None
    await deadletter_topic.send(key=key, value=doc)
