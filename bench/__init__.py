"""Benchmarks: `python -m bench validate` (and the plan/apply benchmarks)."""
