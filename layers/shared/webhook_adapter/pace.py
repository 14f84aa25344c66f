"""The pace of a container's calls to Sphere: a ceiling its threads share, and a slow-down when Sphere answers 429.

A token bucket refilled at ``rate`` calls per second, holding at most ``burst`` tokens (and never
more than one second's worth): each call takes a token, and waits for one when the bucket is
empty. ``rate`` starts at the container's share of the adapter's ceiling and moves the way TCP's
congestion window does (AIMD: additive increase, multiplicative decrease):

- a 429 multiplies it by ``DECREASE`` (not below ``RATE_FLOOR_SHARE`` of the ceiling), empties the
  bucket and, when Sphere said ``Retry-After``, holds every call of the container until then. The
  429s of calls that went out before the last slow-down do not slow it down again: ten threads
  meeting a 429 each halve the rate once, not ten times;
- every other answer from Sphere adds ``RECOVERY_SHARE`` of the ceiling ÷ ``rate``: at full pace,
  ``RECOVERY_SHARE`` of the ceiling per second, back up to the ceiling.

Thread-safe; the clock and the sleep are injected, so tests run it on a simulated clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from webhook_adapter.errors import SphereCallsHeld

__all__ = ["DECREASE", "RATE_FLOOR_SHARE", "RECOVERY_SHARE", "CallPace", "SphereCallsHeld", "Ticket"]

DECREASE = 0.5
"""What a 429 multiplies the container's rate by."""
RATE_FLOOR_SHARE = 1 / 32
"""The lowest rate 429s bring a container to, as a share of its ceiling (five halvings)."""
RECOVERY_SHARE = 0.05
"""Calls per second won back per second of answered calls, as a share of the ceiling (half to full in 10 s)."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """A call's permission to go, and the slow-down it went out under (its 429 slows the pace only once)."""

    epoch: int


class CallPace:
    """A thread-safe token bucket whose rate backs off on 429s and recovers on other answers.

    Args:
        ceiling: the most calls per second this container makes (its share of the adapter's ceiling).
        burst: the most calls that go at once after a quiet spell (the container's threads).
        max_pause: the longest a ``Retry-After`` holds the calls (seconds; a date far ahead, a skewed clock).
        clock: seconds, monotonic.
        sleep: waits that many seconds.

    Raises:
        ValueError: a ceiling not above 0, or a burst below 1.
    """

    def __init__(
        self,
        ceiling: float,
        *,
        burst: int = 1,
        max_pause: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not ceiling > 0 or burst < 1:
            raise ValueError("the ceiling must be above 0 calls per second and the burst at least 1")
        self.ceiling = ceiling
        self.floor = ceiling * RATE_FLOOR_SHARE
        self._burst = burst
        self._max_pause = max_pause
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate = ceiling
        self._tokens = self._capacity()
        self._updated = clock()
        self._paused_until = -math.inf
        self._epoch = 0

    @property
    def rate(self) -> float:
        """The calls per second the container allows itself now."""
        with self._lock:
            return self._rate

    def acquire(self, max_wait: float | None = None) -> Ticket:
        """Wait until a call may go; the ticket to report its answer with.

        ``max_wait`` (seconds) is the longest the caller can wait; ``None`` waits as long as it takes.

        Raises:
            SphereCallsHeld: the call could not go within ``max_wait``; nothing was taken from the bucket.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._refill(now)
                wait = max(now, self._paused_until) - now + max(0.0, 1.0 - self._tokens) / self._rate
                if max_wait is not None and waited + wait > max_wait:
                    raise SphereCallsHeld(retry_after=math.ceil(wait))
                self._tokens -= 1.0  # below zero: a later slot, reserved; the next callers queue behind it
                epoch = self._epoch
            if wait <= 0:
                return Ticket(epoch)
            self._sleep(wait)
            waited += wait
            with self._lock:
                if self._epoch == epoch and self._clock() >= self._paused_until:
                    return Ticket(epoch)
                if self._epoch == epoch:
                    self._tokens += 1.0  # a longer pause came meanwhile: give the slot back and queue again
            # A 429 came while this call waited: its slot went with the old rate; queue again at the new one.

    def answered(self) -> None:
        """Sphere answered a call with anything but a 429: recover towards the ceiling."""
        with self._lock:
            self._refill(self._clock())
            self._rate = min(self.ceiling, self._rate + self.ceiling * RECOVERY_SHARE / self._rate)

    def throttled(self, ticket: Ticket, retry_after: float | None = None) -> None:
        """Sphere answered a call 429: slow down (once per slow-down), and hold every call until ``retry_after``."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if retry_after is not None and retry_after > 0:
                self._paused_until = max(self._paused_until, now + min(retry_after, self._max_pause))
            if ticket.epoch != self._epoch:
                return  # it went out before the last slow-down, which already answered for it
            self._rate = max(self.floor, self._rate * DECREASE)
            self._tokens = 0.0  # reservations made at the old rate are void: their callers queue again
            self._epoch += 1

    def _capacity(self) -> float:
        return max(1.0, min(float(self._burst), self._rate))

    def _refill(self, now: float) -> None:
        """Add the tokens earned since the last look, counting no time spent paused."""
        earned = now - max(self._updated, self._paused_until)
        if earned > 0:
            self._tokens = min(self._capacity(), self._tokens + earned * self._rate)
        self._updated = max(self._updated, now)
