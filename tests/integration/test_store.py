"""The events table's data access on moto, with the key schema template.yaml defines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.resources import create_resources
from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.merge import ContactState, FieldState
from webhook_adapter.model import ContactChange, ContactField, SourceEvent, Status
from webhook_adapter.outcome import Outcome
from webhook_adapter.store import HISTORY_LIMIT, EventStore, MessageOutcomes, StaleContactState

DAY_MS = 86_400_000
START = 1_795_000_000_000  # 2026-11-18


@pytest.fixture
def store() -> Iterator[EventStore]:
    with mock_aws():
        resources = create_resources(
            dynamodb=boto3.client("dynamodb"), sqs=boto3.client("sqs"), secretsmanager=boto3.client("secretsmanager")
        )
        yield EventStore(boto3.client("dynamodb"), resources.table_name, 90)


def event(key: str, contact: str = "c-1", at: int = START) -> SourceEvent:
    return SourceEvent(
        key=key,
        event_id=key,
        contact_id=contact,
        occurred_at=at,
        kind="contact",
        changes={ContactField.EMAIL: "a@b.co"},
    )


def change(*events: SourceEvent) -> ContactChange:
    return ContactChange(source="generic", contact_id=events[0].contact_id, received_at=START, events=events)


def test_a_second_writer_of_the_same_contact_version_is_refused(store: EventStore) -> None:
    # Given a contact state saved once, and read by two writers at the same version
    first = ContactState(fields={ContactField.EMAIL: FieldState("a@b.co", START, "e-1")})
    store.save_contact("generic", "c-1", first, now_ms=START)
    read_by_both = store.load_contact("generic", "c-1")

    # When the first writer saves, and the second saves from the same version
    store.save_contact("generic", "c-1", read_by_both, now_ms=START + 1)

    # Then the second is refused rather than overwriting the first
    with pytest.raises(StaleContactState):
        store.save_contact("generic", "c-1", read_by_both, now_ms=START + 2)
    assert store.load_contact("generic", "c-1").version == 2


def test_two_first_writers_of_a_new_contact_cannot_both_win(store: EventStore) -> None:
    # Given no state yet for a contact
    empty = store.load_contact("generic", "c-2")
    assert empty.version == 0

    # When two writers create it
    store.save_contact("generic", "c-2", empty, now_ms=START)

    # Then the second is refused
    with pytest.raises(StaleContactState):
        store.save_contact("generic", "c-2", empty, now_ms=START)


def test_events_in_a_status_are_found_across_days_and_shards_in_time_order(store: EventStore) -> None:
    # Given events rejected over three days (spread over the index's shards by their keys), and one delivered
    for day in range(3):
        for index in range(5):
            item = event(f"e-{day}-{index}")
            rejected = [(item, Outcome(status=Status.REJECTED))]
            store.record_outcomes([MessageOutcomes(change(item), rejected, 1, {}, START + day * DAY_MS + index)])
    delivered = event("e-delivered")
    store.record_outcomes(
        [MessageOutcomes(change(delivered), [(delivered, Outcome(status=Status.DELIVERED))], 1, {}, START)]
    )

    # When the rejected ones of the second and third day are listed
    found = store.events_by_status(Status.REJECTED, START + DAY_MS, START + 3 * DAY_MS)

    # Then exactly those ten are returned, oldest first
    assert [item["event_key"] for item in found] == [f"e-{day}-{index}" for day in (1, 2) for index in range(5)]


def test_an_outcome_moves_the_event_between_statuses_and_keeps_its_history(store: EventStore) -> None:
    # Given an event received, then retried
    item = event("e-history")
    retrying = Outcome(status=Status.RETRYING, reason="Sphere answered 503")
    store.record_failure(change(item), [item], retrying, attempts=1, now_ms=START + 1)
    assert [found["event_key"] for found in store.events_by_status(Status.RETRYING, START, START + 10)] == ["e-history"]

    # When it is delivered (its outcome written after its item was read)
    _, prior = store.load_change(change(item))
    store.record_outcomes(
        [MessageOutcomes(change(item), [(item, Outcome(status=Status.DELIVERED))], 2, prior, START + 2)]
    )

    # Then the event is delivered, its last reason gone, its history complete
    stored = store.get_event("generic", "c-1", "e-history")
    assert stored is not None
    assert stored["status"] == "delivered"
    assert "reason" not in stored
    assert stored["attempts"] == 2
    assert [entry["status"] for entry in stored["history"]] == ["queued", "retrying", "delivered"]
    # And it left the status index: delivered events are not in it
    assert store.events_by_status(Status.RETRYING, START, START + 10) == []
    assert store.events_by_status(Status.DELIVERED, START, START + 10) == []


def test_a_failed_attempt_never_overwrites_a_final_status(store: EventStore) -> None:
    # Given a delivered event
    item = event("e-final")
    store.record_outcomes([MessageOutcomes(change(item), [(item, Outcome(status=Status.DELIVERED))], 1, {}, START)])

    # When a repeat of its change fails and the failure is recorded
    failed = Outcome(status=Status.RETRYING, reason="Sphere answered 503")
    store.record_failure(change(item), [item], failed, attempts=1, now_ms=START + 1)

    # Then the event stays delivered
    stored = store.get_event("generic", "c-1", "e-final")
    assert stored is not None
    assert (stored["status"], [entry["status"] for entry in stored["history"]]) == (
        "delivered",
        ["queued", "delivered"],
    )


def test_a_long_retry_run_keeps_the_first_and_the_latest_history_entries(store: EventStore) -> None:
    # Given an event retried twenty times
    item = event("e-long")
    for attempt in range(1, 21):
        failed = Outcome(status=Status.RETRYING, reason=f"Sphere answered 503 ({attempt})")
        store.record_failure(change(item), [item], failed, attempts=attempt, now_ms=START + attempt)

    # When it is delivered
    _, prior = store.load_change(change(item))
    store.record_outcomes(
        [MessageOutcomes(change(item), [(item, Outcome(status=Status.DELIVERED))], 21, prior, START + 21)]
    )

    # Then its history holds when it was received and the latest entries only
    stored = store.get_event("generic", "c-1", "e-long")
    assert stored is not None
    statuses = [entry["status"] for entry in stored["history"]]
    assert len(statuses) == HISTORY_LIMIT
    assert (statuses[0], statuses[-1]) == ("queued", "delivered")


class _Throttled:
    """A DynamoDB client that leaves every key unprocessed (a table throttled for good)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.calls = 0

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls += 1
        return {"Responses": {self.table: []}, "UnprocessedKeys": RequestItems}


def test_reads_left_unprocessed_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given DynamoDB that keeps every key unprocessed (and no real pause between rounds)
    monkeypatch.setattr("webhook_adapter.store._UNPROCESSED_BACKOFF_SECONDS", 0)
    client = _Throttled("events")
    store = EventStore(client, "events", 90)  # type: ignore[arg-type]

    # When the statuses of some events are read
    with pytest.raises(StorageUnavailable, match="unprocessed"):
        store.known_events("generic", [event("e-1"), event("e-2")])

    # Then it asked again a bounded number of times before giving up (and the caller answers 5xx)
    assert client.calls == 5
