"""The Dataverse source through the receive function's handler on moto, delivering to the Sphere stand-in.

Each test posts what Dataverse (or an impostor) sends to ``POST /webhooks/dataverse`` and checks what Dataverse
needs (a 2xx within its 60 s, JSON errors otherwise), what Sphere receives, and what the table records.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3
import pytest

from devstack.lambda_events import LambdaContext, webhook_event
from devstack.pipeline import Answer, Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import VendorRequest
from devstack.vendors.dataverse import FIXTURES, VENDOR, dataverse_context, dataverse_request
from webhook_adapter import runtime
from webhook_adapter.model import ContactField

SECRET = LOCAL_SECRETS["DataverseSecretArn"]


def now_ms() -> int:
    return int(time.time() * 1000)


def key_of(request: VendorRequest) -> str:
    """The adapter's dedup key of a context without a RequestId: correlation, message, record, operation."""
    document = json.loads(request.body)
    parts = ("CorrelationId", "MessageName", "PrimaryEntityId", "OperationId")
    return ":".join(document[part] for part in parts)


def contact_of(request: VendorRequest) -> str:
    document = json.loads(request.body)
    return f"{document['OrganizationId']}:{document['PrimaryEntityId']}"


def recorded(pipeline: Pipeline, request: VendorRequest) -> dict[str, Any]:
    item = pipeline.store.get_event("dataverse", contact_of(request), key_of(request))
    assert item is not None
    return item


def assert_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.body) == {"error"}
    assert answer.body["error"]["code"] == code
    assert VENDOR.refusal(answer.status, answer.headers, json.dumps(answer.body).encode())


# ------------------------------------------------------------------------------------------------ the sample


def test_the_documented_contact_update_with_its_post_image_becomes_one_patch(pipeline: Pipeline) -> None:
    # Given Dataverse's documented contact Update with the mapped columns written and the post-image registered
    request = VENDOR.sample(secret=SECRET, base_url="https://hooks.example.com", now_ms=now_ms())
    expected = VENDOR.sample_expectation()

    # When Dataverse posts it with the key in x-api-key
    answer = pipeline.send(request)

    # Then it is acknowledged with its event id (the system job's OperationId), and queued under its contact
    assert answer.status == 202
    assert VENDOR.acknowledged(answer.status, answer.headers, json.dumps(answer.body).encode())
    assert answer.body == {"accepted": list(expected.event_ids), "duplicates": []}
    assert contact_of(request) == expected.contact_id

    # And, once delivered, Sphere received exactly the expected PATCH for the customer in the customer-id column
    pipeline.drain()
    assert [patch.body for patch in pipeline.standin.patches(expected.customer_id)] == [expected.patch]
    item = recorded(pipeline, request)
    assert item["status"] == "delivered"
    assert item["event_id"] == expected.event_ids[0]
    assert item["customer_id"] == SEED_INDIVIDUAL_ID


def test_a_retried_delivery_is_a_duplicate_and_sends_nothing_more(pipeline: Pipeline) -> None:
    # Given the sample received and delivered
    request = VENDOR.sample(secret=SECRET, base_url="https://hooks.example.com", now_ms=now_ms())
    assert pipeline.send(request).status == 202
    pipeline.drain()

    # When Dataverse's system job retries the same delivery (same CorrelationId and OperationId)
    again = pipeline.send(request)

    # Then it is acknowledged as a duplicate, nothing is queued, and Sphere got one PATCH in all
    assert again.status == 202
    assert again.body == {"accepted": [], "duplicates": list(VENDOR.sample_expectation().event_ids)}
    assert pipeline.queued_messages() == 0
    assert len(pipeline.standin.patches(SEED_INDIVIDUAL_ID)) == 1


def test_the_documented_sample_of_a_name_change_is_acknowledged_and_recorded_ignored(pipeline: Pipeline) -> None:
    # Given Microsoft's sample as documented: an Update of firstname only (no mapped column)
    request = dataverse_request((FIXTURES / "contact-update.json").read_bytes(), secret=SECRET)

    # When it is posted
    answer = pipeline.send(request)

    # Then it is a 2xx (so Dataverse does not retry), settled ignored, recorded, and nothing is queued
    assert answer.status == 202
    assert answer.body["settled"] == {"ignored": ["4af10637-4ea2-e711-8122-000d3aa2331c"]}
    assert pipeline.queued_messages() == 0
    assert recorded(pipeline, request)["status"] == "ignored"


def test_an_account_update_is_ignored(pipeline: Pipeline) -> None:
    # Given a step on another entity
    request = VENDOR.irrelevant(event_id=11, occurred_at_ms=now_ms(), secret=SECRET, base_url="")

    # When it is posted, Then it is acknowledged and recorded ignored, never queued
    answer = pipeline.send(request)
    assert answer.status == 202
    assert list(answer.body["settled"]) == ["ignored"]
    assert pipeline.queued_messages() == 0
    assert recorded(pipeline, request)["status"] == "ignored"


def test_a_context_over_256_kb_is_recorded_incomplete(pipeline: Pipeline) -> None:
    # Given a contact Update Dataverse stripped of its Target and images (x-ms-dynamics-msg-size-exceeded)
    document = dataverse_context(5, [], operation=12, occurred_at_ms=now_ms())
    document["InputParameters"], document["PostEntityImages"] = [], []
    request = dataverse_request(document, secret=SECRET, size_exceeded=True)

    # When it is posted
    answer = pipeline.send(request)

    # Then it is acknowledged, nothing is queued, and the event is recorded incomplete with why
    assert answer.status == 202
    assert list(answer.body["settled"]) == ["incomplete"]
    assert pipeline.queued_messages() == 0
    item = recorded(pipeline, request)
    assert item["status"] == "incomplete"
    assert "256 KB" in item["reason"]


def test_a_change_in_a_new_context_is_delivered_with_exactly_its_values(pipeline: Pipeline) -> None:
    # Given the kit's change of contact 8: the customer id, an email, and a cleared mobile phone
    values = {
        ContactField.CUSTOMER_ID: SEED_INDIVIDUAL_ID,
        ContactField.EMAIL: "mary.jackson@example.com",
        ContactField.MOBILE_PHONE: None,
    }
    request = VENDOR.change(8, values, event_id=21, occurred_at_ms=now_ms(), secret=SECRET, base_url="")

    # When it is posted and delivered
    assert pipeline.send(request).status == 202
    pipeline.drain()

    # Then Sphere gets the email for that customer
    assert [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)] == [
        {"email": "mary.jackson@example.com"}
    ]
    assert contact_of(request) == VENDOR.contact_id(8)


# ------------------------------------------------------------------------------------------------ the key


def test_the_key_as_webhook_key_in_the_code_query_parameter_is_accepted(pipeline: Pipeline) -> None:
    # Given the sample authenticated the "WebhookKey" way: ?code=<key>, no header
    sample = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    headers = {name: value for name, value in sample.headers.items() if name != "x-api-key"}
    request = sample.replace(headers=headers, query=f"code={SECRET}")

    # When it is posted, Then it is accepted
    answer = pipeline.send(request)
    assert answer.status == 202
    assert answer.body["accepted"] == list(VENDOR.sample_expectation().event_ids)


def test_each_forged_request_is_answered_401_and_recorded(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    sample = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    seen: set[str] = set()
    for name, forged in VENDOR.forged(sample).items():
        with subtests.test(name):
            # Given a request without the configured key
            # Then it is refused in JSON naming no secret, recorded once with a digest of its body, nothing queued
            answer = pipeline.refuses(forged, 401, "invalid_credentials", seen=seen)
            assert SECRET not in json.dumps(answer.body)
    assert pipeline.find_event("dataverse", key_of(sample)) is None


def test_a_rotated_key_accepts_either_value(pipeline: Pipeline) -> None:
    # Given the secret holds the old and the new key, whitespace-separated
    boto3.client("secretsmanager").put_secret_value(
        SecretId=os.environ["DATAVERSE_SECRET_ID"], SecretString=f"{SECRET}\n new-dataverse-webhook-key"
    )
    runtime.reset()

    # When Dataverse sends the new key
    sample = VENDOR.sample(secret="new-dataverse-webhook-key", base_url="", now_ms=now_ms())

    # Then it is accepted
    assert pipeline.send(sample).status == 202


# ------------------------------------------------------------------------------------------------ bad bodies


def test_each_malformed_body_is_answered_400_and_recorded(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    seen: set[str] = set()
    for name, malformed in VENDOR.malformed(secret=SECRET, base_url="", occurred_at_ms=now_ms()).items():
        with subtests.test(name):
            # Given an authentic request whose body is not a usable context
            # Then it is a 400 in JSON, recorded once as refused, and nothing is queued
            pipeline.refuses(malformed, 400, "invalid_payload", seen=seen)


def test_another_content_type_is_answered_415(pipeline: Pipeline) -> None:
    # Given the sample posted as form data
    sample = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    request = sample.replace(headers={**sample.headers, "Content-Type": "application/x-www-form-urlencoded"})

    # Then it is refused as the wrong media type
    assert_error(pipeline.send(request), 415, "unsupported_media_type")


def test_a_charset_parameter_is_accepted(pipeline: Pipeline) -> None:
    sample = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    request = sample.replace(headers={**sample.headers, "Content-Type": "application/json; charset=utf-8"})
    assert pipeline.send(request).status == 202


def test_without_a_customer_id_column_the_source_answers_500_misconfigured(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployment left DataverseCustomerIdColumn empty
    monkeypatch.setenv("DATAVERSE_CUSTOMER_ID_COLUMN", "")
    runtime.reset()

    # When Dataverse posts, Then the answer is a 500 naming the source, never a value (Dataverse retries)
    event = webhook_event("dataverse", dict(VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms()).headers), b"{}")
    response = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"] == {
        "code": "misconfigured",
        "message": "the dataverse source is not configured correctly",
    }
