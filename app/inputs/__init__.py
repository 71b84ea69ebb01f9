"""The input stage: log files, stdin and followed files, shippers' records -> log-topic records."""
