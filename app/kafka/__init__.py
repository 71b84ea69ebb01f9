"""Kafka clients outside Faust: how they connect (security) and the topics the CLI makes (admin)."""
