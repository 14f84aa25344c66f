"""Replays, decided without I/O: what a replayed event sends, what it records, and which statuses run again."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from webhook_adapter.deliver import after_call, decide, outcomes_of
from webhook_adapter.enqueue import deduplication_id
from webhook_adapter.merge import ContactState, FieldState, digest
from webhook_adapter.model import ContactChange, ContactField, SourceEvent, Status
from webhook_adapter.outcome import SphereResult
from webhook_adapter.replay import FORCED_STATUSES, REPLAYABLE_STATUSES, ReplayRequest, why_not_replayed

T0 = 1_700_000_000_000
CUSTOMER = "customer_abc123"
USA = frozenset({"USA"})


def delivered_state() -> ContactState:
    """A contact whose email Sphere accepted."""
    fields = {
        ContactField.CUSTOMER_ID: FieldState(value=CUSTOMER, occurred_at=T0, event=digest("a")),
        ContactField.EMAIL: FieldState(value="ada@example.com", occurred_at=T0, event=digest("a")),
    }
    applied = {"customerId": CUSTOMER, "email": digest("ada@example.com")}
    return ContactState(fields=fields, applied=applied, version=3)


def replayed(key: str = "a", replay: str | None = "r1") -> SourceEvent:
    return SourceEvent(key=key, event_id=key, contact_id="c1", occurred_at=T0, kind="contact", replay=replay)


def test_a_replayed_event_sends_the_contacts_whole_request_even_what_sphere_has() -> None:
    # Given a contact whose values Sphere already accepted, and its event replayed (no values of its own)
    state = delivered_state()

    # When deliver decides
    decision = decide(state, [replayed()], default_region="US", countries_requiring_state=USA)

    # Then the whole current request is sent, not "unchanged"
    assert decision.body == {"email": "ada@example.com"}

    # And the same event without the replay is a redelivery that sends nothing
    assert decide(state, [replayed(replay=None)], default_region="US", countries_requiring_state=USA).body == {}


def test_a_replays_call_is_made_once_per_replay_and_recorded_on_the_event() -> None:
    # Given a replay whose call Sphere answered, the state saved, the outcomes not yet written
    state = delivered_state()
    first = decide(state, [replayed()], default_region="US", countries_requiring_state=USA)
    result = SphereResult(http_status=200)
    saved = after_call(state, first, result, refused=False)

    # When the same replay's message is delivered again, and later another replay of the same event
    again = decide(saved, [replayed()], default_region="US", countries_requiring_state=USA)
    another = decide(saved, [replayed(replay="r2")], default_region="US", countries_requiring_state=USA)

    # Then the retry makes no second call (it reports the first), and the new replay calls again
    assert again.replayed is not None
    assert another.replayed is None
    assert another.body == {"email": "ada@example.com"}
    # And the event's outcome is the call's, saying it was replayed
    [(_, outcome)] = outcomes_of([replayed()], first, result, refused=False)
    assert outcome.status is Status.DELIVERED
    assert outcome.reason is not None
    assert outcome.reason.startswith("replayed by the operator (r1)")


def test_a_replay_of_a_contact_without_a_customer_id_ends_unmapped() -> None:
    # Given a contact known by its email only
    state = ContactState(fields={ContactField.EMAIL: FieldState(value="x@example.com", occurred_at=T0, event="e")})

    # When replayed
    decision = decide(state, [replayed()], default_region="US", countries_requiring_state=USA)
    [(_, outcome)] = outcomes_of([replayed()], decision, None, refused=False)

    # Then nothing is sent and the event says why
    assert decision.body == {}
    assert outcome.status is Status.UNMAPPED


def test_a_replay_is_never_dropped_as_a_duplicate_of_the_first_delivery() -> None:
    # Given the message of an event, and the message of its replay
    first = ContactChange(source="generic", contact_id="c1", received_at=T0, events=(replayed(replay=None),))
    replay = first.model_copy(update={"events": (replayed(),)})

    # Then their deduplication ids differ (SQS would drop the replay within 5 minutes otherwise); a replay's twin not
    assert deduplication_id(first) != deduplication_id(replay)
    assert deduplication_id(replay) == deduplication_id(replay.model_copy())


@pytest.mark.parametrize("status", list(Status))
def test_which_statuses_run_again(status: Status) -> None:
    # Then rejected, incomplete and unmapped run again; delivered ones only when forced; the rest never, saying why
    why, forced = why_not_replayed(status, force=False), why_not_replayed(status, force=True)
    assert (why is None) == (status in REPLAYABLE_STATUSES)
    assert (forced is None) == (status in REPLAYABLE_STATUSES | FORCED_STATUSES)
    if status in FORCED_STATUSES:
        assert why is not None
        assert "set force" in why


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"events": [], "dryRun": True}, "exactly one"),
        ({"contact": {"source": "a", "contactId": "b"}, "deadLetters": True}, "exactly one"),
        ({"status": "incomplete", "since": "2026-11-26T00:00:00"}, "timezone"),
        ({"status": "incomplete", "since": "2026-11-26T01:00:00Z", "until": "2026-11-26T00:00:00Z"}, "until"),
        ({"status": "ignored", "since": "2026-11-26T00:00:00Z"}, "indexes"),
        ({"deadLetters": True, "replayId": "a b"}, "replayId"),
        ({"deadLetters": True, "unknown": 1}, "unknown"),
    ],
)
def test_a_replay_request_names_one_form_well(event: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ReplayRequest.model_validate(event)
