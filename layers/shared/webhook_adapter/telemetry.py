"""Business metrics with a ``source`` dimension, as CloudWatch embedded metric format (no API call, no cost per put).

Counts are added up during an invocation and written by ``flush`` at its end: one log line per set
of dimensions (usually one per invocation), not one per count — log bytes are most of what
monitoring costs per event. ``flushed`` wraps a handler so nothing is left unwritten, whatever it
raises. Counts may come from several threads (deliver works on contacts in parallel).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from functools import wraps

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

__all__ = ["count", "flush", "flushed"]

type _Dimensions = tuple[tuple[str, str], ...]

_pending: dict[_Dimensions, Counter[str]] = {}
_lock = threading.Lock()


def count(name: str, value: int, *, source: str, **dimensions: str) -> None:
    """Add ``value`` to the count ``name`` of ``source`` (and any extra dimension), written at the next ``flush``.

    Honours ``POWERTOOLS_METRICS_DISABLED``.
    """
    if value <= 0 or is_metrics_disabled():
        return
    key = tuple(sorted({"source": source[:64], **dimensions}.items()))
    with _lock:
        _pending.setdefault(key, Counter())[name] += value


def flush() -> None:
    """Write what was counted since the last flush: one embedded-metric line per set of dimensions."""
    with _lock:
        pending = list(_pending.items())
        _pending.clear()
    for dimensions, counts in pending:
        metrics = EphemeralMetrics()
        for dimension, value in dimensions:
            metrics.add_dimension(name=dimension, value=value)
        for name, total in sorted(counts.items()):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=total)
        metrics.flush_metrics()


def flushed[**P, R](handler: Callable[P, R]) -> Callable[P, R]:
    """``handler``, writing the invocation's counts when it returns or raises."""

    @wraps(handler)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        finally:
            flush()

    return run
