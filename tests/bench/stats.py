"""Medians with their spread, and the few number formats the report uses."""

# ruff: noqa: RUF001, RUF002 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Summary", "mb", "ms", "paired_ratio", "percentile", "times"]


@dataclass(frozen=True, slots=True)
class Summary:
    """The median of a sample with its minimum, maximum and size."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        """Summarize ``values``.

        Raises:
            ValueError: no values.
        """
        if not values:
            raise ValueError("no values to summarize")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def spread(self, unit: str = "ms", digits: int = 1) -> str:
        """``min–max`` in ``unit``."""
        return f"{self.low:,.{digits}f}–{self.high:,.{digits}f} {unit}".strip()


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank).

    Raises:
        ValueError: no values.
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def paired_ratio(values: Sequence[float], baselines: Sequence[float]) -> float:
    """The median of ``value / baseline`` taken pair by pair (runs of the same round-robin round).

    Steadier than a ratio of medians when the machine's load drifts during the run.

    Raises:
        ValueError: no pairs, or the two sequences differ in length.
    """
    return statistics.median(value / baseline for value, baseline in zip(values, baselines, strict=True))


def ms(value: float, digits: int = 1) -> str:
    """Milliseconds with a unit."""
    return f"{value:,.{digits}f} ms"


def mb(value: float) -> str:
    """Megabytes (MiB) with a unit."""
    return f"{value:,.1f} MB"


def times(value: float) -> str:
    """A ratio such as ``2.31×``."""
    return f"{value:,.2f}×"
