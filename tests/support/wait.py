"""Polling with a deadline."""

from __future__ import annotations

import time

import pytest


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll until predicate() returns a truthy value and return it; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)
