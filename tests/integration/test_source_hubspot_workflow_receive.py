"""HubSpot workflow webhooks through the receive function's handler on moto, delivered to the Sphere stand-in."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from devstack.pipeline import PUBLIC_BASE_URL, Answer, Pipeline
from devstack.vendors import vendor
from devstack.vendors.hubspot_workflow import record, signed_request
from webhook_adapter import runtime
from webhook_adapter.model import ContactField

KIT = vendor("hubspot-workflow")
SECRET = KIT.local_secret


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_json_error(answer: Answer, status: int, code: str) -> str:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.body) == {"error"}
    assert answer.body["error"]["code"] == code
    message: str = answer.body["error"]["message"]
    return message


def test_the_documented_sample_becomes_the_expected_patch_and_a_retry_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given the contact sample (tests/fixtures/hubspot-workflow/contact-objects-api.json), signed by the app
    sample = KIT.sample(secret=SECRET, base_url=PUBLIC_BASE_URL, now_ms=now_ms())
    expected = KIT.sample_expectation()

    # When the workflow posts it
    answer = pipeline.send(sample)

    # Then it is accepted with its readable event id, and Sphere gets exactly the expected PATCH
    assert answer.status == 202
    assert answer.body == {"accepted": list(expected.event_ids), "duplicates": []}
    pipeline.drain()
    assert [patch.body for patch in pipeline.standin.patches(expected.customer_id)] == [expected.patch]
    [item] = pipeline.store.contact_history(KIT.source, expected.contact_id)
    assert item["event_id"] == expected.event_ids[0]
    assert item["customer_id"] == expected.customer_id

    # When HubSpot retries the same body (a 5xx or a timeout on its side)
    again = pipeline.send(KIT.sample(secret=SECRET, base_url=PUBLIC_BASE_URL, now_ms=now_ms()))

    # Then it is a duplicate and Sphere is not called again
    assert again.status == 202
    assert again.body == {"accepted": [], "duplicates": list(expected.event_ids)}
    pipeline.drain()
    assert len(pipeline.standin.patches(expected.customer_id)) == 1


def test_a_change_clears_what_is_sent_empty_and_keeps_what_is_absent(pipeline: Pipeline) -> None:
    # Given a contact delivered with an email and a mobile phone
    first = KIT.change(
        7,
        {
            ContactField.CUSTOMER_ID: KIT.sample_expectation().customer_id,
            ContactField.EMAIL: "ada@example.com",
            ContactField.MOBILE_PHONE: "+1 312 555 0143",
        },
        event_id=1,
        occurred_at_ms=now_ms() - 2000,
        secret=SECRET,
        base_url=PUBLIC_BASE_URL,
    )
    assert pipeline.send(first).status == 202
    pipeline.drain()

    # When the workflow later sends a new email only
    second = KIT.change(
        7,
        {ContactField.EMAIL: "ada.lovelace@example.com"},
        event_id=2,
        occurred_at_ms=now_ms() - 1000,
        secret=SECRET,
        base_url=PUBLIC_BASE_URL,
    )
    answer = pipeline.send(second)
    pipeline.drain()

    # Then Sphere gets the new email, under the customer id the contact already had
    assert answer.status == 202
    patches = pipeline.standin.patches(KIT.sample_expectation().customer_id)
    assert [patch.body for patch in patches] == [
        {"email": "ada@example.com", "phone": "+13125550143"},
        {"email": "ada.lovelace@example.com"},
    ]


def test_a_record_without_a_mapped_property_is_acknowledged_and_recorded_ignored(pipeline: Pipeline) -> None:
    # Given a record carrying only unmapped properties
    request = KIT.irrelevant(event_id=31, occurred_at_ms=now_ms(), secret=SECRET, base_url=PUBLIC_BASE_URL)

    # When posted
    answer = pipeline.send(request)

    # Then HubSpot gets a 2xx (it would not retry a 4xx: the answer must not look like a failure) and it is recorded
    assert answer.status == 202
    [event_id] = answer.body["accepted"]
    assert answer.body["settled"] == {"ignored": [event_id]}
    assert KIT.acknowledged(answer.status, answer.headers, json.dumps(answer.body).encode())
    [item] = pipeline.store.contact_history(KIT.source, "31")
    assert item["status"] == "ignored"
    assert pipeline.queued_messages() == 0


def test_forged_requests_are_refused_401_and_recorded(pipeline: Pipeline) -> None:
    # Given the sample forged each way the kit knows (another secret, no signature, a changed body, an API key)
    start = now_ms()
    forged = KIT.forged(KIT.sample(secret=SECRET, base_url=PUBLIC_BASE_URL, now_ms=start))

    # When each is posted
    for name, request in forged.items():
        answer = pipeline.send(request)

        # Then it is a 401 with a JSON error HubSpot will not retry
        message = assert_json_error(answer, 401, "invalid_signature")
        assert KIT.refusal(answer.status, answer.headers, json.dumps(answer.body).encode()) == message, name

    # And each is recorded refused with a digest of its body, and nothing is queued
    records = pipeline.refused_requests("hubspot-workflow", start)
    assert sorted(item["body_sha256"] for item in records) == sorted(
        hashlib.sha256(request.body).hexdigest() for request in forged.values()
    )
    assert pipeline.queued_messages() == 0


def test_malformed_authentic_bodies_are_refused_400_and_recorded(pipeline: Pipeline) -> None:
    # Given signed bodies that are not one readable record
    start = now_ms()
    malformed = KIT.malformed(secret=SECRET, base_url=PUBLIC_BASE_URL, occurred_at_ms=start)

    # When each is posted
    for request in malformed.values():
        answer = pipeline.send(request)

        # Then it is a 400 naming the problem
        assert_json_error(answer, 400, "invalid_payload")

    # And each is recorded
    assert len(pipeline.refused_requests("hubspot-workflow", start)) == len(malformed)


@pytest.mark.parametrize(("headers", "query"), [({"X-Api-Key": SECRET}, ""), ({}, f"X-Api-Key={SECRET}")])
def test_api_key_mode_accepts_the_key_as_header_or_query_and_refuses_another(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], query: str
) -> None:
    # Given the source set to API keys (HubSpotWorkflowAuth=api_key), the key being the source's secret
    monkeypatch.setenv("HUBSPOT_WORKFLOW_AUTH", "api_key")
    runtime.reset()
    body = json.dumps(record(8, {"email": "ada@example.com"}, updated_at_ms=now_ms())).encode()
    plain = {"Content-Type": "application/json", **headers}

    # When the workflow posts with its key, and someone posts with another key
    accepted = pipeline.post(KIT.source, plain, body, query=query)
    refused = pipeline.post(
        KIT.source, {"Content-Type": "application/json", "X-Api-Key": "not-the-key"}, body, query=query
    )

    # Then the first is accepted; the second is refused, even when the right key is also in the query
    assert accepted.status == 202
    assert assert_json_error(refused, 401, "invalid_credentials") == "X-Api-Key API key does not match"

    # And a request signed as the app is no longer enough
    signed = signed_request(body, secret=SECRET, base_url=PUBLIC_BASE_URL)
    assert pipeline.send(signed).status == 401
