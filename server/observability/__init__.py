"""What the service records of each request: Prometheus counters and one JSON log line."""
