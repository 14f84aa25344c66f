"""The deliver side end to end: HubSpot posts through the receive handler, the deliver handler applies them to Sphere.

Every test drives the real handlers (moto for AWS, the Sphere stand-in for Sphere) and checks both
what Sphere saw (method, path, body, Authorization of each request) and what the adapter recorded
for each event (status, reason, missing parts, Sphere's answer, attempts, history).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.kit import (
    SOURCE,
    TOKEN,
    assert_patch,
    change,
    contact,
    history,
    invoke_deliver,
    now_ms,
    post,
    queue_arn,
    received_records,
    record_holding,
    rotate_stored_token,
    status_of,
    stored,
)
from devstack.lambda_events import sqs_record
from devstack.pipeline import Pipeline
from devstack.sphere_standin import SEED_BUSINESS_ID, SEED_INDIVIDUAL_ID

ROTATED_TOKEN = "rotated-token"
REPO_ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------- delivered


def test_a_full_contact_is_normalized_and_delivered_in_one_patch(pipeline: Pipeline) -> None:
    # Given a HubSpot contact with its Sphere id, email, phone and a complete address, as people type them
    events = contact(
        101,
        at=now_ms(),
        sphere_customer_id=SEED_INDIVIDUAL_ID,
        email="Ada.Lovelace@EXAMPLE.com",
        phone="(415) 555-0123",
        address="12 Babbage Rd",
        city="Chicago",
        state="Illinois",
        zip="60601",
        country="United States",
    )

    # When HubSpot posts it and the deliver function drains the queue
    post(pipeline, *events)
    pipeline.drain()

    # Then Sphere got one PATCH with the normalized values: E.164 phone, state code, alpha-3 country
    [request] = pipeline.standin.requests
    assert_patch(
        request,
        SEED_INDIVIDUAL_ID,
        {
            "email": "Ada.Lovelace@example.com",
            "phone": "+14155550123",
            "address": {
                "line1": "12 Babbage Rd",
                "city": "Chicago",
                "state": "IL",
                "postalCode": "60601",
                "country": "USA",
            },
        },
    )
    assert request.status == 200
    # And every event is delivered, with Sphere's updatedAt and KYC status, and the request masked
    customer = pipeline.standin.customer(SEED_INDIVIDUAL_ID)
    assert status_of(pipeline, *events) == ["delivered"] * len(events)
    for event in events:
        item = stored(pipeline, event)
        assert item["customer_id"] == SEED_INDIVIDUAL_ID
        assert item["sphere"] == {
            "http_status": 200,
            "updated_at": customer["updatedAt"],
            "kyc_status": "pending",
            "correlation_id": request.correlation_id,
        }
        assert item["attempts"] == 1
        assert history(item) == ["queued", "delivered"]
    recorded_request = stored(pipeline, events[1])["request"]
    assert recorded_request["email"] != "Ada.Lovelace@example.com"
    assert recorded_request["phone"] != "+14155550123"
    assert {part: recorded_request["address"][part] for part in ("city", "state", "country")} == {
        "city": "Chicago",
        "state": "IL",
        "country": "USA",
    }


def test_a_redelivered_message_is_applied_once(pipeline: Pipeline) -> None:
    # Given a delivered change, still on the queue (the deliver function's success was not yet acknowledged)
    events = contact(102, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    post(pipeline, *events)
    [record] = received_records(pipeline)
    assert invoke_deliver(pipeline, [record]) == set()
    after_first = [stored(pipeline, event) for event in events]

    # When SQS delivers the same message again
    failed = invoke_deliver(pipeline, [record])

    # Then Sphere was called once, and the second run left every outcome as it was
    assert failed == set()
    assert [patch.body for patch in pipeline.standin.requests] == [{"email": "ada@example.com"}]
    assert [stored(pipeline, event) for event in events] == after_first
    assert [history(item) for item in after_first] == [["queued", "delivered"]] * 2


# ------------------------------------------------------------------------------------------------- order


def test_an_older_change_arriving_after_a_newer_one_is_superseded(pipeline: Pipeline) -> None:
    # Given the newer email of a contact already delivered
    start = now_ms()
    mapped = change(103, "sphere_customer_id", SEED_INDIVIDUAL_ID, at=start - 60_000)
    newer = change(103, "email", "new@example.com", at=start)
    post(pipeline, mapped, newer)
    pipeline.drain()

    # When an older email change arrives afterwards (a CRM retry, a slow batch)
    older = change(103, "email", "old@example.com", at=start - 5_000)
    post(pipeline, older)
    pipeline.drain()

    # Then Sphere keeps the newer email: it got one PATCH only
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "new@example.com"})
    assert pipeline.standin.customer(SEED_INDIVIDUAL_ID)["email"] == "new@example.com"
    # And the older change is recorded as superseded
    assert status_of(pipeline, mapped, newer, older) == ["delivered", "delivered", "superseded"]
    assert "newer change" in stored(pipeline, older)["reason"]


def test_in_one_batch_in_reverse_order_only_the_newer_change_is_sent(pipeline: Pipeline) -> None:
    # Given one HubSpot batch holding a contact's newer email before its older one
    start = now_ms()
    mapped = change(104, "sphere_customer_id", SEED_INDIVIDUAL_ID, at=start - 60_000)
    newer = change(104, "email", "new@example.com", at=start)
    older = change(104, "email", "old@example.com", at=start - 5_000)

    # When it is posted and delivered
    post(pipeline, mapped, newer, older)
    pipeline.drain()

    # Then only the newer email reaches Sphere, and the older one is superseded
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "new@example.com"})
    assert status_of(pipeline, mapped, newer, older) == ["delivered", "delivered", "superseded"]


def test_two_queued_requests_in_one_sqs_batch_newer_first_send_only_the_newer(pipeline: Pipeline) -> None:
    # Given two requests queued before the deliver side runs: the newer email first, then an older one
    start = now_ms()
    mapped = change(123, "sphere_customer_id", SEED_INDIVIDUAL_ID, at=start - 60_000)
    newer = change(123, "email", "new@example.com", at=start)
    older = change(123, "email", "old@example.com", at=start - 5_000)
    post(pipeline, mapped, newer)
    post(pipeline, older)

    # When one SQS batch delivers both messages
    batches = pipeline.drain()

    # Then only the newer email reaches Sphere, and the older one is superseded
    assert batches == 1
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "new@example.com"})
    assert status_of(pipeline, mapped, newer, older) == ["delivered", "delivered", "superseded"]


# ------------------------------------------------------------------------------------------------- merged state


def test_an_address_is_sent_once_the_merged_state_completes_it(pipeline: Pipeline) -> None:
    # Given a mapped contact whose street and city arrive first
    start = now_ms()
    first = contact(105, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, address="1 Main St", city="Chicago")
    mapped, line1, city = first

    # When they are delivered
    post(pipeline, *first)
    pipeline.drain()

    # Then nothing is sent: the address lacks its postal code and country
    assert pipeline.standin.requests == []
    for event in (line1, city):
        item = stored(pipeline, event)
        assert item["status"] == "incomplete"
        assert item["missing"] == ["postalCode", "country"]
        assert item["reason"] == "address is incomplete: missing postalCode, country"
    assert stored(pipeline, mapped)["status"] == "unchanged"

    # When the postal code and the country (USA) follow
    zip_code, country = contact(105, at=start + 1_000, zip="60601", country="US")
    post(pipeline, zip_code, country)
    pipeline.drain()

    # Then still nothing: a US address needs its state
    assert pipeline.standin.requests == []
    assert status_of(pipeline, zip_code, country) == ["incomplete", "incomplete"]
    assert stored(pipeline, country)["missing"] == ["state"]

    # When the state arrives
    [state] = contact(105, at=start + 2_000, state="il")
    post(pipeline, state)
    pipeline.drain()

    # Then one PATCH carries the whole address merged from the three requests
    [request] = pipeline.standin.requests
    assert_patch(
        request,
        SEED_INDIVIDUAL_ID,
        {"address": {"line1": "1 Main St", "city": "Chicago", "state": "IL", "postalCode": "60601", "country": "USA"}},
    )
    item = stored(pipeline, state)
    assert item["status"] == "delivered"
    assert item["sphere"]["updated_at"] == pipeline.standin.customer(SEED_INDIVIDUAL_ID)["updatedAt"]
    assert item["sphere"]["kyc_status"] == "incomplete"  # no email nor phone yet


def test_changes_of_an_unmapped_contact_are_sent_when_its_customer_id_arrives(pipeline: Pipeline) -> None:
    # Given a contact without a Sphere customer id: its email and address are delivered to nobody
    start = now_ms()
    known = contact(
        106,
        at=start,
        email="ada@example.com",
        address="1 Main St",
        city="Springfield",
        state="IL",
        zip="62701",
        country="USA",
    )
    post(pipeline, *known)
    pipeline.drain()
    assert pipeline.standin.requests == []
    assert status_of(pipeline, *known) == ["unmapped"] * len(known)
    assert stored(pipeline, known[0])["reason"] == "no Sphere customer id is known for this contact yet"

    # When the customer id is set in HubSpot later
    mapped = change(106, "sphere_customer_id", SEED_INDIVIDUAL_ID, at=start + 10_000)
    post(pipeline, mapped)
    pipeline.drain()

    # Then one PATCH carries everything known so far, and the customer id's event is delivered
    [request] = pipeline.standin.requests
    assert_patch(
        request,
        SEED_INDIVIDUAL_ID,
        {
            "email": "ada@example.com",
            "address": {
                "line1": "1 Main St",
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62701",
                "country": "USA",
            },
        },
    )
    item = stored(pipeline, mapped)
    assert (item["status"], item["customer_id"], history(item)) == (
        "delivered",
        SEED_INDIVIDUAL_ID,
        ["queued", "delivered"],
    )
    assert item["sphere"]["updated_at"] == pipeline.standin.customer(SEED_INDIVIDUAL_ID)["updatedAt"]


def test_the_same_value_in_a_new_event_is_not_sent_again(pipeline: Pipeline) -> None:
    # Given a contact's email delivered
    start = now_ms()
    post(pipeline, *contact(107, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com"))
    pipeline.drain()

    # When a new event (new id, later time) carries the same email, spelled with an upper-case domain
    again = change(107, "email", "ada@EXAMPLE.COM", at=start + 5_000)
    post(pipeline, again)
    pipeline.drain()

    # Then Sphere is not called a second time, and the event is unchanged
    assert [request.body for request in pipeline.standin.requests] == [{"email": "ada@example.com"}]
    item = stored(pipeline, again)
    assert (item["status"], item["reason"]) == ("unchanged", "Sphere already has these values")
    assert "sphere" not in item


# ------------------------------------------------------------------------------------------------- invalid values


def test_an_invalid_phone_is_rejected_while_the_valid_email_is_delivered(pipeline: Pipeline) -> None:
    # Given a contact whose phone is "12" and whose email is valid
    mapped, phone, email = contact(
        108, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, phone="12", email="ada@example.com"
    )

    # When it is delivered
    post(pipeline, mapped, phone, email)
    pipeline.drain()

    # Then only the email is sent; the phone is rejected, saying why
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "ada@example.com"})
    assert status_of(pipeline, mapped, phone, email) == ["delivered", "rejected", "delivered"]
    assert "phone" in stored(pipeline, phone)["reason"]
    assert "request" not in stored(pipeline, phone)


def test_an_invalid_email_is_rejected_while_the_valid_phone_is_delivered(pipeline: Pipeline) -> None:
    # Given a contact whose email is not an address and whose phone is valid
    customer_id = "customer_e1a11"
    pipeline.standin.add_customer(customer_id)
    mapped, email, phone = contact(
        109, at=now_ms(), sphere_customer_id=customer_id, email="ada-at-example.com", mobilephone="312 555 0147"
    )

    # When it is delivered
    post(pipeline, mapped, email, phone)
    pipeline.drain()

    # Then only the phone is sent; the email is rejected, saying why
    [request] = pipeline.standin.requests
    assert_patch(request, customer_id, {"phone": "+13125550147"})
    assert status_of(pipeline, mapped, email, phone) == ["delivered", "rejected", "delivered"]
    assert "email" in stored(pipeline, email)["reason"]


def test_an_invalid_customer_id_is_rejected_and_nothing_is_sent(pipeline: Pipeline) -> None:
    # Given a contact whose Sphere customer id is not one
    mapped, email = contact(110, at=now_ms(), sphere_customer_id="cust-1", email="ada@example.com")

    # When it is delivered
    post(pipeline, mapped, email)
    pipeline.drain()

    # Then Sphere is not called; the id is rejected and the email waits for a valid id
    assert pipeline.standin.requests == []
    item = stored(pipeline, mapped)
    assert (item["status"], item["reason"]) == ("rejected", "the Sphere customer id does not match customer_[a-z0-9]+")
    assert stored(pipeline, email)["status"] == "unmapped"


# ------------------------------------------------------------------------------------------------- transient failures


def test_a_429_is_retried_after_its_retry_after(pipeline: Pipeline) -> None:
    # Given Sphere answers the next request 429 with Retry-After: 1
    events = contact(111, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    pipeline.standin.fail_next(1, 429, retry_after=1)

    # When the change is delivered
    post(pipeline, *events)
    pipeline.drain()

    # Then the same PATCH is sent again, not before Retry-After has passed, and succeeds once
    first, second = pipeline.standin.requests
    assert (first.status, second.status) == (429, 200)
    for request in (first, second):
        assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "ada@example.com"})
    assert second.received_at - first.received_at >= timedelta(seconds=0.9)
    assert len(pipeline.standin.patches()) == 1
    # And the events went through "retrying" and were delivered on the second attempt
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], item["attempts"], history(item)) == (
            "delivered",
            2,
            ["queued", "retrying", "delivered"],
        )
        assert item["history"][1]["reason"] == "Sphere answered 429"
        assert item["sphere"]["http_status"] == 200


@pytest.mark.parametrize(
    ("fault", "first_status", "retry_reason"),
    [
        pytest.param(lambda standin: standin.fail_next(1, 500), [500], "Sphere answered 500", id="500"),
        pytest.param(
            lambda standin: standin.fail_next(1, 502, body="<html><body>502 Bad Gateway</body></html>"),
            [502],
            "Sphere answered 502",
            id="502-not-json",
        ),
        pytest.param(lambda standin: standin.fail_next(1, 503), [503], "Sphere answered 503", id="503"),
        # a held request is recorded only when answered: held past the test (its stand-in drops it on stop), Sphere
        # saw the retry alone; held 3 s, a slow run saw it answered, applied after the retry
        pytest.param(
            lambda standin: standin.timeout_next(1, 30), [], "Sphere did not answer in time (ReadTimeout)", id="timeout"
        ),
        pytest.param(
            lambda standin: standin.drop_next(1), [None], "could not reach Sphere (RemoteProtocolError)", id="dropped"
        ),
    ],
)
def test_a_transient_failure_is_retried_then_delivered_once(
    pipeline: Pipeline, fault: Any, first_status: list[int | None], retry_reason: str
) -> None:
    # Given Sphere fails the next request in a transient way
    events = contact(112, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    fault(pipeline.standin)

    # When the change is delivered
    post(pipeline, *events)
    pipeline.drain()

    # Then the PATCH is retried and applied exactly once
    requests = pipeline.standin.requests
    assert [request.status for request in requests] == [*first_status, 200]
    for request in requests:
        assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "ada@example.com"})
    assert len(pipeline.standin.patches()) == 1
    # And the events were retrying, then delivered on the second attempt
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], item["attempts"], history(item)) == (
            "delivered",
            2,
            ["queued", "retrying", "delivered"],
        )
        assert item["history"][1]["reason"] == retry_reason
        assert item["sphere"]["updated_at"] == pipeline.standin.customer(SEED_INDIVIDUAL_ID)["updatedAt"]


# ------------------------------------------------------------------------------------------------- permanent refusals


def test_a_business_customer_is_rejected_with_spheres_code_and_not_retried(pipeline: Pipeline) -> None:
    # Given a contact mapped to a business customer (this endpoint updates individuals only)
    events = contact(113, at=now_ms(), sphere_customer_id=SEED_BUSINESS_ID, email="ops2@example.com")

    # When it is delivered
    post(pipeline, *events)
    pipeline.drain()

    # Then Sphere was asked once and refused; the outcome keeps its code and correlation id
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_BUSINESS_ID, {"email": "ops2@example.com"})
    assert request.status == 422
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], item["attempts"], history(item)) == ("rejected", 1, ["queued", "rejected"])
        assert item["reason"] == "Sphere refused the update: customer/business-not-supported"
        assert item["sphere"]["code"] == "customer/business-not-supported"
        assert item["sphere"]["correlation_id"] == request.correlation_id
        assert item["sphere"]["http_status"] == 422
    assert pipeline.standin.customer(SEED_BUSINESS_ID)["email"] == "ops@example.com"


def test_an_unknown_customer_is_rejected_with_spheres_not_found(pipeline: Pipeline) -> None:
    # Given a contact mapped to a well-formed customer id Sphere does not know
    unknown = "customer_0000dead"
    events = contact(124, at=now_ms(), sphere_customer_id=unknown, email="ada@example.com")

    # When it is delivered
    post(pipeline, *events)
    pipeline.drain()

    # Then one request was refused 404 and the events are rejected, keeping Sphere's code
    [request] = pipeline.standin.requests
    assert_patch(request, unknown, {"email": "ada@example.com"})
    assert request.status == 404
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], item["reason"]) == ("rejected", "Sphere refused the update: resource/not-found")
        assert item["sphere"]["correlation_id"] == request.correlation_id


def test_a_422_is_rejected_and_not_retried(pipeline: Pipeline) -> None:
    # Given Sphere answers the next request 422
    events = contact(114, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    refusal = {
        "status": 422,
        "detail": "Invalid field: email",
        "code": "validation/failed",
        "correlationId": "c0ffee42",
    }
    pipeline.standin.fail_next(1, 422, body=refusal)

    # When the change is delivered
    post(pipeline, *events)
    pipeline.drain()

    # Then there was one request, no retry, and the events are rejected with Sphere's code
    [request] = pipeline.standin.requests
    assert request.status == 422
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], item["attempts"], history(item)) == ("rejected", 1, ["queued", "rejected"])
        assert item["reason"] == "Sphere refused the update: validation/failed"
        assert item["sphere"] == {
            "http_status": 422,
            "code": "validation/failed",
            "detail": "Invalid field: email",
            "correlation_id": "c0ffee42",
        }


def test_a_value_sphere_refused_is_not_sent_again_with_a_later_change(pipeline: Pipeline) -> None:
    # Given a contact whose email Sphere refused
    start = now_ms()
    mapped, email = contact(122, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    refusal = {
        "status": 422,
        "detail": "Invalid field: email",
        "code": "validation/failed",
        "correlationId": "c0ffee43",
    }
    pipeline.standin.fail_next(1, 422, body=refusal)
    post(pipeline, mapped, email)
    pipeline.drain()
    assert status_of(pipeline, mapped, email) == ["rejected", "rejected"]

    # When the contact's phone changes later
    phone = change(122, "phone", "+1 312 555 0199", at=start + 5_000)
    post(pipeline, phone)
    pipeline.drain()

    # Then the PATCH carries the phone alone: the refused email is not sent behind its event's back
    refused, accepted = pipeline.standin.requests
    assert refused.status == 422
    assert_patch(accepted, SEED_INDIVIDUAL_ID, {"phone": "+13125550199"})


# ------------------------------------------------------------------------------------------------- token rotation


def test_a_rotated_token_is_read_again_after_a_401(pipeline: Pipeline) -> None:
    # Given a first delivery that cached the current API key
    start = now_ms()
    post(pipeline, *contact(115, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com"))
    pipeline.drain()
    pipeline.standin.clear_requests()
    # And the key rotated at Sphere and in Secrets Manager
    pipeline.standin.rotate_token(ROTATED_TOKEN)
    rotate_stored_token(ROTATED_TOKEN)

    # When the next change is delivered
    email = change(115, "email", "ada.l@example.com", at=start + 5_000)
    post(pipeline, email)
    pipeline.drain()

    # Then Sphere saw the old key refused once, then the new key accepted
    refused, accepted = pipeline.standin.requests
    assert_patch(refused, SEED_INDIVIDUAL_ID, {"email": "ada.l@example.com"}, token=TOKEN)
    assert refused.status == 401
    assert_patch(accepted, SEED_INDIVIDUAL_ID, {"email": "ada.l@example.com"}, token=ROTATED_TOKEN)
    assert accepted.status == 200
    item = stored(pipeline, email)
    assert (item["status"], item["attempts"], history(item)) == ("delivered", 1, ["queued", "delivered"])


def test_a_401_that_a_fresh_read_does_not_cure_is_retried_not_rejected(pipeline: Pipeline) -> None:
    # Given Sphere rotated its key but Secrets Manager still holds the old one
    events = contact(116, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    pipeline.standin.rotate_token(ROTATED_TOKEN)

    # When the change is delivered once
    post(pipeline, *events)
    pipeline.poller.poll_once()

    # Then the old key was tried twice (cached, then read again) and the events wait for a retry
    requests = pipeline.standin.requests
    assert [request.status for request in requests] == [401, 401]
    for request in requests:
        assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "ada@example.com"}, token=TOKEN)
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], item["attempts"]) == ("retrying", 1)
        assert item["reason"] == "Sphere refused the API key, also after reading it again"
        assert item["sphere"]["http_status"] == 401
    assert pipeline.queued_messages() == 1


# ------------------------------------------------------------------------------------------------- batches


def test_a_failed_message_fails_the_rest_of_its_contact_but_not_other_contacts(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given contact A's two changes and contact B's one change, queued while the deliver side was idle, A's with
    # too many events to go in one call
    monkeypatch.setattr("webhook_adapter.consume.MAX_EVENTS_PER_CALL", 1)
    start = now_ms()
    customer_a, customer_b = "customer_aaaa01", "customer_bbbb01"
    pipeline.standin.add_customer(customer_a)
    pipeline.standin.add_customer(customer_b)
    a1 = contact(117, at=start, sphere_customer_id=customer_a, email="a1@example.com")
    a2 = change(117, "email", "a2@example.com", at=start + 5_000)
    b1 = contact(118, at=start, sphere_customer_id=customer_b, email="b1@example.com")
    post(pipeline, *a1)
    post(pipeline, a2)
    post(pipeline, *b1)
    records = received_records(pipeline)
    batch = [record_holding(records, a1[1]), record_holding(records, a2), record_holding(records, b1[1])]
    # And Sphere fails the first request for A (B's goes out at the same time, in another thread)
    pipeline.standin.fail_next(1, 503, customer_id=customer_a)

    # When the deliver handler gets the three in one batch: A1, A2, B1
    failed = invoke_deliver(pipeline, batch)

    # Then A1 and A2 are reported failed (A2 untried, so A's order holds) and B1 succeeded
    assert failed == {batch[0]["messageId"], batch[1]["messageId"]}
    failures = [(request.customer_id, request.status) for request in pipeline.standin.requests if request.status != 200]
    assert failures == [(customer_a, 503)]
    [second] = pipeline.standin.patches(customer_b)
    assert_patch(second, customer_b, {"email": "b1@example.com"})
    assert status_of(pipeline, *a1, *b1) == ["retrying", "retrying", "delivered", "delivered"]
    with pytest.raises(KeyError):  # A2 was not tried: it is only on the queue
        stored(pipeline, a2)

    # When the event source mapping deletes B1 and A's messages come back
    pipeline.sqs.delete_message(QueueUrl=pipeline.resources.queue_url, ReceiptHandle=batch[2]["receiptHandle"])
    pipeline.sqs.change_message_visibility(
        QueueUrl=pipeline.resources.queue_url, ReceiptHandle=batch[1]["receiptHandle"], VisibilityTimeout=0
    )
    pipeline.drain()

    # Then A's changes reach Sphere in their order
    assert [request.body for request in pipeline.standin.patches(customer_a)] == [
        {"email": "a1@example.com"},
        {"email": "a2@example.com"},
    ]
    assert pipeline.standin.customer(customer_a)["email"] == "a2@example.com"


def test_the_last_allowed_receive_records_the_change_as_dead_lettered(pipeline: Pipeline) -> None:
    # Given a change received for the last time the redrive policy allows
    max_receive_count = pipeline.resources.max_receive_count
    assert os.environ["MAX_RECEIVE_COUNT"] == str(max_receive_count) == "15"
    events = contact(119, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    post(pipeline, *events)
    [record] = received_records(pipeline, receive_count=max_receive_count)
    # And Sphere unavailable
    pipeline.standin.fail_next(1, 503)

    # When it is delivered
    failed = invoke_deliver(pipeline, [record])

    # Then it is reported failed (SQS moves it to the DLQ) and its events are recorded dead-lettered
    assert failed == {record["messageId"]}
    assert [request.status for request in pipeline.standin.requests] == [503]
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], item["attempts"]) == ("dead_lettered", 15)
        assert item["reason"] == "Sphere answered 503; moved to the dead-letter queue"
        assert history(item) == ["queued", "dead_lettered"]


def test_a_change_redriven_from_the_dead_letter_queue_is_delivered(pipeline: Pipeline) -> None:
    # Given a change dead-lettered during a Sphere outage
    events = contact(120, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    post(pipeline, *events)
    [record] = received_records(pipeline, receive_count=pipeline.resources.max_receive_count)
    pipeline.standin.fail_next(1, 503)
    assert invoke_deliver(pipeline, [record]) == {record["messageId"]}

    # When an operator redrives it once Sphere is back (a new receive: its count starts again)
    redriven = sqs_record(
        record["body"], queue_arn=queue_arn(pipeline), group_id=record["attributes"]["MessageGroupId"]
    )
    failed = invoke_deliver(pipeline, [redriven])

    # Then it reaches Sphere and its events are delivered
    assert failed == set()
    assert [request.status for request in pipeline.standin.requests] == [503, 200]
    assert status_of(pipeline, *events) == ["delivered", "delivered"]


def test_a_poison_message_fails_alone(pipeline: Pipeline) -> None:
    # Given a batch with a body that is not JSON, and a good change of another contact
    events = contact(121, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    post(pipeline, *events)
    [good] = received_records(pipeline)
    poison = sqs_record("this is not json", queue_arn=queue_arn(pipeline), group_id=f"{SOURCE}:62515:999")

    # When the deliver handler gets both
    failed = invoke_deliver(pipeline, [poison, good])

    # Then it returns normally, reporting the poison message alone, and the good change is delivered
    assert failed == {poison["messageId"]}
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "ada@example.com"})
    assert status_of(pipeline, *events) == ["delivered", "delivered"]


# ------------------------------------------------------------------------------------------------- cold start


def test_the_deliver_function_does_not_import_the_api_resolver() -> None:
    # Given a fresh interpreter with the Lambda's import path
    environment = {**os.environ, "PYTHONPATH": "layers/shared:functions:tests"}
    script = "import sys, deliver.app; print('aws_lambda_powertools.event_handler' in sys.modules)"

    # When it imports the deliver function
    result = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=False
    )

    # Then the import succeeded without loading Powertools' event handler (the receive side's API resolver)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_contact_state_written_concurrently_is_retried_not_overwritten(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the contact's state changes under the deliver step once (another writer saved first)
    from webhook_adapter.store import EventStore, StaleContactState

    original = EventStore.save_contact
    calls = itertools.count()

    def save_once_stale(self: EventStore, *args: Any, **kwargs: Any) -> None:
        if next(calls) == 0:
            raise StaleContactState("contact state of hubspot changed while it was being updated")
        original(self, *args, **kwargs)

    monkeypatch.setattr(EventStore, "save_contact", save_once_stale)
    start = now_ms()
    events = contact(130, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")

    # When the change is delivered
    post(pipeline, *events)
    pipeline.drain()

    # Then the message was retried (its state read again) and the outcome recorded once it could be saved
    assert status_of(pipeline, *events) == ["delivered", "delivered"]
    assert next(calls) == 2  # the stale save, then the retry's save
    # And the replayed PATCH carried the same values (idempotent in effect, as the design notes say)
    bodies = [request.body for request in pipeline.standin.patches(SEED_INDIVIDUAL_ID)]
    assert bodies == [{"email": "ada@example.com"}] * 2
