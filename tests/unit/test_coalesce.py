"""Coalescing: consecutive changes of one contact become one change, and one call sends the newest values."""

from __future__ import annotations

import pytest

from webhook_adapter.deliver import coalesce, decide
from webhook_adapter.merge import ContactState, FieldState, digest
from webhook_adapter.model import ContactChange, ContactField, FieldValue, SourceEvent

T0 = 1_700_000_000_000
"""A change time, epoch milliseconds."""
CUSTOMER = "customer_abc123"


def event(key: str, occurred_at: int, **changes: FieldValue) -> SourceEvent:
    return SourceEvent(
        key=key,
        event_id=key,
        contact_id="62515:51",
        occurred_at=occurred_at,
        kind="test",
        changes={ContactField(name): value for name, value in changes.items()},
    )


def queued(*events: SourceEvent, received_at: int = T0, contact_id: str = "62515:51") -> ContactChange:
    return ContactChange(source="hubspot", contact_id=contact_id, received_at=received_at, events=events)


def mapped() -> ContactState:
    """A contact whose Sphere customer id is known."""
    return ContactState(
        fields={ContactField.CUSTOMER_ID: FieldState(value=CUSTOMER, occurred_at=T0 - 60_000, event=digest("m"))}
    )


def test_the_events_of_consecutive_changes_are_kept_in_order() -> None:
    # Given three changes of one contact, one event each
    changes = [queued(event("a", T0, email="a@example.com")), queued(event("b", T0 + 1, city="Chicago"))]
    changes.append(queued(event("c", T0 + 2, email="c@example.com"), received_at=T0 + 5))

    # When they are coalesced
    one = coalesce(changes)

    # Then one change holds their events in order, for the same contact, received when the first was
    assert [item.key for item in one.events] == ["a", "b", "c"]
    assert (one.source, one.contact_id, one.received_at) == ("hubspot", "62515:51", T0)


def test_an_event_queued_twice_is_kept_once() -> None:
    # Given a CRM retry queued again after SQS's deduplication window: the same event in two changes
    repeated = event("a", T0, email="a@example.com")

    # When they are coalesced
    one = coalesce([queued(repeated), queued(repeated, event("b", T0 + 1, city="Chicago"))])

    # Then the event is there once (one outcome item per event key)
    assert [item.key for item in one.events] == ["a", "b"]


def test_only_one_contacts_changes_are_coalesced() -> None:
    # Given changes of two contacts, and no change at all
    # Then neither can be coalesced
    with pytest.raises(ValueError, match="one contact"):
        coalesce([queued(event("a", T0, email="a@example.com")), queued(event("b", T0), contact_id="62515:52")])
    with pytest.raises(ValueError, match="nothing"):
        coalesce([])


def test_the_coalesced_request_carries_the_newest_value_of_each_field_by_change_time() -> None:
    # Given three queued changes: an email, a city, then an email that happened earlier in the CRM (queued late)
    changes = [
        queued(event("a", T0 + 10, email="newest@example.com")),
        queued(event("b", T0 + 20, city="Chicago")),
        queued(event("c", T0, email="older@example.com")),
    ]

    # When they are coalesced and the request is decided
    decision = decide(
        mapped(), coalesce(changes).events, default_region="US", countries_requiring_state=frozenset({"USA"})
    )

    # Then one request sends the newest email (by the CRM's time, not queue position); the late older one lost
    assert decision.body == {"email": "newest@example.com"}
    assert decision.merged.won["c"] == frozenset()
    assert decision.merged.won["a"] == frozenset({ContactField.EMAIL})
