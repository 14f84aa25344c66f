"""The CLI's time windows: durations ago and ISO times, as operators type them."""

from __future__ import annotations

import pytest

from webhook_adapter.cli.window import parse_time, stored_time, window

NOW = 1_795_000_000_000  # 2026-11-18T11:06:40Z


@pytest.mark.parametrize(
    ("text", "ago_ms"),
    [("45s", 45_000), ("30m", 1_800_000), ("24h", 86_400_000), ("7d", 604_800_000)],
)
def test_a_duration_counts_back_from_now(text: str, ago_ms: int) -> None:
    # Given a duration
    # When it is read
    # Then it is that long before now
    assert parse_time(text, now_ms=NOW) == NOW - ago_ms


def test_an_iso_time_without_a_zone_is_utc_and_one_with_a_zone_keeps_it() -> None:
    # Given the same moment written in UTC without a zone and at +02:00
    # When both are read
    # Then they are the same epoch time
    assert parse_time("2026-11-18T11:06:40", now_ms=0) == NOW
    assert parse_time("2026-11-18T13:06:40+02:00", now_ms=0) == NOW


def test_a_window_ends_now_unless_told_and_is_written_as_the_table_writes_times() -> None:
    # Given a window of the last hour
    span = window("1h", None, now_ms=NOW)

    # Then it ends now, and its bounds compare with the table's updated_at text
    assert (span.start_ms, span.end_ms) == (NOW - 3_600_000, NOW)
    assert stored_time(span.end_ms) == "2026-11-18T11:06:40.000Z"


@pytest.mark.parametrize(("since", "until"), [("yesterday", None), ("1w", None), ("1h", "2h")])
def test_an_unreadable_time_or_a_window_ending_before_it_starts_is_refused(since: str, until: str | None) -> None:
    # Given a time that is neither a duration nor ISO, or an end before the start
    # When the window is made
    # Then it is refused
    with pytest.raises(ValueError, match=r"duration|ends before"):
        window(since, until, now_ms=NOW)
