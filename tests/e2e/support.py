"""The local stack ``make run`` starts, for the end-to-end tests: started with a listener, and a wait on its batches.

One module (imported as ``e2e.support`` by ``conftest.py`` and the tests alike), so the fixture's listener and the
tests' waits share one condition.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

from devstack.stack import LocalStack, StackOptions

BATCH_DONE = threading.Condition()
"""Notified by the local poller after each delivered batch: tests wait on it instead of sleeping."""


def batch_done(records: list[dict[str, Any]], failed: set[str]) -> None:
    with BATCH_DONE:
        BATCH_DONE.notify_all()


def stack_with(**environment: str) -> Generator[LocalStack]:
    """The local stack on free ports, as ``make run`` starts it (without the demo), retrying at once."""
    options = StackOptions(port=0, environment={"RETRY_BASE_SECONDS": "0", **environment}, on_batch=batch_done)
    with LocalStack(options) as running:
        yield running


def wait_for[T](probe: Callable[[], T | None], *, timeout: float = 15.0) -> T:
    """``probe``'s first truthy answer, checked again after each delivered batch; fail at the deadline."""
    found: list[T] = []

    def ready() -> bool:
        value = probe()
        if value:
            found.append(value)
        return bool(value)

    with BATCH_DONE:
        if not BATCH_DONE.wait_for(ready, timeout=timeout):
            raise AssertionError(f"condition not met within {timeout} s")
    return found[-1]
