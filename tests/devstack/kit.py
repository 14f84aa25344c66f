"""A kit for tests that drive the deliver handler: HubSpot changes, their keys, hand-built SQS batches.

Shared by the deliver suites so each builds requests, clocks and dedup keys the same way.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from devstack.crm import hubspot_event
from devstack.lambda_events import LambdaContext, sqs_event, sqs_record
from devstack.pipeline import Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.sphere_standin import RecordedRequest

__all__ = [
    "SOURCE",
    "TOKEN",
    "HubSpotEvent",
    "assert_patch",
    "change",
    "contact",
    "fail_once",
    "history",
    "invoke_deliver",
    "key_of",
    "log_to_stdout",
    "now_ms",
    "post",
    "queue_arn",
    "received_records",
    "record_holding",
    "rotate_stored_token",
    "status_of",
    "stored",
]

SOURCE = "hubspot"
TOKEN = LOCAL_SECRETS["SphereTokenSecretArn"]
"""The Sphere API key the local stack stores in Secrets Manager (and the stand-in accepts)."""

_event_ids = itertools.count(100_000)

type HubSpotEvent = dict[str, Any]


def now_ms() -> int:
    """The wall clock in epoch milliseconds (CRM change times are relative to it)."""
    return int(time.time() * 1000)


def change(object_id: int, prop: str, value: str | None, *, at: int) -> HubSpotEvent:
    """A HubSpot property change with its own event id."""
    return hubspot_event(object_id, prop, value, occurred_at=at, event_id=next(_event_ids))


def contact(object_id: int, *, at: int, **properties: str) -> list[HubSpotEvent]:
    """One change per HubSpot property, one millisecond apart (in the order given)."""
    return [change(object_id, prop, value, at=at + offset) for offset, (prop, value) in enumerate(properties.items())]


def key_of(event: HubSpotEvent) -> str:
    """The event's dedup key: HubSpot's event identity."""
    return f"{event['portalId']}:{event['objectId']}:{event['propertyName']}:{event['occurredAt']}:{event['eventId']}"


def post(pipeline: Pipeline, *events: HubSpotEvent) -> None:
    """HubSpot posts one signed batch; the receive handler accepts it."""
    answer = pipeline.post_hubspot(list(events))
    assert answer.status == 202, answer.body


def stored(pipeline: Pipeline, event: HubSpotEvent) -> dict[str, Any]:
    """The event's record."""
    return pipeline.event(SOURCE, key_of(event))


def status_of(pipeline: Pipeline, *events: HubSpotEvent) -> list[str]:
    """Each event's recorded status."""
    return [stored(pipeline, event)["status"] for event in events]


def history(item: dict[str, Any]) -> list[str]:
    """The statuses an event went through."""
    return [entry["status"] for entry in item["history"]]


def assert_patch(request: RecordedRequest, customer_id: str, body: dict[str, Any], *, token: str = TOKEN) -> None:
    """One PATCH of Sphere's customer-update endpoint, with this body and bearer token."""
    assert (request.method, request.path) == ("PATCH", f"/v2/customer/{customer_id}")
    assert request.headers["authorization"] == f"Bearer {token}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == body


def queue_arn(pipeline: Pipeline) -> str:
    """The changes queue's ARN (SQS records name it)."""
    attributes = pipeline.sqs.get_queue_attributes(QueueUrl=pipeline.resources.queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def received_records(pipeline: Pipeline, *, receive_count: int | None = None) -> list[dict[str, Any]]:
    """Receive what is queued, as the event source mapping does, and shape it as SQS event records."""
    answer = pipeline.sqs.receive_message(
        QueueUrl=pipeline.resources.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )
    arn = queue_arn(pipeline)
    return [
        sqs_record(
            message["Body"],
            queue_arn=arn,
            group_id=message["Attributes"]["MessageGroupId"],
            receive_count=receive_count or int(message["Attributes"]["ApproximateReceiveCount"]),
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            dedup_id=message["Attributes"]["MessageDeduplicationId"],
            sequence_number=message["Attributes"]["SequenceNumber"],
        )
        for message in answer.get("Messages", [])
    ]


def record_holding(records: list[dict[str, Any]], event: HubSpotEvent) -> dict[str, Any]:
    """The SQS record whose contact change carries ``event``."""
    for record in records:
        if key_of(event) in {queued["key"] for queued in json.loads(record["body"])["events"]}:
            return record
    raise LookupError(key_of(event))


def invoke_deliver(pipeline: Pipeline, records: list[dict[str, Any]]) -> set[str]:
    """Invoke the deliver handler with one hand-built batch; the message ids it reports failed."""
    response = pipeline.deliver_handler(sqs_event(records), LambdaContext(function_name="deliver"))
    return {failure["itemIdentifier"] for failure in response["batchItemFailures"]}


def rotate_stored_token(token: str) -> None:
    """What a rotation does to the Sphere API key in Secrets Manager."""
    boto3.client("secretsmanager").put_secret_value(SecretId=os.environ["SPHERE_TOKEN_SECRET_ID"], SecretString=token)


def fail_once[**P, R](original: Callable[P, R], error: Exception) -> Callable[P, R]:
    """``original``, except that its first call raises ``error`` (a transient AWS failure)."""
    calls = 0

    def flaky(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise error
        return original(*args, **kwargs)

    return flaky


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is now (pytest swaps it for every test phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def log_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send the functions' JSON log lines (Powertools' handler, bound to ``sys.stdout`` at import) to capsys."""
    import deliver.app  # noqa: F401 - creates the service logger and its stdout handler

    service = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    streams = [handler for handler in service.handlers if isinstance(handler, logging.StreamHandler)]
    assert streams, "the Powertools logger has no stream handler"
    for handler in streams:
        monkeypatch.setattr(handler, "stream", _CurrentStdout())
