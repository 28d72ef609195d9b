"""Polling until something holds: the one wait loop of the real-server tests."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    """Call `predicate` every `interval` seconds (a second by default: most predicates ask
    Prefect's API, and a poll costs the machine's CPU the stack needs) until it returns something truthy (returned),
    or fail after `timeout` seconds naming `what` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
