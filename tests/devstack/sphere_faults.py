"""The Sphere stand-in's faults: what to do to each API request, decided when it arrives.

Counted faults hit the next *n* requests (fail, drop, hold, apply-then-fail, apply-then-drop);
a seeded random rate hits a share of all requests with a mix of transient faults, for chaos
loads. Every injected fault is counted by kind. ``Faults`` is plain state: the stand-in guards it
with its lock and turns a ``FaultPlan`` into an answer (or none).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from random import Random
from typing import Any, Final, Literal

__all__ = [
    "APPLIED_THEN_FAILED",
    "DEFAULT_RANDOM_KINDS",
    "MAX_FAULT_STATUS",
    "MIN_FAULT_STATUS",
    "FaultKind",
    "FaultPlan",
    "Faults",
    "RandomFaults",
    "require_count",
    "require_seconds",
    "require_status",
]

MIN_FAULT_STATUS: Final = 400
MAX_FAULT_STATUS: Final = 599


class FaultKind(StrEnum):
    """A transient fault the random rate can inject (and the name it is counted under)."""

    RATE_LIMITED = "429"
    """429 with ``Retry-After``; nothing applied."""
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    TIMEOUT = "timeout"
    """Held past the client's timeout, then closed unanswered; nothing applied."""
    DROP = "drop"
    """Closed at once without an answer; nothing applied."""
    APPLIED_THEN_502 = "applied-then-502"
    """Processed (applied when valid), then answered 502 as a failing gateway would."""
    APPLIED_THEN_DROP = "applied-then-drop"
    """Processed (applied when valid), then closed without an answer."""


DEFAULT_RANDOM_KINDS: Final = tuple(FaultKind)
"""Every kind, equally likely."""

APPLIED_THEN_FAILED: Final = "applied-then-failed"
"""The count of failed answers (applied-then-502, applied-then-drop) whose update was applied."""

type Action = Literal["none", "drop", "timeout", "hang", "fail", "applied_fail", "applied_drop"]


def require_count(value: Any, name: str) -> int:
    """Raises: ValueError: ``value`` is not an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0")
    return value


def require_seconds(value: Any, name: str, *, allow_zero: bool) -> float:
    """Raises: ValueError: ``value`` is not a finite number of seconds in range."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}")
    return float(value)


def require_status(value: Any, name: str) -> int:
    """Raises: ValueError: ``value`` is not an integer HTTP error status."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_FAULT_STATUS <= value <= MAX_FAULT_STATUS:
        raise ValueError(f"{name} must be an integer within {MIN_FAULT_STATUS}..{MAX_FAULT_STATUS}")
    return value


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do to one API request.

    ``action``: ``none`` (process it), ``drop`` (close unanswered), ``timeout`` (hold, then process),
    ``hang`` (hold, then close unanswered), ``fail`` (answer the failure unprocessed),
    ``applied_fail`` / ``applied_drop`` (process it, then answer the failure / close unanswered).
    ``kind`` names the fault for the request log and the counters (``None`` when there is none).
    """

    action: Action
    latency_seconds: float = 0.0
    timeout_seconds: float = 0.0
    fail_status: int = HTTPStatus.SERVICE_UNAVAILABLE
    fail_retry_after: str | None = None
    fail_body: str | Mapping[str, Any] | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class RandomFaults:
    """A seeded share of requests failing with transient faults.

    Args:
        rate: share of API requests that fail, 0 to 1.
        seed: seed of the draws; the same seed gives the same faults in the same request order.
        kinds: the faults drawn from, equally likely.
        retry_after: the ``Retry-After`` of a 429 (``None``: no header).
        timeout_seconds: how long a ``timeout`` fault holds the request before closing it.
    """

    rate: float
    seed: int = 0
    kinds: tuple[FaultKind, ...] = DEFAULT_RANDOM_KINDS
    retry_after: str | None = "1"
    timeout_seconds: float = 1.0

    @classmethod
    def checked(
        cls,
        rate: Any,
        *,
        seed: Any = 0,
        kinds: Iterable[Any] = DEFAULT_RANDOM_KINDS,
        retry_after: Any = 1,
        timeout_seconds: Any = 1.0,
    ) -> RandomFaults:
        """Validated settings.

        Raises:
            ValueError: a rate outside 0..1, an unknown or no kind, a ``retry_after`` that is not an
                integer or a string, a timeout not > 0.
            TypeError: a seed that is not an integer.
        """
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError("rate must be a number within 0..1")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError("seed must be an integer")
        names = [str(kind) for kind in kinds] if not isinstance(kinds, str) else [kinds]
        unknown = sorted(set(names) - set(FaultKind))
        if unknown or not names:
            raise ValueError(f"kinds must be a non-empty list of {', '.join(FaultKind)}")
        if retry_after is not None and (isinstance(retry_after, bool) or not isinstance(retry_after, int | str)):
            raise ValueError("retryAfter must be an integer or a string")
        return cls(
            rate=float(rate),
            seed=seed,
            kinds=tuple(FaultKind(name) for name in names),
            retry_after=None if retry_after is None else str(retry_after),
            timeout_seconds=require_seconds(timeout_seconds, "timeoutSeconds", allow_zero=False),
        )

    @classmethod
    def from_json(cls, spec: Any) -> RandomFaults:
        """From the control API's ``{"rate", "seed"?, "kinds"?, "retryAfter"?, "timeoutSeconds"?}``.

        Raises:
            ValueError: not that shape, or a value out of range.
            TypeError: a seed that is not an integer, kinds that are not a list.
        """
        allowed = {"rate", "seed", "kinds", "retryAfter", "timeoutSeconds"}
        if not isinstance(spec, dict) or "rate" not in spec or not set(spec) <= allowed:
            raise ValueError(
                'random must be {"rate": number, "seed"?: int, "kinds"?: [str], "retryAfter"?: int|str, '
                '"timeoutSeconds"?: number}'
            )
        kinds = spec.get("kinds", DEFAULT_RANDOM_KINDS)
        if not isinstance(kinds, list | tuple):
            raise TypeError("kinds must be a list")
        return cls.checked(
            spec["rate"],
            seed=spec.get("seed", 0),
            kinds=kinds,
            retry_after=spec.get("retryAfter", 1),
            timeout_seconds=spec.get("timeoutSeconds", 1.0),
        )

    def to_json(self) -> dict[str, Any]:
        """As the control API shows it."""
        return {
            "rate": self.rate,
            "seed": self.seed,
            "kinds": [str(kind) for kind in self.kinds],
            "retryAfter": self.retry_after,
            "timeoutSeconds": self.timeout_seconds,
        }


@dataclass(slots=True)
class Faults:
    """Pending fault instructions and the count of faults injected; the caller guards it with a lock."""

    latency_seconds: float = 0.0
    fail_count: int = 0
    fail_status: int = HTTPStatus.SERVICE_UNAVAILABLE
    fail_retry_after: str | None = None
    fail_body: str | Mapping[str, Any] | None = None
    fail_customer: str | None = None
    """Only requests for this customer take the counted failure (``None``: any request)."""
    drop_count: int = 0
    timeout_count: int = 0
    timeout_seconds: float = 0.0
    applied_fail_count: int = 0
    applied_fail_status: int = HTTPStatus.BAD_GATEWAY
    applied_drop_count: int = 0
    random: RandomFaults | None = None
    _draws: Random = field(default_factory=Random)
    counts: Counter[str] = field(default_factory=Counter)
    """Faults injected so far, by kind (``applied-then-failed`` counts the ones that did apply)."""

    def set_random(self, settings: RandomFaults | None) -> None:
        """Start drawing faults with these settings (from their seed), or stop (``None`` or a zero rate)."""
        self.random = settings if settings is not None and settings.rate > 0 else None
        if self.random is not None:
            self._draws = Random(self.random.seed)

    def take_plan(self, customer_id: str | None = None) -> FaultPlan:
        """Consume the fault for one API request (for ``customer_id``, when it names one) and count it.

        Counted faults come first (drop, timeout, fail, apply-then-fail, apply-then-drop, in that
        order), then the random rate.
        """
        plan = self._counted_plan(customer_id) or self._random_plan() or FaultPlan("none", self.latency_seconds)
        if plan.kind is not None:
            self.counts[plan.kind] += 1
        return plan

    def _counted_plan(self, customer_id: str | None) -> FaultPlan | None:
        latency = self.latency_seconds
        if self.drop_count:
            self.drop_count -= 1
            return FaultPlan("drop", latency, kind=FaultKind.DROP)
        if self.timeout_count:
            self.timeout_count -= 1
            return FaultPlan("timeout", latency, timeout_seconds=self.timeout_seconds, kind="held")
        if self.fail_count and self.fail_customer in (None, customer_id):
            self.fail_count -= 1
            return FaultPlan(
                "fail",
                latency,
                fail_status=self.fail_status,
                fail_retry_after=self.fail_retry_after,
                fail_body=self.fail_body,
                kind=str(self.fail_status),
            )
        if self.applied_fail_count:
            self.applied_fail_count -= 1
            status = self.applied_fail_status
            return FaultPlan("applied_fail", latency, fail_status=status, kind=f"applied-then-{status}")
        if self.applied_drop_count:
            self.applied_drop_count -= 1
            return FaultPlan("applied_drop", latency, kind=FaultKind.APPLIED_THEN_DROP)
        return None

    def _random_plan(self) -> FaultPlan | None:
        settings = self.random
        if settings is None or self._draws.random() >= settings.rate:
            return None
        kind = self._draws.choice(settings.kinds)
        latency = self.latency_seconds
        match kind:
            case FaultKind.TIMEOUT:
                return FaultPlan("hang", latency, timeout_seconds=settings.timeout_seconds, kind=kind)
            case FaultKind.DROP:
                return FaultPlan("drop", latency, kind=kind)
            case FaultKind.APPLIED_THEN_502:
                return FaultPlan("applied_fail", latency, fail_status=HTTPStatus.BAD_GATEWAY, kind=kind)
            case FaultKind.APPLIED_THEN_DROP:
                return FaultPlan("applied_drop", latency, kind=kind)
            case _:
                status = int(kind)
                retry_after = settings.retry_after if status == HTTPStatus.TOO_MANY_REQUESTS else None
                return FaultPlan("fail", latency, fail_status=status, fail_retry_after=retry_after, kind=kind)

    def to_json(self) -> dict[str, Any]:
        """The pending faults and the counts as a JSON-ready object."""
        return {
            "latency": self.latency_seconds,
            "fail": {
                "count": self.fail_count,
                "status": self.fail_status,
                "retryAfter": self.fail_retry_after,
                "customerId": self.fail_customer,
            },
            "drop": self.drop_count,
            "timeout": {"count": self.timeout_count, "seconds": self.timeout_seconds},
            "appliedThenFail": {"count": self.applied_fail_count, "status": self.applied_fail_status},
            "appliedThenDrop": self.applied_drop_count,
            "random": self.random.to_json() if self.random is not None else None,
            "counts": dict(self.counts),
        }
