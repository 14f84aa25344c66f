"""Coalescing through the deliver handler: a contact's consecutive messages in a batch make one Sphere call.

- three changes of one contact yield one PATCH with the newest values, and an outcome record per event,
  each with its own message's receive count;
- when that call fails, each message is recorded as its own failure (its own receive count decides
  ``retrying`` or ``dead_lettered``) and all wait the same backoff;
- a message that is not a contact change ends a run, and the contact's later messages wait behind it;
- a run holds at most ``MAX_EVENTS_PER_CALL`` events.
"""

from __future__ import annotations

from typing import Any

import pytest

from devstack.kit import (
    HubSpotEvent,
    assert_patch,
    change,
    history,
    invoke_deliver,
    now_ms,
    post,
    queue_arn,
    received_records,
    record_holding,
    status_of,
    stored,
)
from devstack.lambda_events import sqs_record
from devstack.pipeline import Pipeline
from devstack.sphere_standin import SEED_INDIVIDUAL_ID

CONTACT = 301


def mapped_contact(pipeline: Pipeline, start: int) -> None:
    """The contact's Sphere customer id, delivered before the test's changes."""
    post(pipeline, change(CONTACT, "sphere_customer_id", SEED_INDIVIDUAL_ID, at=start - 60_000))
    pipeline.drain()
    pipeline.standin.clear_requests()


def queued_one_by_one(pipeline: Pipeline, *events: HubSpotEvent) -> list[dict[str, Any]]:
    """Each event posted in its own webhook (one message each), then received as one batch, in that order."""
    for event in events:
        post(pipeline, event)
    records = received_records(pipeline)
    return [record_holding(records, event) for event in events]


def on_receive(record: dict[str, Any], count: int) -> dict[str, Any]:
    """The record as the event source mapping hands it out on its ``count``-th receive."""
    return {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": str(count)}}


def test_three_changes_of_one_contact_make_one_patch_with_the_newest_values(pipeline: Pipeline) -> None:
    # Given a mapped contact's three changes, each its own message, received 3, 2 and 1 times
    start = now_ms()
    mapped_contact(pipeline, start)
    first = change(CONTACT, "email", "first@example.com", at=start)
    phone = change(CONTACT, "mobilephone", "+1 312 555 0147", at=start + 1_000)
    last = change(CONTACT, "email", "last@example.com", at=start + 2_000)
    batch = queued_one_by_one(pipeline, first, phone, last)
    batch = [on_receive(record, count) for record, count in zip(batch, (3, 2, 1), strict=True)]

    # When the deliver handler gets the batch
    failed = invoke_deliver(pipeline, batch)

    # Then Sphere got one PATCH with the newest email and the phone
    assert failed == set()
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "last@example.com", "phone": "+13125550147"})
    # And each event has its own outcome record, with its own message's receive count
    items = [stored(pipeline, event) for event in (first, phone, last)]
    assert [item["status"] for item in items] == ["superseded", "delivered", "delivered"]
    assert [item["attempts"] for item in items] == [3, 2, 1]
    assert [history(item) for item in items] == [
        ["queued", "superseded"],
        ["queued", "delivered"],
        ["queued", "delivered"],
    ]
    assert items[1]["request"] == items[2]["request"]


def test_a_failed_coalesced_call_records_each_message_as_its_own_failure(
    pipeline: Pipeline, visibility_changes: list[tuple[str, int]]
) -> None:
    # Given two changes of a mapped contact in one batch, the first on its last allowed receive
    start = now_ms()
    mapped_contact(pipeline, start)
    older = change(CONTACT, "email", "older@example.com", at=start)
    newer = change(CONTACT, "email", "newer@example.com", at=start + 1_000)
    last = pipeline.resources.max_receive_count
    queued = queued_one_by_one(pipeline, older, newer)
    batch = [on_receive(record, count) for record, count in zip(queued, (last, 2), strict=True)]
    # And Sphere answering their one call 429 with Retry-After: 7
    pipeline.standin.fail_next(1, 429, retry_after=7)

    # When the deliver handler gets the batch
    failed = invoke_deliver(pipeline, batch)

    # Then Sphere was called once, and both messages are reported failed
    assert [request.status for request in pipeline.standin.requests] == [429]
    assert failed == {record["messageId"] for record in batch}
    # And each is recorded by its own receive count: the first dead-lettered (it leaves now), the second retrying
    assert status_of(pipeline, older, newer) == ["dead_lettered", "retrying"]
    assert [stored(pipeline, event)["attempts"] for event in (older, newer)] == [last, 2]
    assert stored(pipeline, newer)["reason"] == "Sphere answered 429"
    assert sorted(visibility_changes) == sorted([(batch[0]["receiptHandle"], 0), (batch[1]["receiptHandle"], 7)])


def test_a_poison_message_ends_a_run_and_holds_the_contacts_later_messages(pipeline: Pipeline) -> None:
    # Given a mapped contact's change, a message in its group that is not a contact change, then another change
    start = now_ms()
    mapped_contact(pipeline, start)
    before = change(CONTACT, "email", "before@example.com", at=start)
    after = change(CONTACT, "email", "after@example.com", at=start + 1_000)
    first, later = queued_one_by_one(pipeline, before, after)
    group = first["attributes"]["MessageGroupId"]
    poison = sqs_record("not a change", queue_arn=queue_arn(pipeline), group_id=group)

    # When the deliver handler gets them in that order
    failed = invoke_deliver(pipeline, [first, poison, later])

    # Then the change before the poison message is delivered alone; the poison message and the change after fail
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "before@example.com"})
    assert failed == {poison["messageId"], later["messageId"]}
    assert status_of(pipeline, before) == ["delivered"]
    with pytest.raises(KeyError):  # held behind the poison message, untried: only on the queue
        stored(pipeline, after)


def test_a_run_holds_at_most_max_events_per_call(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given calls of at most two events, and three one-event changes of a mapped contact in one batch
    monkeypatch.setattr("webhook_adapter.consume.MAX_EVENTS_PER_CALL", 2)
    start = now_ms()
    mapped_contact(pipeline, start)
    events = [change(CONTACT, "email", f"e{index}@example.com", at=start + index) for index in range(3)]
    batch = queued_one_by_one(pipeline, *events)

    # When the deliver handler gets them
    failed = invoke_deliver(pipeline, batch)

    # Then the first two go in one call and the third in another, in order
    assert failed == set()
    assert [request.body for request in pipeline.standin.requests] == [
        {"email": "e1@example.com"},
        {"email": "e2@example.com"},
    ]
    assert status_of(pipeline, *events) == ["superseded", "delivered", "delivered"]
