"""Benchmarks (see docs/BENCHMARKS.md). They start wispd with the tests' ``Daemon`` helper, whose config
defaults to five times the production heartbeat and sampling rates (fast tests); a bench passes
``PRODUCTION`` so it measures what a user runs."""

PRODUCTION = {"heartbeat_interval": 1.0, "heartbeat_timeout": 10.0, "sample_interval": 1.0}
