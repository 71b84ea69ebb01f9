"""The output stage: Elasticsearch (client, mappings, bulk writes, queries) and the documents that leave clogs, redacted."""
