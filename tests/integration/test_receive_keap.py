"""The Keap source through the receive function's handler on moto, delivering to the Sphere stand-in.

Each test posts what Keap (or an impostor) sends to ``POST /webhooks/keap?token=...`` and checks what Keap needs
(``200`` echoing ``X-Hook-Secret`` to the handshake, a 2xx to a delivery, JSON errors otherwise), what Sphere
receives, and what the table records. Keap's hooks name the contact only: deliver reads each contact from Keap's
API (the CRM stand-in here), then sends what it holds.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import boto3
import pytest

from devstack.crm_standin import CrmStandIn
from devstack.pipeline import Answer, Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.vendors.keap import VENDOR, hook_body, hook_request, object_key, timestamp
from webhook_adapter import runtime

TOKEN = LOCAL_SECRETS["KeapSecretArn"]
CONTACT = 880_001
OTHER_CONTACT = 880_002


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(autouse=True)
def crm(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrmStandIn]:
    """Keap's REST API on the CRM stand-in (the local secrets hold its token)."""
    with CrmStandIn(port=0) as standin:
        monkeypatch.setenv("KEAP_API_URL", standin.base_url)
        runtime.reset()
        yield standin


def assert_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.body) == {"error"}
    assert answer.body["error"]["code"] == code
    assert VENDOR.refusal(answer.status, answer.headers, json.dumps(answer.body).encode())


# ------------------------------------------------------------------------------------------------ the handshake


def test_the_subscription_handshake_is_answered_200_echoing_x_hook_secret(pipeline: Pipeline) -> None:
    # Given Keap's verification POST to the hook URL (with the endpoint token), carrying X-Hook-Secret and no body
    start = now_ms()
    request = VENDOR.handshake(secret=TOKEN, hook_secret="9c1f4e2ab7d3")

    # When it is posted
    answer = pipeline.send(request)

    # Then Keap gets 200 with the same X-Hook-Secret header, and nothing is queued or recorded
    assert answer.status == 200, answer.body
    assert answer.headers["x-hook-secret"] == "9c1f4e2ab7d3"
    assert answer.body == {"verified": True}
    assert pipeline.queued_messages() == 0
    assert pipeline.refused_requests("keap", start) == []


def test_a_handshake_without_the_endpoint_token_is_refused_and_echoes_nothing(pipeline: Pipeline) -> None:
    # Given someone subscribing the hook URL without (or with a wrong) endpoint token
    for query in ("", "token=not-the-token"):
        request = VENDOR.handshake(secret=TOKEN, hook_secret="9c1f4e2ab7d3").replace(query=query)

        # When it is posted, Then it is a 401 and the hook secret is not echoed (Keap would not verify the hook)
        answer = pipeline.send(request)
        assert_error(answer, 401, "invalid_credentials")
        assert "x-hook-secret" not in answer.headers


# ------------------------------------------------------------------------------------------------ the sample


def test_the_documented_contact_edit_is_read_from_keap_and_becomes_the_contacts_patch(
    pipeline: Pipeline, crm: CrmStandIn
) -> None:
    assert pipeline.standin is not None
    # Given Keap's documented contact.edit hook and the contact in Keap
    request = VENDOR.sample(secret=TOKEN, base_url="", now_ms=now_ms())
    expected = VENDOR.sample_expectation()
    assert expected.crm_record is not None
    name, record_id, values = expected.crm_record
    crm.put_record(name, record_id, values, modified_at_ms=now_ms() - 1000)

    # When Keap posts it
    answer = pipeline.send(request)

    # Then it is acknowledged with its event id (event key, contact id, timestamp), queued under the contact
    assert answer.status == 202
    stamp = json.loads(request.body)["object_keys"][0]["timestamp"]
    event_id = f"contact.edit:{expected.contact_id}:{stamp}"
    assert answer.body == {"accepted": [event_id], "duplicates": []}
    assert expected.queued == pipeline.queued_messages() == 1

    # And once deliver has read the contact from Keap, Sphere got its values and the event is delivered
    pipeline.drain()
    assert [read.path for read in crm.records_read("keap")] == [f"/crm/rest/v1/contacts/{record_id}"]
    assert [patch.body for patch in pipeline.standin.patches(expected.customer_id)] == [expected.patch]
    item = pipeline.event("keap", event_id)
    assert item["status"] == "delivered"
    assert item["reason"] == "completed by reading the CRM's record (thin)"


def test_a_retried_delivery_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given the sample received
    request = VENDOR.sample(secret=TOKEN, base_url="", now_ms=now_ms())
    first = pipeline.send(request)
    pipeline.drain()

    # When Keap retries it (the same body)
    again = pipeline.send(request)

    # Then it is acknowledged as a duplicate and nothing is queued
    assert again.status == 202
    assert again.body == {"accepted": [], "duplicates": first.body["accepted"]}
    assert pipeline.queued_messages() == 0


def test_a_batch_queues_each_contact_and_refuses_a_malformed_element_alone(pipeline: Pipeline) -> None:
    assert pipeline.standin is not None
    # Given one delivery naming two contacts and one malformed element (its id is text)
    at = now_ms()
    broken = object_key(CONTACT, at) | {"id": "not-a-number"}
    request = hook_request(
        hook_body("contact.add", object_key(CONTACT, at), broken, object_key(OTHER_CONTACT, at)), token=TOKEN
    )

    # When it is posted
    answer = pipeline.send(request)

    # Then both contacts are accepted and queued, the malformed element is refused on its own
    assert answer.status == 202
    assert answer.body["accepted"][0] == f"contact.add:{CONTACT}:{timestamp(at)}"
    assert answer.body["accepted"][2] == f"contact.add:{OTHER_CONTACT}:{timestamp(at)}"
    [refused_key] = answer.body["settled"]["refused"]
    assert pipeline.queued_messages() == 2
    refused = pipeline.event("keap", refused_key)
    assert refused["status"] == "refused"
    assert "id" in refused["reason"]
    assert "not-a-number" not in refused["reason"]

    # And after delivery each contact was looked up in Keap (neither exists: both end incomplete, Sphere got nothing)
    pipeline.drain()
    for contact in (CONTACT, OTHER_CONTACT):
        item = pipeline.event("keap", f"contact.add:{contact}:{timestamp(at)}")
        assert item["status"] == "incomplete"
        assert "no longer has this record" in item["reason"]
    assert pipeline.standin.requests == []


def test_another_objects_hook_is_ignored(pipeline: Pipeline) -> None:
    # Given the kit's hook about an opportunity
    request = VENDOR.irrelevant(event_id=77, occurred_at_ms=now_ms(), secret=TOKEN, base_url="")

    # When it is posted, Then it is acknowledged and recorded ignored, never queued
    answer = pipeline.send(request)
    assert answer.status == 202
    assert list(answer.body["settled"]) == ["ignored"]
    assert pipeline.queued_messages() == 0
    [key] = answer.body["settled"]["ignored"]
    assert pipeline.event("keap", key)["reason"] == "opportunity objects are not contacts"


# ------------------------------------------------------------------------------------------------ the token


def test_each_forged_request_is_answered_401_and_recorded(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    sample = VENDOR.sample(secret=TOKEN, base_url="", now_ms=now_ms())
    seen: set[str] = set()
    for name, forged in VENDOR.forged(sample).items():
        with subtests.test(name):
            # Given a request without the configured endpoint token
            # Then it is refused in JSON naming no secret, recorded once with a digest of its body, nothing queued
            answer = pipeline.refuses(forged, 401, "invalid_credentials", seen=seen)
            assert TOKEN not in json.dumps(answer.body)
    assert pipeline.queued_messages() == 0


def test_a_rotated_token_accepts_either_value(pipeline: Pipeline) -> None:
    # Given the secret holds the old and the new endpoint token, whitespace-separated
    boto3.client("secretsmanager").put_secret_value(
        SecretId=os.environ["KEAP_SECRET_ID"], SecretString=f"{TOKEN}\n new-keap-endpoint-token"
    )
    runtime.reset()

    # When Keap posts to a hook URL with the new one, and to one with the old one
    at = now_ms()
    new = VENDOR.change(3, {}, event_id=31, occurred_at_ms=at, secret="new-keap-endpoint-token", base_url="")
    old = VENDOR.change(4, {}, event_id=32, occurred_at_ms=at, secret=TOKEN, base_url="")

    # Then both are accepted
    assert pipeline.send(new).body["accepted"] == [VENDOR.event_id(3, 31, at)]
    assert pipeline.send(old).body["accepted"] == [VENDOR.event_id(4, 32, at)]


# ------------------------------------------------------------------------------------------------ bad bodies


def test_each_malformed_body_is_answered_400_and_recorded(pipeline: Pipeline, subtests: pytest.Subtests) -> None:
    seen: set[str] = set()
    for name, malformed in VENDOR.malformed(secret=TOKEN, base_url="", occurred_at_ms=now_ms()).items():
        with subtests.test(name):
            # Given an authentic request whose body is not a Keap hook delivery
            # Then it is a 400 in JSON, recorded once as refused, and nothing is queued
            pipeline.refuses(malformed, 400, "invalid_payload", seen=seen)


def test_a_malformed_hook_secret_is_answered_400(pipeline: Pipeline) -> None:
    request = VENDOR.handshake(secret=TOKEN, hook_secret="two words")
    answer = pipeline.send(request)
    assert_error(answer, 400, "invalid_payload")
    assert "X-Hook-Secret" in answer.body["error"]["message"]
    assert "x-hook-secret" not in answer.headers


def test_another_content_type_is_answered_415(pipeline: Pipeline) -> None:
    sample = VENDOR.sample(secret=TOKEN, base_url="", now_ms=now_ms())
    request = sample.replace(headers={**sample.headers, "Content-Type": "text/plain"})
    assert_error(pipeline.send(request), 415, "unsupported_media_type")
