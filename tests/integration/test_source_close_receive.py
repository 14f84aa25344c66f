"""Close webhooks through the receive function's handler on moto, delivered to the Sphere stand-in."""

from __future__ import annotations

import hashlib
import json
import time

from devstack.pipeline import PUBLIC_BASE_URL, Answer, Pipeline
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors.close import FIXTURES, VENDOR, signed_request
from webhook_adapter.model import ContactField

KIT = VENDOR
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


def test_the_contact_sample_becomes_the_expected_patch_and_a_retry_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given the contact update (tests/fixtures/close/contact-updated.json), signed with the subscription's key
    expected = KIT.sample_expectation()
    sample = KIT.sample(secret=SECRET, base_url=PUBLIC_BASE_URL, now_ms=now_ms())

    # When Close posts it
    answer = pipeline.send(sample)

    # Then it is accepted under Close's event id and Sphere gets exactly the expected PATCH
    assert answer.status == 202
    assert answer.body == {"accepted": list(expected.event_ids), "duplicates": []}
    pipeline.drain()
    assert [patch.body for patch in pipeline.standin.patches(expected.customer_id)] == [expected.patch]
    [item] = pipeline.store.contact_history(KIT.source, expected.contact_id)
    assert (item["event_id"], item["status"], item["customer_id"]) == (
        expected.event_ids[0],
        "delivered",
        expected.customer_id,
    )

    # When Close retries it (same event id, signed anew)
    again = pipeline.send(KIT.sample(secret=SECRET, base_url=PUBLIC_BASE_URL, now_ms=now_ms()))

    # Then it is a duplicate and Sphere is not called again
    assert again.body == {"accepted": [], "duplicates": list(expected.event_ids)}
    pipeline.drain()
    assert len(pipeline.standin.patches(expected.customer_id)) == 1


def test_a_lead_address_update_becomes_the_address_patch(pipeline: Pipeline) -> None:
    # Given a lead whose address changed, holding the Sphere customer id
    values = {
        ContactField.CUSTOMER_ID: SEED_INDIVIDUAL_ID,
        ContactField.LINE1: "747 Howard St",
        ContactField.LINE2: None,
        ContactField.CITY: "San Francisco",
        ContactField.STATE: "CA",
        ContactField.POSTAL_CODE: "94103",
        ContactField.COUNTRY: "US",
    }
    request = KIT.change(9, values, event_id=90, occurred_at_ms=now_ms(), secret=SECRET, base_url=PUBLIC_BASE_URL)

    # When Close posts it
    answer = pipeline.send(request)
    pipeline.drain()

    # Then Sphere gets the address, and the event is recorded under the lead
    assert answer.body == {"accepted": ["ev_test90"], "duplicates": []}
    assert [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)] == [
        {
            "address": {
                "line1": "747 Howard St",
                "city": "San Francisco",
                "state": "CA",
                "postalCode": "94103",
                "country": "USA",
            }
        }
    ]
    [item] = pipeline.store.contact_history(KIT.source, KIT.lead_contact_id(9))
    assert item["status"] == "delivered"


def test_the_documented_opportunity_sample_is_acknowledged_and_recorded_ignored(pipeline: Pipeline) -> None:
    # Given Close's documented example, verbatim (tests/fixtures/close/opportunity-updated.json), freshly signed
    body = (FIXTURES / "opportunity-updated.json").read_bytes()

    # When posted
    answer = pipeline.send(signed_request(body, key=SECRET))

    # Then it is a 2xx (Close would retry anything else for 72 hours) and recorded ignored, nothing queued
    assert answer.status == 202
    assert answer.body["settled"] == {"ignored": ["ev_2sYKRjcrA79yKxi3S4Crd7"]}
    assert KIT.acknowledged(answer.status, answer.headers, json.dumps(answer.body).encode())
    contact_id = "orga_XbVPx5fFbKlYTz9PW5Ih1XDhViV10YihIaEgMEb6fVW:oppo_7H4sjNso7FyBFaeR3RXi5PMJbilfo0c6UPCxsJtEhCO"
    [item] = pipeline.store.contact_history(KIT.source, contact_id)
    assert item["status"] == "ignored"
    assert pipeline.queued_messages() == 0


def test_an_unrelated_contact_update_is_ignored_and_sends_nothing(pipeline: Pipeline) -> None:
    # Given the contact sample, but an update of the title only (data still holds every email and phone)
    document = json.loads(KIT.sample(secret=SECRET, base_url=PUBLIC_BASE_URL, now_ms=now_ms()).body)
    document["event"]["changed_fields"] = ["date_updated", "title"]

    # When posted
    answer = pipeline.send(signed_request(json.dumps(document).encode(), key=SECRET))

    # Then nothing is resent to Sphere
    assert answer.body["settled"] == {"ignored": [document["event"]["id"]]}
    pipeline.drain()
    assert pipeline.standin.patches() == []


def test_forged_requests_are_refused_401_and_recorded(pipeline: Pipeline) -> None:
    # Given the sample signed with another key, unsigned, changed after signing, or signed too long ago
    start = now_ms()
    forged = KIT.forged(KIT.sample(secret=SECRET, base_url=PUBLIC_BASE_URL, now_ms=start))

    # When each is posted
    for name, request in forged.items():
        answer = pipeline.send(request)

        # Then it is a 401 with a JSON error naming the cause
        message = assert_json_error(answer, 401, "invalid_signature")
        assert KIT.refusal(answer.status, answer.headers, json.dumps(answer.body).encode()) == message, name

    # And each is recorded refused with a digest of its body, and nothing is queued
    assert sorted(item["body_sha256"] for item in pipeline.refused_requests("close", start)) == sorted(
        hashlib.sha256(request.body).hexdigest() for request in forged.values()
    )
    assert pipeline.queued_messages() == 0


def test_malformed_authentic_bodies_are_refused_400_and_recorded(pipeline: Pipeline) -> None:
    # Given signed bodies that are not a readable Close event
    start = now_ms()
    malformed = KIT.malformed(secret=SECRET, base_url=PUBLIC_BASE_URL, occurred_at_ms=start)

    # When each is posted, Then each is a 400 and is recorded
    for request in malformed.values():
        assert_json_error(pipeline.send(request), 400, "invalid_payload")
    assert len(pipeline.refused_requests("close", start)) == len(malformed)


def test_a_form_post_is_refused_415(pipeline: Pipeline) -> None:
    sample = KIT.sample(secret=SECRET, base_url=PUBLIC_BASE_URL, now_ms=now_ms())
    headers = {**sample.headers, "Content-Type": "application/x-www-form-urlencoded"}
    assert_json_error(pipeline.post(KIT.source, headers, sample.body), 415, "unsupported_media_type")
