"""The receive function through its real entry point: API Gateway HTTP API events on moto.

Each test posts what a CRM (or an attacker) would send through ``Pipeline.post`` — the receive
Lambda handler with a payload-2.0 event — and checks the whole promise: the status and JSON body
of the answer, what is on the FIFO queue, and what the table recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack.crm import generic_request, hubspot_event, hubspot_request
from devstack.kit import fail_once
from devstack.lambda_events import LambdaContext, webhook_event
from devstack.pipeline import PUBLIC_BASE_URL, Answer, Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from webhook_adapter import api, runtime
from webhook_adapter.enqueue import ChangeQueue
from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.model import Status
from webhook_adapter.signatures import sign_hubspot_v3
from webhook_adapter.store import EventStore

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
HUBSPOT_URL = f"{PUBLIC_BASE_URL}/webhooks/hubspot"
HUBSPOT_SECRET = LOCAL_SECRETS["HubSpotSecretArn"]
GENERIC_SECRET = LOCAL_SECRETS["GenericSecretArn"]
PORTAL = 62515
SIX_MINUTES_MS = 6 * 60 * 1000
PLANTED = "SECRET-PII-12345"
"""A value that stands for PII: it must never come back out of the adapter except on the queue."""

type Message = dict[str, Any]


# ------------------------------------------------------------------------------------------------ fixtures


# ------------------------------------------------------------------------------------------------ helpers


def now_ms() -> int:
    """The wall clock in epoch milliseconds (the adapter checks signed timestamps against it)."""
    return int(time.time() * 1000)


def event_key(event: Mapping[str, Any]) -> str:
    """The adapter's dedup key of a HubSpot event: portal, object, property, time and event id."""
    parts = (
        event["portalId"],
        event["objectId"],
        event.get("propertyName") or "-",
        event["occurredAt"],
        event["eventId"],
    )
    return ":".join(str(part) for part in parts)


def hubspot_headers(
    body: bytes, *, secret: str = HUBSPOT_SECRET, url: str = HUBSPOT_URL, timestamp_ms: int | None = None
) -> dict[str, str]:
    """The headers HubSpot sends with ``body`` (v3 signature), for bodies ``hubspot_request`` cannot build."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else now_ms())
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": sign_hubspot_v3(
            secret=secret, method="POST", uri=url, body=body, timestamp=timestamp
        ),
        "X-HubSpot-Request-Timestamp": timestamp,
        "User-Agent": "HubSpot Webhooks",
    }


def legacy_v1_headers(body: bytes, *, secret: str = HUBSPOT_SECRET) -> dict[str, str]:
    """HubSpot's old v1 signature: hex SHA-256 of client secret + body, no timestamp."""
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature": hashlib.sha256(secret.encode() + body).hexdigest(),
        "X-HubSpot-Signature-Version": "v1",
    }


def contact_event(object_id: int, kind: str, *, occurred_at: int, event_id: int, **extra: Any) -> dict[str, Any]:
    """A HubSpot contact event without a property (creation, deletion, merge)."""
    event = hubspot_event(object_id, "-", None, occurred_at=occurred_at, event_id=event_id)
    del event["propertyName"], event["propertyValue"]
    return {**event, "subscriptionType": kind, **extra}


def retry_of(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch as HubSpot resends it: same events, ``attemptNumber`` one higher (so a new body and signature)."""
    return [{**event, "attemptNumber": event["attemptNumber"] + 1} for event in batch]


def assert_error(answer: Answer, status: int, code: str) -> None:
    """The answer is ``status`` with exactly ``{"error": {"code", "message"}}`` as a JSON body."""
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.body) == {"error"}
    assert set(answer.body["error"]) == {"code", "message"}
    assert answer.body["error"]["code"] == code
    assert isinstance(answer.body["error"]["message"], str)
    assert answer.body["error"]["message"]


def refused_since(pipeline: Pipeline, start_ms: int, *, kind: str = "REQUEST#") -> list[dict[str, Any]]:
    """Refused requests (or, with ``kind="C#"``, refused events of accepted batches) recorded from ``start_ms``."""
    found = pipeline.store.events_by_status(Status.REFUSED, start_ms - 1000, now_ms() + 1000)
    return [record for record in found if str(record["pk"]).startswith(kind)]


def assert_refused_once(pipeline: Pipeline, start_ms: int, *, status: int, code: str, body: bytes) -> dict[str, Any]:
    """Exactly one refused request was recorded, with this status and code, and only a digest of ``body``."""
    records = refused_since(pipeline, start_ms)
    assert [(record["http_status"], record["code"]) for record in records] == [(status, code)]
    record = records[0]
    assert record["status"] == "refused"
    assert record["reason"]
    assert record["body_bytes"] == len(body)
    assert record["body_sha256"] == hashlib.sha256(body).hexdigest()
    return record


def receive_all(pipeline: Pipeline) -> list[Message]:
    """Every message on the queue (each is then in flight, so call this only in tests that do not drain)."""
    messages: list[Message] = []
    while True:
        answer = pipeline.sqs.receive_message(
            QueueUrl=pipeline.resources.queue_url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId"],
            WaitTimeSeconds=0,
        )
        batch = answer.get("Messages", [])
        if not batch:
            return messages
        messages += [dict(message) for message in batch]


def peek_all(pipeline: Pipeline) -> list[Message]:
    """The messages on the queue, left visible for the deliver function (one receive, at most 10)."""
    answer = pipeline.sqs.receive_message(
        QueueUrl=pipeline.resources.queue_url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["MessageGroupId"],
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
    )
    return [dict(message) for message in answer.get("Messages", [])]


def message_events(message: Message) -> list[str]:
    """The event keys a queued contact change carries, in order."""
    return [event["key"] for event in json.loads(message["Body"])["events"]]


def post_event(pipeline: Pipeline, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the receive handler with a hand-built API Gateway event; the raw Lambda response."""
    response: dict[str, Any] = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    return response


# ---------------------------------------------------------------------------------- 1. a valid batch


def test_a_valid_batch_is_accepted_and_queued_merged_per_contact(pipeline: Pipeline) -> None:
    # Given 3 changes to contact 7 and 2 to contact 8, interleaved in one HubSpot batch
    # (one of them in the 2024 generic form, ``object.propertyChange`` on object type 0-1)
    now = now_ms()
    batch = [
        hubspot_event(7, "email", "ada@example.com", occurred_at=now - 50, event_id=101),
        hubspot_event(8, "city", "Lisbon", occurred_at=now - 40, event_id=102),
        hubspot_event(7, "phone", "+1 415 555 0100", occurred_at=now - 30, event_id=103),
        {
            **hubspot_event(8, "country", "Portugal", occurred_at=now - 20, event_id=104),
            "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-1",
        },
        hubspot_event(7, "city", "London", occurred_at=now - 10, event_id=105),
    ]

    # When HubSpot posts it
    answer = pipeline.post_hubspot(batch)

    # Then every event is accepted, none is a duplicate
    assert answer.status == 202
    assert sorted(answer.body["accepted"]) == ["101", "102", "103", "104", "105"]
    assert answer.body["duplicates"] == []
    assert "settled" not in answer.body
    # And one message per contact is queued, grouped by contact, holding that contact's events in change order
    messages = {message["Attributes"]["MessageGroupId"]: message for message in receive_all(pipeline)}
    assert set(messages) == {f"hubspot:{PORTAL}:7", f"hubspot:{PORTAL}:8"}
    assert message_events(messages[f"hubspot:{PORTAL}:7"]) == [event_key(batch[i]) for i in (0, 2, 4)]
    assert message_events(messages[f"hubspot:{PORTAL}:8"]) == [event_key(batch[i]) for i in (1, 3)]
    change = json.loads(messages[f"hubspot:{PORTAL}:7"]["Body"])
    assert change["source"] == "hubspot"
    assert change["contact_id"] == f"{PORTAL}:7"
    assert [event["changes"] for event in change["events"]] == [
        {"email": "ada@example.com"},
        {"phone": "+1 415 555 0100"},
        {"city": "London"},
    ]
    other = json.loads(messages[f"hubspot:{PORTAL}:8"]["Body"])
    assert [event["changes"] for event in other["events"]] == [{"city": "Lisbon"}, {"country": "Portugal"}]
    # And no event has an item yet: each is written once, when it ends (the queue holds them meanwhile)
    assert all(pipeline.find_event("hubspot", event_key(event)) is None for event in batch)


# ---------------------------------------------------------------------------------- 2. duplicates


def test_the_same_batch_twice_is_queued_once(pipeline: Pipeline) -> None:
    # Given a batch HubSpot sent once, still on the queue
    now = now_ms()
    batch = [
        hubspot_event(7, "email", "ada@example.com", occurred_at=now - 10, event_id=1),
        hubspot_event(8, "city", "Lisbon", occurred_at=now, event_id=2),
    ]
    first = pipeline.post_hubspot(batch)
    queued_after_first = pipeline.queued_messages()

    # When HubSpot retries it (same events, next attempt number, newly signed)
    second = pipeline.post_hubspot(retry_of(batch))

    # Then both are acknowledged, and SQS's deduplication id keeps one message per contact
    assert first.status == second.status == 202
    assert sorted(first.body["accepted"]) == sorted(second.body["accepted"]) == ["1", "2"]
    assert queued_after_first == pipeline.queued_messages() == 2


def test_a_batch_sent_again_after_delivery_is_acknowledged_as_duplicates_and_not_queued(pipeline: Pipeline) -> None:
    # Given a batch HubSpot sent once, delivered (its events have their final records)
    now = now_ms()
    batch = [
        hubspot_event(7, "email", "ada@example.com", occurred_at=now - 10, event_id=1),
        hubspot_event(8, "city", "Lisbon", occurred_at=now, event_id=2),
    ]
    assert pipeline.post_hubspot(batch).status == 202
    pipeline.drain()

    # When HubSpot sends it again
    again = pipeline.post_hubspot(retry_of(batch))

    # Then every event is reported as a duplicate and nothing is queued
    assert again.status == 202
    assert again.body == {"accepted": [], "duplicates": ["1", "2"]}
    assert pipeline.queued_messages() == 0


def test_a_batch_with_one_known_and_one_new_event_queues_only_the_new_one(pipeline: Pipeline) -> None:
    # Given one event already received and delivered
    now = now_ms()
    known = hubspot_event(7, "email", "ada@example.com", occurred_at=now - 10, event_id=1)
    new = hubspot_event(7, "city", "London", occurred_at=now, event_id=2)
    assert pipeline.post_hubspot([known]).status == 202
    pipeline.drain()

    # When a batch holds it again together with a new event about the same contact (sent twice in the batch)
    answer = pipeline.post_hubspot([known, new, dict(new)])

    # Then only the new event is accepted, once, and the message carries it alone
    assert answer.status == 202
    assert answer.body == {"accepted": ["2"], "duplicates": ["1"]}
    messages = receive_all(pipeline)
    assert [message_events(message) for message in messages] == [[event_key(new)]]


# ------------------------------------------------------------------- 3. the failure between the two writes


def sphere_batch(now: int) -> list[dict[str, Any]]:
    """A contact that is a known Sphere customer, with a new email."""
    return [
        hubspot_event(7, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 10, event_id=11),
        hubspot_event(7, "email", "ada@example.com", occurred_at=now, event_id=12),
    ]


def test_a_batch_queued_but_whose_settled_events_were_not_recorded_is_completed_on_retry(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch with a change to deliver and an event settled on arrival (an unmapped property),
    # and DynamoDB failing once to record the settled one, after the change was put on the queue
    now = now_ms()
    batch = [*sphere_batch(now), hubspot_event(7, "lifecyclestage", "lead", occurred_at=now, event_id=13)]
    monkeypatch.setattr(
        EventStore,
        "record_settled",
        fail_once(EventStore.record_settled, StorageUnavailable("DynamoDB is throttling")),
    )

    # When HubSpot posts the batch, gets the 5xx, and retries it
    failed = pipeline.post_hubspot(batch)
    retried = pipeline.post_hubspot(retry_of(batch))

    # Then the first answer asks for a retry, with a JSON error
    assert_error(failed, 503, "storage_unavailable")
    # And the retry accepts every event (none had a record), records the settled one
    assert retried.status == 202
    assert sorted(retried.body["accepted"]) == ["11", "12", "13"]
    assert retried.body["settled"] == {"ignored": ["13"]}
    assert pipeline.event("hubspot", event_key(batch[2]))["status"] == "ignored"
    # And SQS's deduplication id absorbed the re-send: one message for the change
    assert pipeline.queued_messages() == 1
    # And after delivery Sphere got exactly one PATCH for that change
    pipeline.drain()
    assert [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)] == [{"email": "ada@example.com"}]
    assert pipeline.event("hubspot", event_key(batch[1]))["status"] == "delivered"


def test_settled_events_dynamodb_leaves_unprocessed_are_written_again_before_the_answer(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB leaves the first batch write unprocessed (throttled), with no real pause between rounds
    monkeypatch.setattr("webhook_adapter.store._UNPROCESSED_BACKOFF_SECONDS", 0)
    client = api.receiver().store.client
    original = client.batch_write_item
    calls: list[int] = []

    def throttled_once(**request: Any) -> Any:
        calls.append(len(request["RequestItems"][pipeline.resources.table_name]))
        if len(calls) == 1:
            return {"UnprocessedItems": request["RequestItems"]}
        return original(**request)

    monkeypatch.setattr(client, "batch_write_item", throttled_once)
    now = now_ms()
    batch = [hubspot_event(9, "lifecyclestage", "lead", occurred_at=now, event_id=event_id) for event_id in (21, 22)]

    # When HubSpot posts events that settle on arrival
    answer = pipeline.post_hubspot(batch)

    # Then they were asked for again and recorded before the 202
    assert answer.status == 202
    assert calls == [2, 2]
    assert [pipeline.event("hubspot", event_key(event))["status"] for event in batch] == ["ignored", "ignored"]


def test_a_batch_sqs_would_not_take_is_not_recorded_and_succeeds_on_retry(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SQS fails once
    batch = sphere_batch(now_ms())
    monkeypatch.setattr(
        ChangeQueue, "send", fail_once(ChangeQueue.send, StorageUnavailable("could not queue the change on SQS"))
    )

    # When HubSpot posts the batch
    failed = pipeline.post_hubspot(batch)

    # Then it is asked to retry, and nothing is recorded or queued (a retry must not look like a duplicate)
    assert_error(failed, 503, "storage_unavailable")
    assert all(pipeline.find_event("hubspot", event_key(event)) is None for event in batch)
    assert pipeline.queued_messages() == 0
    assert refused_since(pipeline, now_ms() - 60_000) == []

    # When HubSpot retries
    retried = pipeline.post_hubspot(retry_of(batch))

    # Then the events are accepted and queued, and reach Sphere once
    assert retried.status == 202
    assert sorted(retried.body["accepted"]) == ["11", "12"]
    assert retried.body["duplicates"] == []
    assert pipeline.queued_messages() == 1
    pipeline.drain()
    assert [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)] == [{"email": "ada@example.com"}]


def test_a_batch_sqs_took_only_in_part_is_queued_whole_on_retry_each_change_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch about 12 contacts (two SendMessageBatch calls of at most 10), and SQS throttling the second call
    now = now_ms()
    batch = [
        hubspot_event(contact, "email", "ada@example.com", occurred_at=now, event_id=contact)
        for contact in range(1, 13)
    ]
    client = api.receiver().queue.client
    original = client.send_message_batch
    calls: list[int] = []

    def throttled_second_call(**request: Any) -> Any:
        calls.append(len(request["Entries"]))
        if len(calls) == 2:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SendMessageBatch"
            )
        return original(**request)

    monkeypatch.setattr(client, "send_message_batch", throttled_second_call)

    # When HubSpot posts it, gets the 5xx, and retries it
    failed = pipeline.post_hubspot(batch)
    recorded_after_failure = [pipeline.find_event("hubspot", event_key(event)) for event in batch]
    retried = pipeline.post_hubspot(retry_of(batch))

    # Then the first answer asks for a retry and nothing was recorded as known
    assert_error(failed, 503, "storage_unavailable")
    assert recorded_after_failure == [None] * 12
    # And the retry accepts all 12, re-sends both calls, and the queue holds each contact's change once
    assert retried.status == 202
    assert sorted(retried.body["accepted"], key=int) == [str(contact) for contact in range(1, 13)]
    assert calls == [10, 2, 10, 2]
    groups = sorted(message["Attributes"]["MessageGroupId"] for message in receive_all(pipeline))
    assert groups == sorted(f"hubspot:{PORTAL}:{contact}" for contact in range(1, 13))


def test_a_batch_whose_dedup_read_fails_is_answered_503_and_nothing_is_queued(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB cannot be read
    def unreadable(*_: object, **__: object) -> dict[str, Status]:
        raise StorageUnavailable("could not read events from DynamoDB")

    monkeypatch.setattr(EventStore, "known_events", unreadable)
    batch = sphere_batch(now_ms())

    # When HubSpot posts a batch
    answer = pipeline.post_hubspot(batch)

    # Then HubSpot is asked to retry, and nothing was queued on a guess
    assert_error(answer, 503, "storage_unavailable")
    assert pipeline.queued_messages() == 0


# ---------------------------------------------------------------------------------- 4. settled on receipt


def test_events_with_nothing_to_deliver_are_acknowledged_and_recorded_as_ignored(pipeline: Pipeline) -> None:
    # Given an unmapped property, a creation, a deletion, a merge and a company property change,
    # and HubSpot's old docs example (``eventType`` instead of ``subscriptionType``)
    now = now_ms()
    batch = [
        hubspot_event(7, "lifecyclestage", "customer", occurred_at=now - 50, event_id=21),
        contact_event(8, "contact.creation", occurred_at=now - 40, event_id=22),
        contact_event(9, "contact.deletion", occurred_at=now - 30, event_id=23),
        contact_event(
            10,
            "contact.merge",
            occurred_at=now - 20,
            event_id=24,
            primaryObjectId=10,
            mergedObjectIds=[11],
            newObjectId=10,
        ),
        {
            **hubspot_event(12, "city", "Berlin", occurred_at=now - 10, event_id=25),
            "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-2",
        },
    ]

    legacy: list[dict[str, Any]] = json.loads((FIXTURES / "hubspot" / "legacy-docs-batch.json").read_text())

    # When HubSpot posts them
    answer = pipeline.post_hubspot(batch)
    legacy_answer = pipeline.post_hubspot(legacy)

    # Then they are acknowledged (HubSpot retries any 4xx), settled as ignored, and nothing is queued
    assert answer.status == 202
    assert sorted(answer.body["accepted"]) == ["21", "22", "23", "24", "25"]
    assert answer.body["duplicates"] == []
    assert sorted(answer.body["settled"]["ignored"]) == ["21", "22", "23", "24", "25"]
    assert pipeline.queued_messages() == 0
    for event in batch:
        item = pipeline.event("hubspot", event_key(event))
        assert item["status"] == "ignored"
        assert item["reason"]
    assert "lifecyclestage" in pipeline.event("hubspot", event_key(batch[0]))["reason"]
    assert "contact.merge" in pipeline.event("hubspot", event_key(batch[3]))["reason"]
    assert legacy_answer.status == 202
    assert legacy_answer.body == {
        "accepted": ["910011", "910012"],
        "duplicates": [],
        "settled": {"ignored": ["910011", "910012"]},
    }
    assert [pipeline.event("hubspot", event_key(event))["status"] for event in legacy] == ["ignored", "ignored"]


def test_a_redacted_value_is_left_off_the_queued_change_and_never_reaches_sphere(pipeline: Pipeline) -> None:
    # Given a known Sphere customer whose email HubSpot redacted, next to a real phone change
    now = now_ms()
    batch = [
        hubspot_event(7, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 20, event_id=51),
        hubspot_event(7, "email", "REDACTED", occurred_at=now - 10, event_id=52),
        hubspot_event(7, "mobilephone", "+1 415 555 0101", occurred_at=now, event_id=53),
    ]

    # When HubSpot posts it and the change is delivered
    answer = pipeline.post_hubspot(batch)
    queued = [message_events(message) for message in peek_all(pipeline)]
    pipeline.drain()

    # Then the redacted event is settled incomplete and left off the queued change
    assert answer.status == 202
    assert sorted(answer.body["accepted"]) == ["51", "52", "53"]
    assert answer.body["settled"] == {"incomplete": ["52"]}
    assert queued == [[event_key(batch[0]), event_key(batch[2])]]
    redacted = pipeline.event("hubspot", event_key(batch[1]))
    assert redacted["status"] == "incomplete"
    assert "email" in redacted["reason"]
    # And Sphere got the phone change but never the literal "REDACTED"
    assert len(pipeline.standin.patches(SEED_INDIVIDUAL_ID)) == 1
    assert all("REDACTED" not in json.dumps(request.body) for request in pipeline.standin.requests)


# ---------------------------------------------------------------------------------- 5. bad input


def good_batch_body(now: int) -> bytes:
    """A valid one-event batch, as bytes."""
    return json.dumps([hubspot_event(7, "email", "ada@example.com", occurred_at=now, event_id=1)]).encode()


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    """``headers`` without ``name``."""
    return {key: value for key, value in headers.items() if key != name}


type BadRequest = Callable[[int], tuple[str, dict[str, str], bytes]]
"""Builds (source, headers, body) of a bad request from the current time in epoch ms."""


def _signed(body: bytes, **options: Any) -> tuple[str, dict[str, str], bytes]:
    return "hubspot", hubspot_headers(body, **options), body


def _unknown_source(now: int) -> tuple[str, dict[str, str], bytes]:
    body = good_batch_body(now)
    return "nope", hubspot_headers(body), body


def _content_type(value: str | None) -> BadRequest:
    def build(now: int) -> tuple[str, dict[str, str], bytes]:
        body = good_batch_body(now)
        headers = without(hubspot_headers(body), "Content-Type")
        return "hubspot", ({**headers, "Content-Type": value} if value else headers), body

    return build


def _missing(header: str) -> BadRequest:
    def build(now: int) -> tuple[str, dict[str, str], bytes]:
        body = good_batch_body(now)
        return "hubspot", without(hubspot_headers(body), header), body

    return build


def _legacy_v1(now: int) -> tuple[str, dict[str, str], bytes]:
    body = good_batch_body(now)
    return "hubspot", legacy_v1_headers(body), body


def _signed_body(body: bytes) -> BadRequest:
    return lambda _now: _signed(body)


def _too_many_events(now: int) -> tuple[str, dict[str, str], bytes]:
    events = [hubspot_event(7, "city", "Lisbon", occurred_at=now, event_id=i) for i in range(101)]
    return _signed(json.dumps(events).encode())


BAD_REQUESTS: list[tuple[str, BadRequest, int, str]] = [
    ("unknown source", _unknown_source, 404, "unknown_source"),
    ("wrong content type", _content_type("text/plain"), 415, "unsupported_media_type"),
    ("missing content type", _content_type(None), 415, "unsupported_media_type"),
    ("missing signature", _missing("X-HubSpot-Signature-v3"), 401, "invalid_signature"),
    ("missing timestamp", _missing("X-HubSpot-Request-Timestamp"), 401, "invalid_signature"),
    (
        "wrong signature",
        lambda now: _signed(good_batch_body(now), secret="not-the-client-secret"),
        401,
        "invalid_signature",
    ),
    (
        "stale timestamp",
        lambda now: _signed(good_batch_body(now), timestamp_ms=now - SIX_MINUTES_MS),
        401,
        "invalid_signature",
    ),
    (
        "future timestamp",
        lambda now: _signed(good_batch_body(now), timestamp_ms=now + SIX_MINUTES_MS),
        401,
        "invalid_signature",
    ),
    (
        "signed for another URL",
        lambda now: _signed(good_batch_body(now), url="http://evil.example/webhooks/hubspot"),
        401,
        "invalid_signature",
    ),
    ("legacy v1 signature, not enabled", _legacy_v1, 401, "invalid_signature"),
    ("invalid JSON", _signed_body(b'[{"eventId": 1,'), 400, "invalid_payload"),
    ("not an array", _signed_body(b'{"eventId": 1}'), 400, "invalid_payload"),
    ("an empty array", _signed_body(b"[]"), 400, "invalid_payload"),
    ("more than 100 events", _too_many_events, 400, "invalid_payload"),
]
"""Each bad-input class: what it is, how to build it, and the status and error code it must get."""


def test_bad_input_is_answered_with_its_status_and_recorded_as_refused(
    pipeline: Pipeline, subtests: pytest.Subtests, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: set[str] = set()
    for name, build, status, code in BAD_REQUESTS:
        with subtests.test(name):
            # Given a request that is bad in one way
            start = now_ms()
            source, headers, body = build(start)

            # When it is posted
            answer = pipeline.post(source, headers, body)

            # Then it gets its 4xx with a JSON error, and nothing is queued or stored as an event
            assert_error(answer, status, code)
            assert pipeline.queued_messages() == 0
            assert pipeline.find_event("hubspot", f"{PORTAL}:7:email:{start}:1") is None
            # And the refusal is recorded once: why, and a digest of the body (never the body)
            records = [record for record in refused_since(pipeline, start) if record["pk"] not in seen]
            seen |= {record["pk"] for record in records}
            assert [(record["http_status"], record["code"], record["source"]) for record in records] == [
                (status, code, source)
            ]
            assert records[0]["reason"]
            assert records[0]["body_bytes"] == len(body)
            assert records[0]["body_sha256"] == hashlib.sha256(body).hexdigest()

    with subtests.test("body flagged base64 that is not base64"):
        # Given an API Gateway event whose body claims to be base64 but is not
        start = now_ms()
        body = good_batch_body(start)
        event = webhook_event("hubspot", hubspot_headers(body), body)
        event["body"], event["isBase64Encoded"] = "this is *not* base64!", True

        # When the receive function is invoked with it
        response = post_event(pipeline, event)

        # Then the answer is 400 with a JSON error, nothing is queued, and the refusal is recorded
        answer = Answer(
            status=response["statusCode"],
            body=json.loads(response["body"]),
            headers={name.lower(): value for name, value in response["headers"].items()},
        )
        assert_error(answer, 400, "invalid_payload")
        assert pipeline.queued_messages() == 0
        records = [record for record in refused_since(pipeline, start) if record["pk"] not in seen]
        assert [(record["http_status"], record["code"]) for record in records] == [(400, "invalid_payload")]

    with subtests.test("refusal while the table is down"):
        # Given DynamoDB fails when the refusal is recorded
        def table_down(*_: object, **__: object) -> None:
            raise StorageUnavailable("could not record the refused request in DynamoDB")

        monkeypatch.setattr(EventStore, "record_refused", table_down)
        body = good_batch_body(now_ms())

        # When an unsigned request arrives
        answer = pipeline.post("hubspot", without(hubspot_headers(body), "X-HubSpot-Signature-v3"), body)

        # Then it is still answered 401, not 5xx: a failure to record must not make HubSpot retry bad input
        assert_error(answer, 401, "invalid_signature")


def test_a_malformed_event_is_settled_refused_and_the_rest_of_its_batch_is_queued(pipeline: Pipeline) -> None:
    # Given a batch whose second event has no eventId (HubSpot retries a whole batch on any 4xx)
    start = now_ms()
    good = hubspot_event(7, "email", "ada@example.com", occurred_at=start, event_id=1)
    bad = hubspot_event(7, "city", "Lisbon", occurred_at=start, event_id=2)
    del bad["eventId"]
    body = json.dumps([good, bad]).encode()

    # When it is posted
    answer = pipeline.post("hubspot", hubspot_headers(body), body)

    # Then it is accepted: the good event queued, the bad one named by its position and settled refused
    assert answer.status == 202
    assert answer.body == {"accepted": ["1", "#1"], "duplicates": [], "settled": {"refused": ["#1"]}}
    assert pipeline.queued_messages() == 1
    assert [record["reason"] for record in refused_since(pipeline, start, kind="C#")] == [
        "invalid HubSpot event: eventId: Field required"
    ]
    # And HubSpot's retry of the batch, once delivered, finds both known
    pipeline.drain()
    retry = json.dumps(retry_of([good, bad])).encode()
    assert pipeline.post("hubspot", hubspot_headers(retry), retry).body == {"accepted": [], "duplicates": ["1", "#1"]}


def test_a_body_over_the_limit_is_answered_413_and_recorded(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 2 KiB body limit and a properly signed batch bigger than that
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    runtime.reset()
    start = now_ms()
    batch = [hubspot_event(7, "city", "Lisbon", occurred_at=start, event_id=i) for i in range(20)]
    headers, body = hubspot_request(batch, secret=HUBSPOT_SECRET, url=HUBSPOT_URL)
    assert len(body) > 2048

    # When HubSpot posts it
    answer = pipeline.post("hubspot", headers, body)

    # Then it is refused as too large, and nothing is queued
    assert_error(answer, 413, "body_too_large")
    assert pipeline.queued_messages() == 0
    assert_refused_once(pipeline, start, status=413, code="body_too_large", body=body)
    # And a batch under the limit still goes through
    assert pipeline.post_hubspot(batch[:2]).status == 202


def test_legacy_v1_signatures_are_accepted_when_enabled(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given legacy signatures are enabled
    monkeypatch.setenv("HUBSPOT_LEGACY_SIGNATURES", "true")
    runtime.reset()
    body = good_batch_body(now_ms())

    # When HubSpot posts a batch signed v1, and someone posts one with a wrong v1 signature
    answer = pipeline.post("hubspot", legacy_v1_headers(body), body)
    forged = pipeline.post("hubspot", legacy_v1_headers(body, secret="not-the-client-secret"), body)

    # Then the genuine one is accepted and queued, the forged one refused
    assert answer.status == 202
    assert answer.body == {"accepted": ["1"], "duplicates": []}
    assert pipeline.queued_messages() == 1
    assert_error(forged, 401, "invalid_signature")


# ---------------------------------------------------------------------------------- 6. the generic source


def generic_contact(contact_id: str = "c-42", **fields: Any) -> dict[str, Any]:
    """A contact as a generic integration posts it."""
    return {"id": contact_id, "updatedAt": now_ms(), "email": "ada@example.com", **fields}


def test_a_valid_generic_request_is_accepted_and_queued(pipeline: Pipeline) -> None:
    # Given a contact signed the Standard Webhooks way
    contact = generic_contact(sphereCustomerId=SEED_INDIVIDUAL_ID)

    # When the integration posts it
    answer = pipeline.post_generic(contact, msg_id="msg_1")

    # Then it is accepted under its webhook-id and queued in the contact's group
    assert answer.status == 202
    assert answer.body == {"accepted": ["msg_1"], "duplicates": []}
    messages = receive_all(pipeline)
    assert [message["Attributes"]["MessageGroupId"] for message in messages] == ["generic:c-42"]
    change = json.loads(messages[0]["Body"])
    assert change["events"][0]["changes"] == {"customer_id": SEED_INDIVIDUAL_ID, "email": "ada@example.com"}


def test_the_same_generic_webhook_id_twice_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given a generic request already received, queued and not yet delivered
    contact = generic_contact()
    assert pipeline.post_generic(contact, msg_id="msg_2").status == 202

    # When the integration retries it under the same webhook-id (even with a changed body)
    retry = pipeline.post_generic({**contact, "email": "other@example.com"}, msg_id="msg_2")

    # Then SQS keeps the first message only
    assert retry.status == 202
    assert pipeline.queued_messages() == 1

    # When it retries again after the first was delivered
    pipeline.drain()
    late = pipeline.post_generic({**contact, "email": "other@example.com"}, msg_id="msg_2")

    # Then it is acknowledged as a duplicate and not queued again
    assert late.body == {"accepted": [], "duplicates": ["msg_2"]}
    assert pipeline.queued_messages() == 0


def test_a_rotated_generic_secret_accepts_signatures_by_either_key(pipeline: Pipeline) -> None:
    # Given the generic secret holds the old and a new key, whitespace-separated
    new_secret = "whsec_bmV3LWdlbmVyaWMtd2ViaG9vay1zZWNyZXQ="
    boto3.client("secretsmanager").put_secret_value(
        SecretId=os.environ["GENERIC_SECRET_ID"], SecretString=f"{GENERIC_SECRET}\n {new_secret}"
    )
    runtime.reset()

    # When requests signed by the old key, the new key and an unknown key arrive
    by_old = pipeline.post_generic(generic_contact("c-1"), msg_id="msg_old", secret=GENERIC_SECRET)
    by_new = pipeline.post_generic(generic_contact("c-2"), msg_id="msg_new", secret=new_secret)
    by_other = pipeline.post_generic(
        generic_contact("c-3"), msg_id="msg_other", secret="whsec_b3RoZXItd2ViaG9vay1zZWNyZXQ="
    )

    # Then both configured keys are accepted, the unknown one refused
    assert by_old.status == 202
    assert by_old.body["accepted"] == ["msg_old"]
    assert by_new.status == 202
    assert by_new.body["accepted"] == ["msg_new"]
    assert_error(by_other, 401, "invalid_signature")
    assert pipeline.queued_messages() == 2


def _generic_without(header: str) -> Callable[[str], tuple[dict[str, str], bytes]]:
    def build(msg_id: str) -> tuple[dict[str, str], bytes]:
        headers, body = generic_request(generic_contact(), secret=GENERIC_SECRET, msg_id=msg_id)
        return without(headers, header), body

    return build


UNAUTHENTIC_GENERIC_REQUESTS: list[tuple[str, Callable[[str], tuple[dict[str, str], bytes]]]] = [
    ("missing webhook-id", _generic_without("webhook-id")),
    ("missing webhook-timestamp", _generic_without("webhook-timestamp")),
    ("missing webhook-signature", _generic_without("webhook-signature")),
    (
        "stale webhook-timestamp",
        lambda msg_id: generic_request(
            generic_contact(), secret=GENERIC_SECRET, msg_id=msg_id, timestamp=int(time.time()) - 360
        ),
    ),
    (
        "signed with another key",
        lambda msg_id: generic_request(generic_contact(), secret="whsec_b3RoZXItd2ViaG9vay1zZWNyZXQ=", msg_id=msg_id),
    ),
]


def test_an_unauthentic_generic_request_is_answered_401_and_recorded(
    pipeline: Pipeline, subtests: pytest.Subtests
) -> None:
    seen: set[str] = set()
    for number, (name, build) in enumerate(UNAUTHENTIC_GENERIC_REQUESTS):
        with subtests.test(name):
            # Given a generic request that is not (or no longer) authentic
            start = now_ms()
            headers, body = build(f"msg_bad_{number}")

            # When it is posted
            answer = pipeline.post("generic", headers, body)

            # Then it is refused as not authentic, recorded, and nothing is queued or stored
            assert_error(answer, 401, "invalid_signature")
            assert pipeline.queued_messages() == 0
            assert pipeline.find_event("generic", f"msg_bad_{number}") is None
            records = [record for record in refused_since(pipeline, start) if record["pk"] not in seen]
            seen |= {record["pk"] for record in records}
            assert [(record["http_status"], record["code"]) for record in records] == [(401, "invalid_signature")]
            assert records[0]["body_sha256"] == hashlib.sha256(body).hexdigest()


# ---------------------------------------------------------------------------------- 7. fail closed


def test_an_unreadable_hubspot_secret_fails_closed_with_503(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    secretsmanager = boto3.client("secretsmanager")
    secret_id = os.environ["HUBSPOT_SECRET_ID"]
    start = now_ms()
    batch = [hubspot_event(7, "email", "ada@example.com", occurred_at=start, event_id=1)]
    unsigned = ({"Content-Type": "application/json"}, json.dumps(batch).encode())

    with subtests.test("blank secret"):
        # Given the HubSpot client secret was overwritten with whitespace
        secretsmanager.put_secret_value(SecretId=secret_id, SecretString="  \n ")
        runtime.reset()

        # When a request signed with an empty key, and an unsigned one, arrive
        answers = [pipeline.post_hubspot(batch, secret=" "), pipeline.post("hubspot", *unsigned)]

        # Then both are answered 503 (retry later), never accepted, never refused as unauthentic
        for answer in answers:
            assert_error(answer, 503, "verification_unavailable")

    with subtests.test("deleted secret"):
        # Given the HubSpot client secret is gone from Secrets Manager
        secretsmanager.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        runtime.reset()

        # When HubSpot posts a batch signed with the client secret it knows, and a forger an unsigned one
        answers = [pipeline.post_hubspot(batch), pipeline.post("hubspot", *unsigned)]

        # Then both are answered 503, never 202 and never 401
        for answer in answers:
            assert_error(answer, 503, "verification_unavailable")

    # And nothing was queued, stored, or recorded as refused
    assert pipeline.queued_messages() == 0
    assert pipeline.find_event("hubspot", event_key(batch[0])) is None
    assert refused_since(pipeline, start) == []


# ---------------------------------------------------------------------------------- 8. no leak


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is now (capsys swaps it for every test phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def powertools_output_to_capsys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the Powertools logger's stream (bound to ``sys.stdout`` when first imported) at capsys."""
    import receive.app  # noqa: F401 - creates the service logger and its handler

    handlers = [
        handler
        for handler in logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"]).handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    assert handlers, "the Powertools logger has no stream handler"
    for handler in handlers:
        monkeypatch.setattr(handler, "stream", _CurrentStdout())


@pytest.mark.usefixtures("powertools_output_to_capsys")
def test_no_secret_signature_or_payload_value_leaks_into_logs_answers_or_records(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a good batch, a forged batch and two invalid batches carrying a planted value
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger=os.environ["POWERTOOLS_SERVICE_NAME"])
    start = now_ms()
    good = [hubspot_event(7, "email", f"{PLANTED}@example.com", occurred_at=start, event_id=1)]
    good_headers, good_body = hubspot_request(good, secret=HUBSPOT_SECRET, url=HUBSPOT_URL)
    forged_headers, forged_body = hubspot_request(good, secret="forged-secret", url=HUBSPOT_URL)
    invalid = [
        {**hubspot_event(8, "email", None, occurred_at=start, event_id=2), "propertyValue": {"value": PLANTED}},
        {**hubspot_event(8, "city", PLANTED, occurred_at=start, event_id=3), "occurredAt": PLANTED},
        {**hubspot_event(8, "email", f"{PLANTED}@example.com", occurred_at=start, event_id=4), "objectId": [PLANTED]},
    ]
    invalid_body = json.dumps(invalid).encode()
    not_json = f'[{{"propertyValue": "{PLANTED}", '.encode()
    generic_headers, generic_body = generic_request(
        {"id": "c-1", "email": [f"{PLANTED}@example.com"]}, secret=GENERIC_SECRET
    )

    # When all of them are posted
    answers = [
        pipeline.post("hubspot", good_headers, good_body),
        pipeline.post("hubspot", forged_headers, forged_body),
        pipeline.post("hubspot", hubspot_headers(invalid_body), invalid_body),
        pipeline.post("hubspot", hubspot_headers(not_json), not_json),
        pipeline.post("generic", generic_headers, generic_body),
    ]

    # Then they were answered as expected
    assert [answer.status for answer in answers] == [202, 401, 202, 400, 400]
    # And no log line, answer or refused record holds the client secret, a signature or the planted value
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert "webhook refused" in logs, "the logs were not captured"
    answered = json.dumps([answer.body for answer in answers])
    recorded = json.dumps(refused_since(pipeline, start), default=str)
    assert len(refused_since(pipeline, start)) == 3
    assert len(refused_since(pipeline, start, kind="C#")) == 3  # the malformed events of the invalid batch
    forbidden = {
        "client secret": HUBSPOT_SECRET,
        "generic secret": GENERIC_SECRET,
        "good signature": good_headers["X-HubSpot-Signature-v3"],
        "forged signature": forged_headers["X-HubSpot-Signature-v3"],
        "generic signature": generic_headers["webhook-signature"],
        "planted value": PLANTED,
    }
    for what, value in forbidden.items():
        for where, text in {"logs": logs, "answers": answered, "refused records": recorded}.items():
            assert value not in text, f"the {what} leaked into the {where}"


# ---------------------------------------------------------------------------------- 9. header case


def test_mixed_case_header_names_are_verified(pipeline: Pipeline) -> None:
    # Given a batch whose header names are spelled in other cases, its content type with a charset
    batch = [hubspot_event(7, "email", "ada@example.com", occurred_at=now_ms(), event_id=1)]
    headers, body = hubspot_request(batch, secret=HUBSPOT_SECRET, url=HUBSPOT_URL)
    headers["X-HubSpot-Signature-V3"] = headers.pop("X-HubSpot-Signature-v3")
    headers["X-HUBSPOT-REQUEST-TIMESTAMP"] = headers.pop("X-HubSpot-Request-Timestamp")
    headers["content-TYPE"] = headers.pop("Content-Type") + "; charset=utf-8"

    # When API Gateway passes it on (lower-casing the names)
    answer = pipeline.post("hubspot", headers, body)

    # Then it is verified and accepted
    assert answer.status == 202
    assert answer.body == {"accepted": ["1"], "duplicates": []}
    assert pipeline.queued_messages() == 1


def test_an_event_whose_headers_were_not_lower_cased_is_verified(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    for number, base64_body in enumerate((True, False), start=1):
        with subtests.test("base64 body" if base64_body else "text body"):
            # Given a console-style test event: header names as HubSpot spells them, the body as base64 or text
            batch = [hubspot_event(7, "email", "ada@example.com", occurred_at=now_ms(), event_id=number)]
            headers, body = hubspot_request(batch, secret=HUBSPOT_SECRET, url=HUBSPOT_URL)
            headers["X-HubSpot-Signature-V3"] = headers.pop("X-HubSpot-Signature-v3")
            event = webhook_event("hubspot", headers, body)
            event["headers"] = dict(headers)
            if not base64_body:
                event["body"], event["isBase64Encoded"] = body.decode(), False

            # When the receive function is invoked with it
            response = post_event(pipeline, event)

            # Then it is verified, accepted and queued
            assert response["statusCode"] == 202, response["body"]
            assert json.loads(response["body"]) == {"accepted": [str(number)], "duplicates": []}
    assert pipeline.queued_messages() == 2


# ---------------------------------------------------------------------------------- bugs found


def test_an_event_time_beyond_what_the_store_can_write_is_refused_before_anything_is_queued(pipeline: Pipeline) -> None:
    # Given a signed batch whose occurredAt is in the year 3,170,843
    batch = [hubspot_event(7, "email", "ada@example.com", occurred_at=10**17, event_id=1)]

    # When it is posted
    answer = pipeline.post_hubspot(batch)

    # Then it is acknowledged and settled refused like any other malformed event, and nothing is queued
    assert answer.status == 202
    assert answer.body["settled"] == {"refused": ["1"]}
    assert pipeline.queued_messages() == 0


def test_unknown_source_names_do_not_become_metric_dimensions(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given metrics are published (as embedded metric format lines on stdout)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    body = good_batch_body(now_ms())
    names = ["scan-a1b2c3", "scan-d4e5f6"]

    # When requests arrive for sources nobody configured
    answers = [pipeline.post(name, hubspot_headers(body), body) for name in names]

    # Then they are refused, and the refusal metric is dimensioned by a fixed value, not by the name
    assert [answer.status for answer in answers] == [404, 404]
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    refused = [metric for metric in metrics if "RequestsRefused" in metric]
    assert len(refused) == 2, "no RequestsRefused metric was published"
    assert {metric["source"] for metric in refused}.isdisjoint(names)


# ---------------------------------------------------------------------------------- 10. cold start


@pytest.mark.usefixtures("pipeline")
def test_the_receive_function_never_imports_httpx() -> None:
    # Given a fresh interpreter with the function's code on its path and the function's environment
    script = """
import sys
import receive.app
from devstack.lambda_events import LambdaContext, http_api_event
from webhook_adapter.sources import get_source

get_source("hubspot"), get_source("generic")
answer = receive.app.lambda_handler(http_api_event("GET", "/", headers={}, body=b""), LambdaContext())
assert answer["statusCode"] == 404, answer
print("http clients loaded:", sorted(name for name in sys.modules if name.split(".")[0] in {"httpx", "httpcore"}))
"""
    environment = {**os.environ, "PYTHONPATH": "layers/shared:functions:tests"}

    # When it imports the receive function, builds both sources and answers a request
    result = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", script], cwd=REPO, env=environment, capture_output=True, text=True, check=False
    )

    # Then httpx was never loaded
    assert result.returncode == 0, result.stderr
    assert "http clients loaded: []" in result.stdout.splitlines(), result.stdout


def test_an_unexpected_fault_is_a_json_500_that_names_no_detail(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fault nobody foresaw inside the receive step (its message carries a planted value)
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(PLANTED)

    monkeypatch.setattr("webhook_adapter.receive.Receiver.receive", broken)

    # When a valid batch arrives
    answer = pipeline.post_hubspot([hubspot_event(9, "email", "a@example.com", occurred_at=now_ms())])

    # Then the CRM gets a JSON 500, so it retries, and the answer repeats nothing of the fault
    assert answer.status == 500
    assert answer.body == {
        "error": {"code": "internal_error", "message": "the webhook could not be processed; retry later"}
    }
