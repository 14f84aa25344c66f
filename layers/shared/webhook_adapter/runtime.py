"""Per-container caching: what a warm Lambda reuses, and one switch (``reset``) that forgets it all.

Settings, clients, sources and the built steps are created on first use through ``cached`` so
warm invocations reuse them; tests and the local stack call ``reset()`` after changing the
environment, and the next call rebuilds everything against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import cast

__all__ = ["cached", "now_ms", "on_reset", "reset"]

_CLEARS: list[Callable[[], None]] = []
_CLOSES: list[Callable[[], None]] = []


def cached[**P, R](builder: Callable[P, R]) -> Callable[P, R]:
    """``builder``'s results, built on first call (per arguments) and kept for the container's life."""
    kept = cache(builder)
    _CLEARS.append(kept.cache_clear)
    return cast("Callable[P, R]", kept)


def on_reset(close: Callable[[], None]) -> None:
    """Run ``close`` once, at the next ``reset``, before the caches are forgotten (e.g. to close a pool)."""
    _CLOSES.append(close)


def reset() -> None:
    """Forget every cached setting, client, source, secret and step."""
    while _CLOSES:
        _CLOSES.pop()()
    for clear in _CLEARS:
        clear()


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)
