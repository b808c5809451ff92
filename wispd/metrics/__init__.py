"""Metrics: children count, wispd aggregates across restarts and serves Prometheus' /metrics."""
