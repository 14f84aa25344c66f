"""The Zoho CRM source through the receive function's handler on moto, delivering to the Sphere stand-in.

Each test posts what Zoho (or an impostor) sends to ``POST /webhooks/zoho``: a workflow rule webhook (the record's
values, ``?token=``) or a Notification API callback (ids only, the channel's token echoed in the body). It checks
what Zoho needs (a 2xx; JSON errors otherwise), what Sphere receives, what is queued and what the table records.
A notification's ids are read from Zoho by deliver: here only what receive queues for that read is checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.pipeline import Answer, Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors.zoho import CHANNEL_ID, FIXTURES, VENDOR, notification, webhook_request
from webhook_adapter import runtime
from webhook_adapter.sources.base import canonical_json

TOKEN = LOCAL_SECRETS["ZohoSecretArn"]
NOTIFICATION_SAMPLE = FIXTURES / "notification-update.json"


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.body) == {"error"}
    assert answer.body["error"]["code"] == code
    assert VENDOR.refusal(answer.status, answer.headers, json.dumps(answer.body).encode())


def documented_notification(path: Path, **changes: object) -> bytes:
    document = json.loads(path.read_text(encoding="utf-8")) | {"token": TOKEN} | changes
    return json.dumps(document).encode()


def workflow_key(body: Mapping[str, object]) -> str:
    """The dedup key of a workflow body: its record id and a digest of the canonical body."""
    return f"{body['id']}:{hashlib.sha256(canonical_json(body).encode()).hexdigest()}"


def queued_bodies(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The messages on the queue (left there: visible again at once)."""
    messages = pipeline.sqs.receive_message(
        QueueUrl=pipeline.resources.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


# ------------------------------------------------------------------------------------------------ workflow webhooks


def test_the_workflow_sample_becomes_the_contacts_patch_without_a_crm_read(pipeline: Pipeline) -> None:
    assert pipeline.standin is not None
    # Given the README's workflow webhook body, as Zoho posts it to the URL with ?token=
    request = VENDOR.sample(secret=TOKEN, base_url="", now_ms=now_ms())
    expected = VENDOR.sample_expectation()
    assert json.loads(request.body)["Mobile"] == ""

    # When Zoho posts it
    answer = pipeline.send(request)

    # Then it is acknowledged with its event id (record id @ Modified_Time) and queued under the record
    assert answer.status == 202, answer.body
    assert answer.body == {"accepted": list(expected.event_ids), "duplicates": []}
    assert pipeline.queued_messages() == expected.queued == 1

    # And once delivered, Sphere got the body's values (Mobile "" cleared nothing Sphere holds) and it is delivered
    pipeline.drain()
    assert [patch.body for patch in pipeline.standin.patches(expected.customer_id)] == [expected.patch]
    item = pipeline.event("zoho", workflow_key(json.loads(request.body)))
    assert item["status"] == "delivered"
    assert item["contact_id"] == expected.contact_id


def test_a_resent_identical_workflow_body_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given the sample received and delivered
    request = VENDOR.sample(secret=TOKEN, base_url="", now_ms=now_ms())
    first = pipeline.send(request)
    pipeline.drain()

    # When Zoho sends the same body again
    again = pipeline.send(request)

    # Then it is acknowledged as a duplicate and nothing is queued
    assert again.status == 202
    assert again.body == {"accepted": [], "duplicates": first.body["accepted"]}
    assert pipeline.queued_messages() == 0


def test_a_form_data_workflow_webhook_with_the_token_in_the_header_is_delivered(pipeline: Pipeline) -> None:
    assert pipeline.standin is not None
    # Given a workflow webhook sending form parameters, its token in the X-Zoho-Webhook-Token custom header
    body = b"id=5725767000000000042&Modified_Time=2026-11-26T10%3A24%3A30%2B05%3A30&Mailing_Street=1+Lake+St"
    body += b"&Mailing_City=Oak+Park&Mailing_State=IL&Mailing_Zip=60301&Mailing_Country=United+States&Email="
    body += b"&Sphere_Customer_Id=customer_f31121c389624d3697cbf3ea8830b7a4"
    request = webhook_request(body, token=None, content_type="application/x-www-form-urlencoded")
    request = request.replace(headers={**request.headers, "X-Zoho-Webhook-Token": TOKEN})

    # When Zoho posts it
    answer = pipeline.send(request)

    # Then it is accepted and Sphere gets the address (the blank Email clears nothing Sphere would be sent)
    assert answer.status == 202, answer.body
    assert answer.body["accepted"] == ["5725767000000000042@2026-11-26T04:54:30.000Z"]
    pipeline.drain()
    patches = [patch.body for patch in pipeline.standin.patches("customer_f31121c389624d3697cbf3ea8830b7a4")]
    address = {"line1": "1 Lake St", "city": "Oak Park", "state": "IL", "postalCode": "60301", "country": "USA"}
    assert patches == [{"address": address}]


def test_a_workflow_body_without_a_readable_time_is_ordered_by_arrival_and_says_so(pipeline: Pipeline) -> None:
    # Given a workflow body whose Modified_Time merge field rendered in a form the adapter cannot read
    body = {
        "id": "5725767000000000043",
        "Modified_Time": "26/11/2026 10:24 AM",
        "Email": "ada@example.com",
        "Sphere_Customer_Id": SEED_INDIVIDUAL_ID,
    }
    start = now_ms()

    # When Zoho posts it
    answer = pipeline.send(webhook_request(json.dumps(body).encode(), token=TOKEN))

    # Then it is accepted (not refused: a refused webhook is lost), timed at its arrival, with a note saying so
    assert answer.status == 202, answer.body
    assert len(answer.body["accepted"]) == 1
    pipeline.drain()
    item = pipeline.event("zoho", workflow_key(body))
    assert start - 1000 <= int(item["occurred_at"]) <= now_ms()
    assert "ordered by its arrival" in item["reason"]
    assert item["status"] == "delivered"


def test_a_workflow_body_without_a_mapped_field_is_ignored(pipeline: Pipeline) -> None:
    # Given a workflow body holding only fields the adapter does not map
    body = {"id": "5725767000000000044", "First_Name": "Ada", "Lead_Source": "Web"}

    # When Zoho posts it, Then it is acknowledged and recorded ignored, never queued
    answer = pipeline.send(webhook_request(json.dumps(body).encode(), token=TOKEN))
    assert answer.status == 202
    assert len(answer.body["settled"]["ignored"]) == 1
    assert pipeline.queued_messages() == 0
    assert pipeline.event("zoho", workflow_key(body))["reason"] == "no mapped field in the webhook body"


# ------------------------------------------------------------------------------------------------ notifications


def test_the_documented_notification_is_queued_for_a_read_of_the_record(pipeline: Pipeline) -> None:
    # Given Zoho's documented callback (an update of contact 1000000034044) echoing the channel's token
    body = documented_notification(NOTIFICATION_SAMPLE)
    request = webhook_request(body, token=None)

    # When Zoho posts it to the channel's notify URL
    answer = pipeline.send(request)

    # Then it is acknowledged with its event id (channel, operation, id, server_time) and queued to be read
    assert answer.status == 202, answer.body
    event_id = f"{CHANNEL_ID}:update:1000000034044:1387184949186"
    assert answer.body == {"accepted": [event_id], "duplicates": []}
    [message] = queued_bodies(pipeline)
    [event] = message["events"]
    assert event["key"] == event_id
    assert event["read"] == "thin"
    assert event["changes"] == {}
    assert event["contact_id"] == "1000000034044"
    assert event["occurred_at"] == 1387184949186


def test_a_notification_batch_refuses_a_malformed_id_alone(pipeline: Pipeline) -> None:
    # Given an insert notification of two contacts and one id that is no record id
    at = now_ms()
    request = notification(
        ["5725767000000000051", "not-an-id", 5725767000000000052], token=TOKEN, operation="insert", server_time=at
    )

    # When it is posted
    answer = pipeline.send(request)

    # Then both contacts are queued, the malformed id is refused on its own without echoing it
    assert answer.status == 202, answer.body
    assert answer.body["accepted"][0] == f"{CHANNEL_ID}:insert:5725767000000000051:{at}"
    assert answer.body["accepted"][2] == f"{CHANNEL_ID}:insert:5725767000000000052:{at}"
    [refused_key] = answer.body["settled"]["refused"]
    assert pipeline.queued_messages() == 2
    refused = pipeline.event("zoho", refused_key)
    assert refused["status"] == "refused"
    assert "not-an-id" not in refused["reason"]


def test_a_notification_of_another_module_is_ignored(pipeline: Pipeline) -> None:
    # Given the kit's notification about a Deals record
    request = VENDOR.irrelevant(event_id=77, occurred_at_ms=now_ms(), secret=TOKEN, base_url="")

    # When it is posted, Then it is acknowledged and recorded ignored, never queued
    answer = pipeline.send(request)
    assert answer.status == 202
    [key] = answer.body["settled"]["ignored"]
    assert pipeline.queued_messages() == 0
    assert pipeline.event("zoho", key)["reason"] == "Deals records are not contacts"


def test_a_delete_notification_is_ignored(pipeline: Pipeline) -> None:
    # Given a delete of a contact: nothing to send to Sphere
    request = notification(["5725767000000000053"], token=TOKEN, operation="delete", server_time=now_ms())

    # When it is posted, Then it is acknowledged, recorded ignored and never queued
    answer = pipeline.send(request)
    assert answer.status == 202
    assert list(answer.body["settled"]) == ["ignored"]
    assert pipeline.queued_messages() == 0


def test_a_retried_notification_is_queued_once(pipeline: Pipeline) -> None:
    # Given the documented notification received (its record not read yet: it waits on the queue)
    request = webhook_request(documented_notification(NOTIFICATION_SAMPLE), token=None)
    first = pipeline.send(request)

    # When Zoho sends it again, Then it is acknowledged with the same event id and the queue holds it once
    again = pipeline.send(request)
    assert again.status == 202
    assert again.body["accepted"] == first.body["accepted"]
    assert pipeline.queued_messages() == 1


def test_a_retried_ignored_notification_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given a notification of another module, recorded ignored on arrival
    request = VENDOR.irrelevant(event_id=78, occurred_at_ms=now_ms(), secret=TOKEN, base_url="")
    first = pipeline.send(request)

    # When Zoho sends it again, Then it is a duplicate
    again = pipeline.send(request)
    assert again.status == 202
    assert again.body == {"accepted": [], "duplicates": first.body["settled"]["ignored"]}


# ------------------------------------------------------------------------------------------------ trust


def test_each_forged_request_is_refused_and_recorded(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    sample = VENDOR.sample(secret=TOKEN, base_url="", now_ms=now_ms())
    seen: set[str] = set()
    for name, forged in VENDOR.forged(sample).items():
        with subtests.test(name):
            # Given a request without the configured token, or a notification of another channel
            status, code = (403, "forbidden_sender") if "another channel" in name else (401, "invalid_credentials")
            # Then it is refused in JSON naming no secret, recorded once with a digest of its body, nothing queued
            answer = pipeline.refuses(forged, status, code, seen=seen)
            assert TOKEN not in json.dumps(answer.body)
    assert pipeline.queued_messages() == 0


def test_a_rotated_token_accepts_either_value_for_webhooks_and_notifications(pipeline: Pipeline) -> None:
    # Given the secret holds the old and the new token, whitespace-separated
    boto3.client("secretsmanager").put_secret_value(
        SecretId=os.environ["ZOHO_SECRET_ID"], SecretString=f"{TOKEN}\n new-zoho-token"
    )
    runtime.reset()
    at = now_ms()

    # When a webhook comes with the new token and a notification echoes the old one
    webhook = VENDOR.change(3, {}, event_id=31, occurred_at_ms=at, secret="new-zoho-token", base_url="")
    notified = notification(["5725767000000000054"], token=TOKEN, server_time=at)

    # Then both are accepted
    assert pipeline.send(webhook).status == 202
    assert pipeline.send(notified).body["accepted"] == [f"{CHANNEL_ID}:update:5725767000000000054:{at}"]


# ------------------------------------------------------------------------------------------------ bad bodies


def test_each_malformed_body_is_answered_400_and_recorded(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    seen: set[str] = set()
    for name, malformed in VENDOR.malformed(secret=TOKEN, base_url="", occurred_at_ms=now_ms()).items():
        with subtests.test(name):
            # Given an authentic request whose body Zoho's shapes do not allow
            # Then it is a 400 in JSON, recorded once as refused, and nothing is queued
            pipeline.refuses(malformed, 400, "invalid_payload", seen=seen)


def test_another_content_type_is_answered_415(pipeline: Pipeline) -> None:
    sample = VENDOR.sample(secret=TOKEN, base_url="", now_ms=now_ms())
    request = sample.replace(headers={**sample.headers, "Content-Type": "text/plain"})
    assert_error(pipeline.send(request), 415, "unsupported_media_type")
