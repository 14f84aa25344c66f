"""The pace toward Sphere: a shared token bucket that slows down on 429s, on a simulated clock (no real waits).

Every figure here is a count against the simulated clock, never a measured time.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest

from webhook_adapter.errors import SphereCallsHeld
from webhook_adapter.pace import RATE_FLOOR_SHARE, CallPace


@dataclass
class SimulatedClock:
    """Seconds that move only when someone sleeps."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class RateLimitedSphere:
    """Answers 429 (``Retry-After: 1``) to every call beyond ``allowed`` in the same simulated second."""

    allowed: int
    calls: Counter[int] = field(default_factory=Counter)
    """Calls per simulated second (answered or not)."""
    throttled: int = 0

    def call(self, now: float) -> int:
        second = int(now)
        self.calls[second] += 1
        if self.calls[second] > self.allowed:
            self.throttled += 1
            return 429
        return 200


def pace(ceiling: float, *, burst: int = 1) -> tuple[CallPace, SimulatedClock]:
    clock = SimulatedClock()
    return CallPace(ceiling, burst=burst, clock=clock, sleep=clock.sleep), clock


def test_calls_beyond_the_burst_wait_their_turn_at_the_ceiling() -> None:
    # Given a pace of 10 calls per second that lets 3 go at once
    limiter, clock = pace(10, burst=3)

    # When 6 calls are made back to back
    for _ in range(6):
        limiter.acquire()

    # Then 3 went at once and the next ones a tenth of a second apart
    assert clock.slept == pytest.approx([0.1, 0.1, 0.1])


def test_a_429_halves_the_rate_once_for_the_calls_that_went_out_together() -> None:
    # Given a pace of 100 calls per second and ten calls in flight together
    limiter, _ = pace(100, burst=10)
    tickets = [limiter.acquire() for _ in range(10)]

    # When Sphere answers all of them 429
    for ticket in tickets:
        limiter.throttled(ticket)

    # Then the rate is halved once, not ten times
    assert limiter.rate == 50
    # And a call that went out after the slow-down halves it again when it meets a 429
    limiter.throttled(limiter.acquire())
    assert limiter.rate == 25


def test_a_429_with_retry_after_holds_every_call_until_it_has_passed() -> None:
    # Given a pace with calls to spare, and a 429 saying Retry-After: 7
    limiter, clock = pace(100, burst=10)
    limiter.throttled(limiter.acquire(), retry_after=7)

    # When the next call is made
    limiter.acquire()

    # Then it went out only once the 7 seconds had passed
    assert clock.now >= 7


def test_a_pause_lasts_at_most_max_pause() -> None:
    # Given a pace whose pauses last 60 s at most, and a 429 asking for an hour (a date far ahead)
    clock = SimulatedClock()
    limiter = CallPace(100, burst=10, max_pause=60, clock=clock, sleep=clock.sleep)
    limiter.throttled(limiter.acquire(), retry_after=3600)

    # When the next call is made
    limiter.acquire()

    # Then it went after the minute, not the hour
    assert 60 <= clock.now < 61


def test_a_call_that_cannot_go_within_its_wait_is_held_and_told_when_it_could() -> None:
    # Given a pace held for 7 seconds by a 429
    limiter, clock = pace(100, burst=10)
    limiter.throttled(limiter.acquire(), retry_after=7)

    # When a call may wait 2 seconds at most
    with pytest.raises(SphereCallsHeld) as held:
        limiter.acquire(max_wait=2)

    # Then it is held without waiting, told to come back after the pause, and takes nothing from the bucket
    assert clock.slept == []
    assert held.value.retry_after == 8  # 7 s and the first slot at the halved rate, rounded up
    limiter.acquire(max_wait=10)
    assert clock.now == pytest.approx(7 + 1 / 50)


def test_answers_recover_the_rate_additively_up_to_the_ceiling_and_429s_never_take_it_below_the_floor() -> None:
    # Given a pace slowed down by ten 429s in a row
    limiter, _ = pace(100)
    for _ in range(10):
        limiter.throttled(limiter.acquire())

    # Then it stopped at its floor
    assert limiter.rate == 100 * RATE_FLOOR_SHARE

    # When Sphere answers calls again, the rate climbs by a little each time, and never past the ceiling
    rates = []
    for _ in range(1_200):
        limiter.acquire()
        limiter.answered()
        rates.append(limiter.rate)
    assert rates == sorted(rates)
    assert rates[0] < 10
    assert rates[-1] == 100


def test_threads_sharing_the_pace_each_get_their_own_slot() -> None:
    # Given a pace of 10 calls per second, one at a time, and a clock that does not move while threads wait
    clock = SimulatedClock()
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    limiter = CallPace(10, burst=1, clock=clock, sleep=record)
    start = threading.Barrier(10)

    def call() -> None:
        start.wait()
        limiter.acquire()

    # When ten threads ask for a call at the same moment
    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then one went at once and the nine others were given the next nine slots, a tenth of a second apart
    assert sorted(waits) == pytest.approx([0.1 * slot for slot in range(1, 10)])


def run_against(sphere: RateLimitedSphere, *, ceiling: float, seconds: int, slow_down: bool) -> None:
    """One caller calling Sphere as fast as the pace lets it, for ``seconds`` of simulated time."""
    limiter, clock = pace(ceiling, burst=10)
    while clock.now < seconds:
        ticket = limiter.acquire()
        if sphere.call(clock.now) == 429 and slow_down:
            limiter.throttled(ticket, retry_after=1)
        else:
            limiter.answered()


def test_against_a_sphere_that_allows_fewer_calls_the_slow_down_lowers_the_call_rate() -> None:
    # Given a Sphere that answers 429 beyond 10 calls per second, and a container allowed 50
    # When a minute of calls is made with and without the slow-down
    paced, unpaced = RateLimitedSphere(allowed=10), RateLimitedSphere(allowed=10)
    run_against(paced, ceiling=50, seconds=60, slow_down=True)
    run_against(unpaced, ceiling=50, seconds=60, slow_down=False)

    # Then without it every second brings 40 calls Sphere refuses
    assert unpaced.throttled >= 40 * 59
    # And with it the container settles near what Sphere takes: far fewer 429s, fewer calls per second
    assert paced.throttled * 10 < unpaced.throttled
    late = [paced.calls[second] for second in range(30, 60)]
    assert max(late) < max(unpaced.calls[second] for second in range(30, 60))
    assert sum(late) / len(late) <= 2 * paced.allowed
    # And it does not give up much of what Sphere would take
    accepted = sum(min(count, paced.allowed) for count in paced.calls.values())
    assert accepted >= 0.6 * paced.allowed * 60
