"""Faust agents: scoring (micro-batches through the model), per-source thresholds, Elasticsearch sink."""
