"""Benchmarks: `python -m bench NAME` (see bench/__main__.py).

Each benchmark exits 0 when it ran and met its targets, TARGETS_MISSED when it ran to the end and
printed its figures but missed a target, and anything else (1 for an uncaught exception, 2 for a
usage error) when it is broken: a test can tell "slow on this machine" from "no longer runs".
"""

TARGETS_MISSED = 3
