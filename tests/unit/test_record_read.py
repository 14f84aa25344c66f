"""Reading the CRM's record: when deliver reads it, and how a read is merged with the events (pure, no I/O)."""

from __future__ import annotations

import pytest

from webhook_adapter.deliver import decide, outcomes_of
from webhook_adapter.merge import ContactState, FieldState
from webhook_adapter.model import ContactField, FieldValue, ReadCause, SourceEvent, Status
from webhook_adapter.normalize import Plan, plan_request
from webhook_adapter.outcome import SphereResult
from webhook_adapter.records import CrmRecord, ReadMode, needs_read

T0 = 1_700_000_000_000
CUSTOMER_ID = "customer_abc123"
STATE_REQUIRED = frozenset({"USA", "CAN", "BRA", "AUS", "MEX"})
ACCEPTED = SphereResult(http_status=200, updated_at="2023-11-14T22:13:20.000Z")
CONTACT = "62515:51"
FULL: dict[ContactField, FieldValue] = {
    ContactField.CUSTOMER_ID: CUSTOMER_ID,
    ContactField.EMAIL: "ada@example.com",
    ContactField.LINE1: "1 Main St",
    ContactField.CITY: "Chicago",
    ContactField.STATE: "IL",
    ContactField.POSTAL_CODE: "60601",
    ContactField.COUNTRY: "USA",
}


def event(
    key: str, changes: dict[ContactField, FieldValue], *, at: int = T0, read: ReadCause | None = None
) -> SourceEvent:
    return SourceEvent(
        key=key, event_id=key, contact_id=CONTACT, occurred_at=at, kind="test", changes=changes, read=read
    )


def record(values: dict[ContactField, FieldValue], *, at: int) -> CrmRecord:
    return CrmRecord(contact_id=CONTACT, values=values, modified_at=at)


def stored(values: dict[ContactField, FieldValue], *, at: int, by: str = "stored") -> ContactState:
    return ContactState(fields={name: FieldState(value, at, by) for name, value in values.items()})


def plan_of(values: dict[ContactField, FieldValue]) -> Plan:
    fields = {name: FieldState(value, T0, "x") for name, value in values.items()}
    return plan_request(fields, default_region="US", countries_requiring_state=STATE_REQUIRED)


def deliver(
    state: ContactState,
    pending: list[SourceEvent],
    *,
    read: CrmRecord | None = None,
    unread: str | None = None,
) -> tuple[dict[str, object], dict[str, tuple[Status, str | None]]]:
    decision = decide(
        state, pending, default_region="US", countries_requiring_state=STATE_REQUIRED, record=read, unread=unread
    )
    outcomes = outcomes_of(pending, decision, ACCEPTED if decision.body else None, refused=False)
    return decision.body, {item.key: (outcome.status, outcome.reason) for item, outcome in outcomes}


# --- when deliver reads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "pending", "values", "expected"),
    [
        (ReadMode.PAYLOAD, [event("e", {}, read=ReadCause.THIN)], {}, False),
        (ReadMode.ALWAYS, [event("e", {ContactField.EMAIL: "a@example.com"})], FULL, True),
        (ReadMode.WHEN_INCOMPLETE, [event("e", {}, read=ReadCause.REDACTED)], FULL, True),
        (ReadMode.WHEN_INCOMPLETE, [event("e", {ContactField.EMAIL: "a@example.com"})], FULL, False),
        (
            ReadMode.WHEN_INCOMPLETE,
            [event("e", {ContactField.EMAIL: "a@example.com"})],
            {ContactField.EMAIL: "a"},
            True,
        ),
        (
            ReadMode.WHEN_INCOMPLETE,
            [event("e", {ContactField.CITY: "Chicago"})],
            {ContactField.CUSTOMER_ID: CUSTOMER_ID, ContactField.CITY: "Chicago"},
            True,
        ),
    ],
    ids=[
        "payload never reads",
        "always reads",
        "an event asks for it",
        "a complete request needs no read",
        "no customer id known yet",
        "an address with parts never received",
    ],
)
def test_the_read_mode_decides_when_the_record_is_read(
    mode: ReadMode, pending: list[SourceEvent], values: dict[ContactField, FieldValue], expected: bool
) -> None:
    # Given a source's read mode, the pending events and the plan their merge makes
    # When deliver asks whether to read, Then it reads exactly when the mode and the plan say so
    assert needs_read(mode, pending, plan_of(values)) is expected


# --- how a read is merged ---------------------------------------------------------------------------------


def test_a_thin_event_becomes_a_complete_request_after_one_read() -> None:
    # Given an event that names the record only, and the record as the CRM's API gives it
    thin = event("thin-1", {}, read=ReadCause.THIN)

    # When deliver decides with the read
    body, outcomes = deliver(ContactState(), [thin], read=record(FULL, at=T0 + 5))

    # Then the request holds the record's values, and the event is delivered, saying the record was read
    assert body == {
        "email": "ada@example.com",
        "address": {"line1": "1 Main St", "city": "Chicago", "state": "IL", "postalCode": "60601", "country": "USA"},
    }
    status, reason = outcomes["thin-1"]
    assert status is Status.DELIVERED
    assert reason == "completed by reading the CRM's record (thin)"


def test_a_redacted_value_is_replaced_by_the_value_read() -> None:
    # Given a known contact, and HubSpot's event for a sensitive property it redacted
    known = stored({ContactField.CUSTOMER_ID: CUSTOMER_ID}, at=T0 - 10)
    redacted = event("redacted-1", {}, at=T0, read=ReadCause.REDACTED)

    # When the record read holds the value
    body, outcomes = deliver(known, [redacted], read=record({ContactField.EMAIL: "grace@example.com"}, at=T0 + 1))

    # Then the read value is sent and the event delivered
    assert body == {"email": "grace@example.com"}
    assert outcomes["redacted-1"][0] is Status.DELIVERED


def test_a_read_older_than_a_queued_change_loses_that_field_to_it() -> None:
    # Given a known contact whose email changed at T0 + 10 (on the queue), and a read made of the record as of T0
    known = stored({ContactField.CUSTOMER_ID: CUSTOMER_ID}, at=T0 - 10)
    newer = event("email-1", {ContactField.EMAIL: "new@example.com"}, at=T0 + 10)
    read = record({ContactField.EMAIL: "old@example.com", ContactField.CITY: "Chicago"}, at=T0)

    # When both are merged
    body, outcomes = deliver(known, [newer], read=read)

    # Then the queued change wins the email; the read still gives what nothing newer holds
    assert body["email"] == "new@example.com"
    assert outcomes["email-1"][0] is Status.DELIVERED


def test_a_late_event_older_than_a_read_does_not_overwrite_it() -> None:
    # Given a contact whose email came from a read as of T0 + 10
    known = stored({ContactField.CUSTOMER_ID: CUSTOMER_ID, ContactField.EMAIL: "read@example.com"}, at=T0 + 10)

    # When an older change of the email arrives late
    body, outcomes = deliver(known, [event("late-1", {ContactField.EMAIL: "older@example.com"}, at=T0)])

    # Then it is superseded and nothing is sent
    assert body == {}
    assert outcomes["late-1"][0] is Status.SUPERSEDED


def test_an_event_that_needs_a_read_which_was_not_made_ends_incomplete_saying_why() -> None:
    # Given a thin event, and a CRM that no longer has the record
    thin = event("thin-2", {}, read=ReadCause.THIN)

    # When deliver decides without a read
    body, outcomes = deliver(ContactState(), [thin], unread="the CRM no longer has this record")

    # Then nothing is sent and the event is incomplete, naming the cause and why there was no read
    assert body == {}
    status, reason = outcomes["thin-2"]
    assert status is Status.INCOMPLETE
    assert reason == "the CRM's record must be read (thin) and was not: the CRM no longer has this record"
