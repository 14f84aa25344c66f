"""Every file in ``events/`` works through its handler, as ``sam local invoke -e`` and console tests use them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.lambda_events import LambdaContext
from devstack.pipeline import Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.sign_events import EVENTS_DIR, LOCAL_BASE_URL
from devstack.sphere_standin import SEED_INDIVIDUAL_ID, SEED_KYC_SUBMITTED_ID
from webhook_adapter import runtime
from webhook_adapter.relay import RELAY_SOURCES
from webhook_adapter.signatures import sign_hubspot_v3, sign_standard_webhook
from webhook_adapter.sources import SOURCE_MODULES, get_source
from webhook_adapter.sources.base import WebhookRequest

REPLAY_FORMS = ("events", "status", "contact", "dead-letters")
"""The replay function's forms, one ready test event each (``events/replay-<form>.json``)."""


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return event


def resign(event: dict[str, Any], now: float) -> dict[str, Any]:
    """The same request signed now (what ``make events`` does before a ``sam local invoke``)."""
    headers, body = event["headers"], event["body"].encode()
    if "x-hubspot-signature-v3" in headers:
        headers["x-hubspot-request-timestamp"] = str(int(now * 1000))
        headers["x-hubspot-signature-v3"] = sign_hubspot_v3(
            secret=LOCAL_SECRETS["HubSpotSecretArn"],
            method="POST",
            uri=f"{LOCAL_BASE_URL}{event['rawPath']}",
            body=body,
            timestamp=headers["x-hubspot-request-timestamp"],
        )
    else:
        headers["webhook-timestamp"] = str(int(now))
        headers["webhook-signature"] = sign_standard_webhook(
            secret=LOCAL_SECRETS["GenericSecretArn"],
            msg_id=headers["webhook-id"],
            timestamp=headers["webhook-timestamp"],
            body=body,
        )
    return event


@pytest.fixture
def local_urls(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """The pipeline configured with ``make run``'s public URL, the one the events are signed for."""
    monkeypatch.setenv("PUBLIC_BASE_URL", LOCAL_BASE_URL)
    runtime.reset()
    return pipeline


@pytest.mark.parametrize(("name", "source"), [("receive-hubspot.json", "hubspot"), ("receive-generic.json", "generic")])
def test_each_receive_event_is_signed_consistently(name: str, source: str, local_urls: Pipeline) -> None:
    # Given a committed API Gateway event
    event = load(name)
    headers = event["headers"]
    stamp = int(headers.get("x-hubspot-request-timestamp", 0)) / 1000 or int(headers.get("webhook-timestamp", 0))

    # When its signature is checked at the moment it was signed
    request = WebhookRequest(
        source=source,
        method="POST",
        url=f"{LOCAL_BASE_URL}{event['rawPath']}",
        headers=headers,
        body=event["body"].encode(),
        received_at=stamp,
    )

    # Then it is authentic: the body was not edited after signing
    get_source(source).verify(request, [LOCAL_SECRETS[f"{'HubSpot' if source == 'hubspot' else 'Generic'}SecretArn"]])


@pytest.mark.parametrize(
    ("name", "customer"),
    [("receive-hubspot.json", SEED_INDIVIDUAL_ID), ("receive-generic.json", SEED_KYC_SUBMITTED_ID)],
)
def test_each_receive_event_goes_through_the_pipeline(name: str, customer: str, local_urls: Pipeline) -> None:
    # Given a committed event, signed afresh as `make events` does
    event = resign(load(name), time.time())

    # When the receive function is invoked with it, and its change delivered
    response = local_urls.receive_handler(event, LambdaContext(function_name="receive"))
    local_urls.drain()

    # Then it is accepted and its customer updated at Sphere
    assert response["statusCode"] == 202, response["body"]
    assert json.loads(response["body"])["accepted"]
    assert len(local_urls.standin.patches(customer)) == 1


def test_the_sqs_event_is_delivered(pipeline: Pipeline) -> None:
    # Given the committed SQS event for the deliver function
    event = load("deliver-sqs.json")

    # When the deliver function is invoked with it
    response = pipeline.deliver_handler(event, LambdaContext(function_name="deliver"))

    # Then no message failed and Sphere received the email
    assert response == {"batchItemFailures": []}
    assert [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)] == [
        {"email": "katherine.johnson@example.com"}
    ]


def test_every_entry_point_has_an_event() -> None:
    # Given the template's functions and the files in events/
    names = {path.name for path in Path(EVENTS_DIR).glob("*.json")}

    # Then each entry point (every source's route, every relay source's EventBridge rule, the queue, each replay
    # form) has a ready event
    routes = {f"receive-{source}.json" for source in SOURCE_MODULES}
    relays = {f"relay-{source}.json" for source in RELAY_SOURCES}
    replays = {f"replay-{form}.json" for form in REPLAY_FORMS}
    assert names == routes | relays | replays | {"deliver-sqs.json"}


def test_the_relay_event_goes_through_the_pipeline(pipeline: Pipeline) -> None:
    # Given the committed EventBridge event of Salesforce's Event Relay (no signature: it does not age)
    event = load("relay-salesforce-cdc.json")

    # When the receive function is invoked with it, and its change delivered
    result = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    pipeline.drain()

    # Then it is accepted and its customer's email updated at Sphere
    assert len(result["accepted"]) == 1
    assert [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)] == [
        {"email": "katherine.johnson@example.com"}
    ]
