"""The Attio source through the receive function's handler on moto, delivering to the Sphere stand-in.

Each test posts what Attio (or an impostor) sends to ``POST /webhooks/attio`` and checks what Attio needs (a 2xx,
JSON errors otherwise), what Sphere receives, and what the table records. Attio's events name the record only:
deliver reads each person from Attio's records API (the CRM stand-in here), then sends what it holds.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.crm_standin import CrmStandIn
from devstack.lambda_events import LambdaContext, webhook_event
from devstack.pipeline import Answer, Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.vendors import VendorRequest
from devstack.vendors.attio import (
    COMPANIES_OBJECT_ID,
    VENDOR,
    WORKSPACE_ID,
    record_event,
    signed_request,
    webhook_body,
)
from webhook_adapter import runtime

SECRET = LOCAL_SECRETS["AttioSecretArn"]
PERSON = "0f1e2d3c-0000-4000-8000-0000000000b1"
OTHER_PERSON = "0f1e2d3c-0000-4000-8000-0000000000b2"


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(autouse=True)
def crm(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrmStandIn]:
    """Attio's records API on the CRM stand-in (the local secrets hold its token)."""
    with CrmStandIn(port=0) as standin:
        monkeypatch.setenv("ATTIO_API_URL", standin.base_url)
        runtime.reset()
        yield standin


def recorded(pipeline: Pipeline, contact_id: str, key: str) -> dict[str, Any]:
    item = pipeline.store.get_event("attio", contact_id, key)
    assert item is not None
    return item


def assert_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.body) == {"error"}
    assert answer.body["error"]["code"] == code
    assert VENDOR.refusal(answer.status, answer.headers, json.dumps(answer.body).encode())


def delivery(*events: Any, key: str = "delivery-0001") -> VendorRequest:
    return signed_request(webhook_body(*events), secret=SECRET, idempotency_key=key)


# ------------------------------------------------------------------------------------------------ the sample


def test_the_documented_record_update_is_read_from_attio_and_becomes_the_persons_patch(
    pipeline: Pipeline, crm: CrmStandIn
) -> None:
    assert pipeline.standin is not None
    # Given Attio's documented record.updated of a person, signed with the webhook's secret, and the person in Attio
    request = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    expected = VENDOR.sample_expectation()
    assert expected.crm_record is not None
    name, record_id, values = expected.crm_record
    crm.put_record(name, record_id, values, modified_at_ms=now_ms() - 1000)

    # When Attio posts it
    answer = pipeline.send(request)

    # Then it is acknowledged with its event id (Idempotency-Key and index), and queued under the person
    assert answer.status == 202
    assert answer.body == {"accepted": list(expected.event_ids), "duplicates": []}
    assert expected.queued == pipeline.queued_messages() == 1

    # And once deliver has read the person from Attio, Sphere got its values and the event is delivered
    pipeline.drain()
    assert len(crm.records_read("attio")) == 1
    assert [patch.body for patch in pipeline.standin.patches(expected.customer_id)] == [expected.patch]
    item = recorded(pipeline, expected.contact_id, expected.event_ids[0])
    assert item["status"] == "delivered"
    assert item["reason"] == "completed by reading the CRM's record (thin)"


def test_a_person_attio_no_longer_has_ends_incomplete_saying_so(pipeline: Pipeline) -> None:
    assert pipeline.standin is not None
    # Given a record.updated of a person Attio has no record of (deleted since)
    request = delivery(record_event("record.updated", PERSON), key="delivery-gone")

    # When it is received and delivered
    pipeline.send(request)
    pipeline.drain()

    # Then the event is incomplete, saying the record is gone, and Sphere got nothing
    item = recorded(pipeline, f"{WORKSPACE_ID}:{PERSON}", "delivery-gone:0")
    assert item["status"] == "incomplete"
    assert item["reason"] == "the CRM's record must be read (thin) and was not: the CRM no longer has this record"
    assert pipeline.standin.requests == []


def test_a_retried_delivery_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given the sample received
    request = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    first = pipeline.send(request)
    pipeline.drain()

    # When Attio retries it (same Idempotency-Key, same body)
    again = pipeline.send(request)

    # Then it is acknowledged as a duplicate and nothing is queued
    assert again.status == 202
    assert again.body == {"accepted": [], "duplicates": first.body["accepted"]}
    assert pipeline.queued_messages() == 0


def test_a_delivery_of_several_events_queues_each_person_and_settles_the_rest(pipeline: Pipeline) -> None:
    # Given one delivery: two people updated, a company updated, a person merged, and a malformed element
    request = delivery(
        record_event("record.updated", PERSON),
        record_event("record.updated", PERSON, object_id=COMPANIES_OBJECT_ID),
        {"event_type": "record.updated", "id": {"workspace_id": WORKSPACE_ID}},
        record_event("record.merged", OTHER_PERSON),
        record_event("record.created", OTHER_PERSON),
        key="delivery-0002",
    )

    # When it is posted
    answer = pipeline.send(request)

    # Then it is acknowledged: every event accepted, the company's and the merge settled ignored, the bad one refused
    assert answer.status == 202
    assert answer.body == {
        "accepted": [f"delivery-0002:{index}" for index in range(5)],
        "duplicates": [],
        "settled": {"ignored": ["delivery-0002:1", "delivery-0002:3"], "refused": ["delivery-0002:2"]},
    }
    assert pipeline.queued_messages() == 2
    merged = recorded(pipeline, f"{WORKSPACE_ID}:{OTHER_PERSON}", "delivery-0002:3")
    assert merged["status"] == "ignored"
    assert "read" in merged["reason"]
    refused = pipeline.find_event("attio", "delivery-0002:2")
    assert refused is not None
    assert refused["status"] == "refused"
    assert "record_id" in refused["reason"]

    # And after delivery each person was read from Attio (neither is there any more: both end incomplete)
    pipeline.drain()
    for contact, key in ((PERSON, "delivery-0002:0"), (OTHER_PERSON, "delivery-0002:4")):
        assert recorded(pipeline, f"{WORKSPACE_ID}:{contact}", key)["status"] == "incomplete"
    assert pipeline.standin.requests == []


def test_a_companys_update_is_ignored(pipeline: Pipeline) -> None:
    # Given the kit's event about another object than people
    request = VENDOR.irrelevant(event_id=77, occurred_at_ms=now_ms(), secret=SECRET, base_url="")

    # When it is posted, Then it is acknowledged and recorded ignored, never queued
    answer = pipeline.send(request)
    assert answer.status == 202
    assert list(answer.body["settled"]) == ["ignored"]
    assert pipeline.queued_messages() == 0
    [key] = answer.body["settled"]["ignored"]
    assert pipeline.event("attio", key)["reason"] == "the record is not of the people object"


# ------------------------------------------------------------------------------------------------ the secret


def test_each_forged_request_is_answered_401_and_recorded(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    sample = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    seen: set[str] = set()
    for name, forged in VENDOR.forged(sample).items():
        with subtests.test(name):
            # Given a request not signed with the configured secret
            # Then it is refused in JSON naming no secret, recorded once with a digest of its body, nothing queued
            answer = pipeline.refuses(forged, 401, "invalid_signature", seen=seen)
            assert SECRET not in json.dumps(answer.body)
    assert pipeline.find_event("attio", VENDOR.sample_expectation().event_ids[0]) is None


def test_a_rotated_secret_accepts_either_value(pipeline: Pipeline) -> None:
    # Given the secret holds the old and the new webhook secret, whitespace-separated
    boto3.client("secretsmanager").put_secret_value(
        SecretId=os.environ["ATTIO_SECRET_ID"], SecretString=f"{SECRET}\n new-attio-webhook-secret"
    )
    runtime.reset()

    # When Attio signs with the new one, and then with the old one
    new = VENDOR.change(3, {}, event_id=31, occurred_at_ms=now_ms(), secret="new-attio-webhook-secret", base_url="")
    old = VENDOR.change(3, {}, event_id=32, occurred_at_ms=now_ms(), secret=SECRET, base_url="")

    # Then both are accepted
    assert pipeline.send(new).body["accepted"] == [VENDOR.event_id(3, 31, 0)]
    assert pipeline.send(old).body["accepted"] == [VENDOR.event_id(3, 32, 0)]


# ------------------------------------------------------------------------------------------------ bad bodies


def test_each_malformed_body_is_answered_400_and_recorded(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    seen: set[str] = set()
    for name, malformed in VENDOR.malformed(secret=SECRET, base_url="", occurred_at_ms=now_ms()).items():
        with subtests.test(name):
            # Given an authentic request whose body is not an Attio delivery
            # Then it is a 400 in JSON, recorded once as refused, and nothing is queued
            pipeline.refuses(malformed, 400, "invalid_payload", seen=seen)


def test_a_malformed_idempotency_key_is_answered_400(pipeline: Pipeline) -> None:
    # Given the sample with an Idempotency-Key that holds a space
    sample = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    request = sample.replace(headers={**sample.headers, "Idempotency-Key": "two words"})

    # Then it is refused naming the header
    answer = pipeline.send(request)
    assert_error(answer, 400, "invalid_payload")
    assert "Idempotency-Key" in answer.body["error"]["message"]


def test_another_content_type_is_answered_415(pipeline: Pipeline) -> None:
    sample = VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms())
    request = sample.replace(headers={**sample.headers, "Content-Type": "text/plain"})
    assert_error(pipeline.send(request), 415, "unsupported_media_type")


def test_without_a_people_object_id_the_source_answers_500_misconfigured(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployment left AttioPeopleObjectId empty
    monkeypatch.setenv("ATTIO_PEOPLE_OBJECT_ID", "")
    runtime.reset()

    # When Attio posts, Then the answer is a 500 naming the source, never a value (Attio retries)
    event = webhook_event("attio", dict(VENDOR.sample(secret=SECRET, base_url="", now_ms=now_ms()).headers), b"{}")
    response = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"] == {
        "code": "misconfigured",
        "message": "the attio source is not configured correctly",
    }
