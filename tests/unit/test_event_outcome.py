"""Each event's final outcome after a delivery, and the retry delay schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from webhook_adapter.deliver import MAX_VISIBILITY_SECONDS, backoff_seconds, decide, event_outcome, outcomes_of
from webhook_adapter.merge import ContactState, FieldState, digest, merge
from webhook_adapter.model import ContactField, FieldValue, SourceEvent, Status
from webhook_adapter.normalize import Group, Plan, Problem
from webhook_adapter.outcome import Outcome, SphereResult

T0 = 1_700_000_000_000
CUSTOMER_ID = "customer_abc123"
STATE_REQUIRED = frozenset({"USA", "CAN", "BRA", "AUS", "MEX"})
ACCEPTED = SphereResult(http_status=200, updated_at="2023-11-14T22:13:20.000Z", kyc_status="pending")
REFUSED = SphereResult(http_status=400, code="address/invalid", detail="Invalid request parameters")
FULL_ADDRESS: dict[ContactField, FieldValue] = {
    ContactField.LINE1: "1 Main St",
    ContactField.CITY: "Chicago",
    ContactField.STATE: "IL",
    ContactField.POSTAL_CODE: "60601",
    ContactField.COUNTRY: "USA",
}


def event(key: str, changes: dict[ContactField, FieldValue], *, occurred_at: int = T0) -> SourceEvent:
    return SourceEvent(
        key=key, event_id=key, contact_id="62515:51", occurred_at=occurred_at, kind="test", changes=changes
    )


def state(
    values: dict[ContactField, FieldValue] | None = None,
    *,
    applied: Mapping[str, Any] | None = None,
    at: int = T0 - 1000,
) -> ContactState:
    fields = {name: FieldState(value=value, occurred_at=at, event="stored") for name, value in (values or {}).items()}
    digests = {name: value if name == "customerId" else digest(value) for name, value in (applied or {}).items()}
    return ContactState(fields=fields, applied=digests)


def known_customer(**more: FieldValue) -> ContactState:
    return state({ContactField.CUSTOMER_ID: CUSTOMER_ID, **{ContactField(name): value for name, value in more.items()}})


def deliver(
    stored: ContactState,
    events: list[SourceEvent],
    *,
    refused: bool = False,
    result: SphereResult | None = ACCEPTED,
) -> dict[str, Outcome]:
    """What the deliver step decides, without the table or Sphere: merge, plan, body, then each outcome."""
    decision = decide(stored, events, default_region="US", countries_requiring_state=STATE_REQUIRED)
    answer = result if decision.body else None
    return {
        item.key: outcome
        for item, outcome in outcomes_of(events, decision, answer, refused=refused and bool(decision.body))
    }


# --- one status each ----------------------------------------------------------------------------


def test_change_older_than_the_stored_one_is_superseded() -> None:
    # Given a stored city newer than the incoming change
    stored = state({ContactField.CUSTOMER_ID: CUSTOMER_ID, ContactField.CITY: "Chicago"}, at=T0 + 1000)

    # When the older change is delivered
    outcome = deliver(stored, [event("late", {ContactField.CITY: "Springfield"})])["late"]

    # Then it is superseded
    assert outcome.status is Status.SUPERSEDED
    assert outcome.customer_id == CUSTOMER_ID


def test_invalid_value_is_rejected_with_the_reason() -> None:
    # Given a known customer, When an invalid email arrives
    outcome = deliver(known_customer(), [event("e", {ContactField.EMAIL: "jane@"})])["e"]

    # Then it is rejected, saying why without the value
    assert outcome.status is Status.REJECTED
    assert outcome.reason == "email is not a valid email address"
    assert outcome.request is None


def test_change_of_a_contact_without_customer_id_is_unmapped() -> None:
    # Given no Sphere customer id known for the contact
    outcome = deliver(state(), [event("e", {ContactField.EMAIL: "jane@example.com"})])["e"]

    # Then the event waits as unmapped
    assert outcome.status is Status.UNMAPPED
    assert outcome.customer_id is None


def test_incomplete_address_lists_what_is_missing() -> None:
    # Given a known customer, When only the street arrives
    outcome = deliver(known_customer(), [event("e", {ContactField.LINE1: "1 Main St"})])["e"]

    # Then it is incomplete and names the missing parts
    assert outcome.status is Status.INCOMPLETE
    assert outcome.missing == ["city", "postalCode", "country"]


def test_change_sent_to_sphere_is_delivered_with_a_masked_request() -> None:
    # Given a known customer, When a new email is sent and Sphere accepts it
    outcome = deliver(known_customer(), [event("e", {ContactField.EMAIL: "jane@example.com"})])["e"]

    # Then it is delivered, with Sphere's answer and the request recorded without the address itself
    assert outcome.status is Status.DELIVERED
    assert outcome.customer_id == CUSTOMER_ID
    assert outcome.sphere == ACCEPTED
    assert outcome.request is not None
    assert set(outcome.request) == {"email"}
    assert "jane@example.com" not in str(outcome.request)


def test_change_sphere_refused_is_rejected() -> None:
    # Given a complete address Sphere refuses
    outcome = deliver(known_customer(), [event("a", FULL_ADDRESS)], refused=True, result=REFUSED)["a"]

    # Then it is rejected with Sphere's code
    assert outcome.status is Status.REJECTED
    assert outcome.reason == "Sphere refused the update: address/invalid"
    assert outcome.sphere == REFUSED
    assert outcome.request is not None
    assert outcome.request["address"]["city"] == "Chicago"
    assert "1 Main St" not in str(outcome.request)


def test_refusal_without_a_code_names_the_http_status() -> None:
    result = SphereResult(http_status=422)
    outcome = deliver(known_customer(), [event("a", FULL_ADDRESS)], refused=True, result=result)["a"]
    assert outcome.status is Status.REJECTED
    assert outcome.reason == "Sphere refused the update: 422"


def test_change_sphere_already_has_is_unchanged() -> None:
    # Given Sphere last accepted this email for this customer
    stored = state(
        {ContactField.CUSTOMER_ID: CUSTOMER_ID},
        applied={"customerId": CUSTOMER_ID, "email": "jane@example.com"},
    )

    # When the same email arrives again (from a newer event)
    outcome = deliver(stored, [event("e", {ContactField.EMAIL: "jane@example.com"})])["e"]

    # Then nothing was sent and the event is unchanged
    assert outcome.status is Status.UNCHANGED
    assert outcome.request is None


def test_same_values_applied_to_another_customer_are_sent_again() -> None:
    stored = state(
        {ContactField.CUSTOMER_ID: CUSTOMER_ID},
        applied={"customerId": "customer_other1", "email": "jane@example.com"},
    )
    outcome = deliver(stored, [event("e", {ContactField.EMAIL: "jane@example.com"})])["e"]
    assert outcome.status is Status.DELIVERED


# --- the customer id -----------------------------------------------------------------------------


def test_customer_id_event_is_delivered_when_it_unlocks_a_request() -> None:
    # Given an email waiting for a customer id
    stored = state({ContactField.EMAIL: "jane@example.com"})

    # When the customer id arrives and the waiting email is sent
    outcomes = deliver(stored, [event("id", {ContactField.CUSTOMER_ID: CUSTOMER_ID})])

    # Then the id's event is delivered
    assert outcomes["id"].status is Status.DELIVERED
    assert outcomes["id"].customer_id == CUSTOMER_ID
    assert outcomes["id"].request is not None
    assert set(outcomes["id"].request) == {"email"}


def test_customer_id_event_is_unchanged_when_nothing_is_sent() -> None:
    # Given nothing known besides the contact
    # When only its customer id arrives
    outcome = deliver(state(), [event("id", {ContactField.CUSTOMER_ID: CUSTOMER_ID})])["id"]

    # Then there was nothing to send
    assert outcome.status is Status.UNCHANGED
    assert outcome.customer_id == CUSTOMER_ID


def test_customer_id_event_is_unchanged_when_sphere_already_has_everything() -> None:
    stored = state(
        {ContactField.EMAIL: "jane@example.com"},
        applied={"customerId": CUSTOMER_ID, "email": "jane@example.com"},
    )
    outcome = deliver(stored, [event("id", {ContactField.CUSTOMER_ID: CUSTOMER_ID})])["id"]
    assert outcome.status is Status.UNCHANGED


def test_invalid_customer_id_is_rejected() -> None:
    outcome = deliver(state(), [event("id", {ContactField.CUSTOMER_ID: "cus_123"})])["id"]
    assert outcome.status is Status.REJECTED
    assert outcome.reason is not None
    assert "customer_[a-z0-9]+" in outcome.reason


def test_other_events_of_a_contact_with_an_invalid_customer_id_are_unmapped() -> None:
    outcomes = deliver(
        state(), [event("id", {ContactField.CUSTOMER_ID: "cus_123"}), event("e", {ContactField.EMAIL: "a@b.co"})]
    )
    assert outcomes["e"].status is Status.UNMAPPED


# --- precedence: rejected > unmapped > incomplete > delivered > unchanged -------------------------


def test_rejected_beats_unmapped() -> None:
    # Given no customer id, When an event carries an invalid email
    outcome = deliver(state(), [event("e", {ContactField.EMAIL: "jane@", ContactField.CITY: "Chicago"})])["e"]

    # Then the invalid value is what the operator sees
    assert outcome.status is Status.REJECTED


def test_unmapped_beats_incomplete() -> None:
    outcome = deliver(state(), [event("e", {ContactField.LINE1: "1 Main St"})])["e"]
    assert outcome.status is Status.UNMAPPED


def test_incomplete_beats_delivered() -> None:
    # Given a known customer, When one event carries a valid email and half an address
    changes: dict[ContactField, FieldValue] = {ContactField.EMAIL: "jane@example.com", ContactField.CITY: "Chicago"}
    outcome = deliver(known_customer(), [event("e", changes)])["e"]

    # Then the email went out, but the event says the address is incomplete
    assert outcome.status is Status.INCOMPLETE
    assert outcome.missing == ["line1", "postalCode", "country"]


def test_delivered_beats_unchanged() -> None:
    # Given Sphere already has the email, When an event carries it and a new phone
    stored = state(
        {ContactField.CUSTOMER_ID: CUSTOMER_ID},
        applied={"customerId": CUSTOMER_ID, "email": "jane@example.com"},
    )
    changes: dict[ContactField, FieldValue] = {ContactField.EMAIL: "jane@example.com", ContactField.PHONE: "3125550123"}
    outcome = deliver(stored, [event("e", changes)])["e"]

    # Then the event is delivered (only the phone was sent)
    assert outcome.status is Status.DELIVERED
    assert outcome.request is not None
    assert set(outcome.request) == {"phone"}


def test_refusal_beats_incomplete() -> None:
    changes: dict[ContactField, FieldValue] = {ContactField.EMAIL: "jane@example.com", ContactField.CITY: "Chicago"}
    outcome = deliver(known_customer(), [event("e", changes)], refused=True, result=REFUSED)["e"]
    assert outcome.status is Status.REJECTED


def test_invalid_group_beats_delivered_for_an_event_that_did_not_carry_the_bad_value() -> None:
    # Given a stored country that is no country
    stored = known_customer(country="Narnia")

    # When an event brings a valid email and the rest of the address
    changes = {ContactField.EMAIL: "jane@example.com", **FULL_ADDRESS}
    del changes[ContactField.COUNTRY]
    outcome = deliver(stored, [event("e", changes)])["e"]

    # Then the address problem (rejected) wins over the delivered email
    assert outcome.status is Status.REJECTED
    assert outcome.reason == "country is not an ISO 3166 country name or code"


def test_precedence_holds_on_a_hand_built_plan() -> None:
    # Given one event that holds the email, the street and the phone
    item = event(
        "e",
        {ContactField.EMAIL: "jane@example.com", ContactField.LINE1: "1 Main St", ContactField.PHONE: "+13125550123"},
    )
    merged = merge(ContactState(), [item])
    clean = Plan(customer_id=CUSTOMER_ID)
    incomplete = Plan(
        customer_id=CUSTOMER_ID,
        problems={Group.ADDRESS: Problem(reason="address is incomplete: missing city", missing=("city",))},
    )
    sent = {"email": "jane@example.com"}

    # When its outcome is computed against each plan
    delivered = event_outcome(item, merged, clean, sent=sent, result=ACCEPTED, refused=False)
    worst = event_outcome(item, merged, incomplete, sent=sent, result=ACCEPTED, refused=False)
    nothing = event_outcome(item, merged, clean, sent={}, result=None, refused=False)

    # Then the status that most needs an operator wins: incomplete > delivered > unchanged
    assert delivered.status is Status.DELIVERED
    assert worst.status is Status.INCOMPLETE
    assert worst.missing == ["city"]
    assert nothing.status is Status.UNCHANGED


# --- backoff_seconds -------------------------------------------------------------------------------


def test_retry_after_is_honoured() -> None:
    assert backoff_seconds(3, base=10, cap=900, retry_after=42.7, rng=lambda: 1.0) == 42


def test_retry_after_is_capped() -> None:
    assert backoff_seconds(1, base=10, cap=900, retry_after=86_400) == 900


def test_retry_after_of_zero_waits_at_least_a_second() -> None:
    assert backoff_seconds(1, base=10, cap=900, retry_after=0.0) == 1


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 5, 10), (2, 10, 20), (3, 20, 40), (4, 40, 80), (7, 320, 640), (8, 450, 900), (30, 450, 900)],
)
def test_backoff_grows_exponentially_with_equal_jitter(attempt: int, low: int, high: int) -> None:
    # Given base 10 s and cap 900 s
    # When the random part is at its least and at its most
    least = backoff_seconds(attempt, base=10, cap=900, rng=lambda: 0.0)
    most = backoff_seconds(attempt, base=10, cap=900, rng=lambda: 1.0)

    # Then the delay is half the step, or the whole step, of base * 2 ** (attempt - 1) capped
    assert (least, most) == (low, high)


def test_first_attempt_counts_from_one() -> None:
    assert backoff_seconds(0, base=10, cap=900, rng=lambda: 1.0) == 10


@pytest.mark.parametrize("attempt", [1, 5, 10, 50, 1000])
@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999999, 1.0])
def test_backoff_never_exceeds_the_cap(attempt: int, jitter: float) -> None:
    assert backoff_seconds(attempt, base=10, cap=900, rng=lambda: jitter) <= 900


@pytest.mark.parametrize("retry_after", [None, 10**9])
def test_backoff_never_exceeds_the_sqs_visibility_limit(retry_after: int | None) -> None:
    # Given a cap above SQS's 12 hour limit
    delay = backoff_seconds(40, base=43_200, cap=10**9, retry_after=retry_after, rng=lambda: 1.0)

    # Then the delay is 12 hours at most
    assert delay == MAX_VISIBILITY_SECONDS == 43_200


def test_a_sources_note_on_a_delivered_event_reaches_its_outcome() -> None:
    # Given an event whose source noted how it read a field (Pipedrive: the address from its formatted text)
    noted = SourceEvent(
        key="e1",
        event_id="e1",
        contact_id="62515:51",
        occurred_at=T0,
        kind="test",
        changes=dict(FULL_ADDRESS),
        reason="address taken from the formatted address",
    )

    # When it is delivered, Then its outcome keeps the note
    outcome = deliver(known_customer(), [noted])["e1"]
    assert outcome.status is Status.DELIVERED
    assert outcome.reason == "address taken from the formatted address"
