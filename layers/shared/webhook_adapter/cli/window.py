"""Time windows as operators type them: ``90m``, ``24h``, ``7d`` ago, or an ISO 8601 time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Window", "parse_time", "stored_time", "window"]

_DURATION = re.compile(r"(?P<amount>\d+)(?P<unit>[smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end] in epoch milliseconds."""

    start_ms: int
    end_ms: int

    def describe(self) -> str:
        """The window as ISO times (UTC), for headings."""
        return f"{_iso(self.start_ms)} → {_iso(self.end_ms)}"


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def stored_time(epoch_ms: int) -> str:
    """An epoch time as the table writes ``updated_at`` (ISO, milliseconds, ``Z``): comparable as text."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str, *, now_ms: int) -> int:
    """``text`` as epoch milliseconds: a duration before ``now_ms`` (``30m``, ``24h``, ``7d``) or an ISO 8601 time.

    A time without a zone is UTC.

    Raises:
        ValueError: neither a duration nor an ISO time (the message says what is accepted).
    """
    text = text.strip()
    if match := _DURATION.fullmatch(text):
        ago = timedelta(**{_UNITS[match["unit"]]: int(match["amount"])})
        return now_ms - int(ago.total_seconds() * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 24h, 7d) nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def window(since: str, until: str | None, *, now_ms: int) -> Window:
    """The window from ``since`` to ``until`` (now when ``None``).

    Raises:
        ValueError: a time cannot be read, or the window ends before it starts.
    """
    start = parse_time(since, now_ms=now_ms)
    end = parse_time(until, now_ms=now_ms) if until is not None else now_ms
    if end < start:
        raise ValueError("the window ends before it starts (--until is earlier than --since)")
    return Window(start, end)
