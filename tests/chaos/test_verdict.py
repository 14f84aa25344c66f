"""The chaos verdict finds each kind of violation it defines, and only those: its checks are not vacuous."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from chaos.traffic import Change, Traffic
from chaos.verdict import applied_values, judge
from devstack.sphere_standin import RecordedRequest

CUSTOMER = "customer_chaos000001"


def patch(body: dict[str, Any], status: int | None = 200, *, applied: bool = True) -> RecordedRequest:
    """A PATCH as the stand-in records it."""
    return RecordedRequest(
        method="PATCH",
        path=f"/v2/customer/{CUSTOMER}",
        headers=MappingProxyType({}),
        body=body,
        status=status,
        received_at=datetime.now(UTC),
        correlation_id=None,
        connection_id=1,
        applied=applied,
    )


def traffic_of(*changes: tuple[str, str, int], accepted: set[tuple[str, str]] | None = None) -> Traffic:
    """Emails sent: ``(event id, value, CRM time)``."""
    traffic = Traffic(changes=[Change(CUSTOMER, "email", value, at, event_id) for event_id, value, at in changes])
    traffic.accepted = accepted if accepted is not None else {("generic", event_id) for event_id, _, _ in changes}
    return traffic


def outcome(status: str, *history: str) -> dict[str, Any]:
    return {"status": status, "history": [{"status": entry} for entry in (history or (status,))]}


def test_a_clean_run_has_no_violation_and_a_retry_after_a_lost_answer_is_excused() -> None:
    # Given two emails sent, the first applied with its answer lost (502), then again, then the second
    traffic = traffic_of(("e1", "a@example.com", 1), ("e2", "b@example.com", 2))
    requests = [
        patch({"email": "a@example.com"}, 502),
        patch({"email": "a@example.com"}),
        patch({"email": "b@example.com"}),
    ]
    outcomes = {
        ("generic", "e1"): outcome("delivered", "queued", "retrying", "delivered"),
        ("generic", "e2"): outcome("delivered", "queued", "delivered"),
    }

    # When it is judged
    verdict = judge(traffic, outcomes, applied_values(requests, {CUSTOMER}), {CUSTOMER: {"email": "b@example.com"}})

    # Then nothing is wrong, and the re-application is counted apart
    assert verdict.violations == {}
    assert verdict.reapplied_after_lost_answer == 1
    assert (verdict.events_retried, verdict.retry_entries) == (1, 1)


def test_each_kind_of_violation_is_found() -> None:
    # Given: e1 never recorded, e2 still retrying, e3 settled twice, e5 unmapped; Sphere got the newest email,
    # then the older one back, then the newest again (answered), then a value nobody sent; the end is not newest
    traffic = traffic_of(
        ("e1", "a@example.com", 1),
        ("e2", "b@example.com", 2),
        ("e3", "c@example.com", 3),
        ("e5", "d@example.com", 4),
    )
    requests = [
        patch({"email": "d@example.com"}),
        patch({"email": "c@example.com"}),
        patch({"email": "d@example.com"}),
        patch({"email": "x@example.com"}),
        patch({"email": "ignored@example.com"}, 503, applied=False),
    ]
    outcomes = {
        ("generic", "e2"): outcome("retrying", "queued", "retrying"),
        ("generic", "e3"): outcome("unchanged", "queued", "delivered", "unchanged"),
        ("generic", "e5"): outcome("unmapped"),
    }

    # When it is judged
    verdict = judge(traffic, outcomes, applied_values(requests, {CUSTOMER}), {CUSTOMER: {"email": "c@example.com"}})

    # Then each is named
    violations = verdict.violations
    assert violations["lost"] == ["generic e1: accepted, never recorded", "generic e2: retrying (queued > retrying)"]
    assert violations["settled twice"] == ["generic e3: queued > delivered > unchanged"]
    assert violations["older after newer"] == [
        f"{CUSTOMER} email = 'c@example.com' (request 1): changed at 3, after a change of 4"
    ]
    assert violations["applied twice"] == [f"{CUSTOMER} email = 'd@example.com' (request 2)"]
    assert violations["unknown value applied"] == [f"{CUSTOMER} email = 'x@example.com' (request 3)"]
    assert violations["not newest at the end"] == [
        f"{CUSTOMER} email: 'c@example.com' at the end, newest sent 'd@example.com'"
    ]
    assert violations["delivered out of order"] == ["generic e5: unmapped, before its contact's first change"]
