"""``EventStore.scan_events``: what the operator CLI's ``--scan`` reads (every status, a time window)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from devstack.resources import create_resources
from webhook_adapter.merge import ContactState, FieldState
from webhook_adapter.model import ContactChange, ContactField, SourceEvent, Status
from webhook_adapter.outcome import Outcome
from webhook_adapter.store import EventStore, MessageOutcomes

START = 1_795_000_000_000  # 2026-11-18
HOUR_MS = 3_600_000


@pytest.fixture
def store() -> Iterator[EventStore]:
    with mock_aws():
        resources = create_resources(
            dynamodb=boto3.client("dynamodb"), sqs=boto3.client("sqs"), secretsmanager=boto3.client("secretsmanager")
        )
        yield EventStore(boto3.client("dynamodb"), resources.table_name, 90)


def record(store: EventStore, key: str, status: Status, at: int) -> None:
    event = SourceEvent(key=key, event_id=key, contact_id="c-1", occurred_at=at, kind="contact")
    change = ContactChange(source="generic", contact_id="c-1", received_at=at, events=(event,))
    store.record_outcomes([MessageOutcomes(change, [(event, Outcome(status=status))], 1, {}, at)])


def test_a_scan_finds_every_status_written_in_the_window_and_no_contact_state(store: EventStore) -> None:
    # Given a delivered and a rejected event in the window, an ignored one before it, a refused request
    # in it, and the contact's state (written in the window too)
    record(store, "e-delivered", Status.DELIVERED, START + HOUR_MS)
    record(store, "e-rejected", Status.REJECTED, START + 2 * HOUR_MS)
    record(store, "e-before", Status.IGNORED, START - HOUR_MS)
    store.record_refused(
        request_id="r-1",
        source="hubspot",
        status_code=401,
        code="invalid_signature",
        message="no",
        body=b"x",
        now_ms=START + 3 * HOUR_MS,
    )
    state = ContactState(fields={ContactField.EMAIL: FieldState("a@b.co", START, "e")})
    store.save_contact("generic", "c-1", state, now_ms=START + HOUR_MS)

    # When the window [START, START + 4 h] is scanned
    found = store.scan_events(START, START + 4 * HOUR_MS)

    # Then the three items written in it are found, oldest first, whatever their status (not only indexed ones)
    assert [(item.get("event_key", item["pk"]), item["status"]) for item in found] == [
        ("e-delivered", "delivered"),
        ("e-rejected", "rejected"),
        ("REQUEST#r-1", "refused"),
    ]
