"""End-to-end latency of a delivered event: from the CRM's change time to Sphere's ``updatedAt``."""

from __future__ import annotations

import pytest

from webhook_adapter.deliver import end_to_end_ms
from webhook_adapter.model import SourceEvent, Status
from webhook_adapter.outcome import Outcome, SphereResult

CHANGED_AT = 1_795_000_000_000
"""2026-11-18T11:06:40Z in epoch milliseconds."""


def delivered(updated_at: str | None) -> Outcome:
    return Outcome(status=Status.DELIVERED, sphere=SphereResult(http_status=200, updated_at=updated_at))


EVENT = SourceEvent(key="k", event_id="e", contact_id="c", occurred_at=CHANGED_AT, kind="contact.propertyChange")


@pytest.mark.parametrize(
    ("updated_at", "expected"),
    [
        ("2026-11-18T11:06:42.500Z", 2500.0),  # Sphere's ISO 8601 with a Z
        ("2026-11-18T12:06:42.500+01:00", 2500.0),  # another offset, the same moment
        ("2026-11-18T11:06:42.500", 2500.0),  # no offset: read as UTC
        ("2026-11-18T11:06:39Z", 0.0),  # Sphere's clock behind the CRM's: skew, not a negative latency
    ],
)
def test_latency_runs_from_the_crms_change_to_spheres_updated_at(updated_at: str, expected: float) -> None:
    # Given a delivered event and Sphere's updatedAt
    # When its latency is taken
    latency = end_to_end_ms(EVENT, delivered(updated_at))

    # Then it is the time between the two, never below zero
    assert latency == pytest.approx(expected)


@pytest.mark.parametrize("updated_at", [None, "", "yesterday"])
def test_without_a_readable_updated_at_there_is_no_latency(updated_at: str | None) -> None:
    # Given Sphere's answer without a time it can be read from
    # When the latency is taken
    # Then there is none (nothing is counted rather than a wrong value)
    assert end_to_end_ms(EVENT, delivered(updated_at)) is None
    assert end_to_end_ms(EVENT, Outcome(status=Status.DELIVERED)) is None
