"""Business metrics with a ``source`` dimension, as CloudWatch embedded metric format (no API call, no cost per put).

Counts and timings are gathered during an invocation and written by ``flush`` at its end: one log
line per set of dimensions (usually one or two per invocation), not one per event — log bytes are
most of what monitoring costs per event. Each line declares a second dimension set without
``source`` (``service`` and the other dimensions): the adapter-wide totals the alarms read, with no
line of their own. ``flushed`` wraps a handler so nothing is left unwritten, whatever it raises.
Counts may come from several threads (deliver works on contacts in parallel).

Dimensions stay bounded: a source name, a status, a code or a status class, never a contact or an id.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

__all__ = ["count", "flush", "flushed", "observe_ms"]

type _Dimensions = tuple[tuple[str, str], ...]

_SOURCE = "source"


@dataclass(slots=True)
class _Line:
    """What one set of dimensions gathered since the last flush."""

    counts: Counter[str] = field(default_factory=Counter)
    timings: dict[str, list[float]] = field(default_factory=dict)


_pending: dict[_Dimensions, _Line] = {}
_lock = threading.Lock()


def _key(source: str, dimensions: dict[str, str]) -> _Dimensions:
    return tuple(sorted({_SOURCE: source[:64], **dimensions}.items()))


def count(name: str, value: int, *, source: str, **dimensions: str) -> None:
    """Add ``value`` to the count ``name`` of ``source`` (and any extra dimension), written at the next ``flush``.

    Honours ``POWERTOOLS_METRICS_DISABLED``.
    """
    if value <= 0 or is_metrics_disabled():
        return
    key = _key(source, dimensions)
    with _lock:
        _pending.setdefault(key, _Line()).counts[name] += value


def observe_ms(name: str, milliseconds: float, *, source: str, **dimensions: str) -> None:
    """Keep one timing of ``name`` (milliseconds) for ``source``, written with the counts at the next ``flush``.

    Every value is kept (CloudWatch computes the percentiles); a line carries at most 100 values
    of a metric, and Powertools starts another line beyond that. Honours ``POWERTOOLS_METRICS_DISABLED``.
    """
    if is_metrics_disabled():
        return
    key = _key(source, dimensions)
    with _lock:
        _pending.setdefault(key, _Line()).timings.setdefault(name, []).append(round(max(milliseconds, 0.0)))


def flush() -> None:
    """Write what was gathered since the last flush: one embedded-metric line per set of dimensions."""
    with _lock:
        pending = list(_pending.items())
        _pending.clear()
    for dimensions, line in pending:
        metrics = EphemeralMetrics()
        for dimension, value in dimensions:
            metrics.add_dimension(name=dimension, value=value)
        # The same values again without the source: what the alarms read (one dimension set each, no SEARCH).
        metrics.add_dimensions(
            **{"service": str(metrics.service)}, **{name: value for name, value in dimensions if name != _SOURCE}
        )
        for name, total in sorted(line.counts.items()):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=total)
        for name, values in sorted(line.timings.items()):
            for milliseconds in values:
                metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)
        if metrics.metric_set:  # empty when Powertools wrote them all at 100 values
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
