"""Pipedrive through the receive function's handler on moto (and once over HTTP on the local stack), to the stand-in.

Each test posts what Pipedrive (or someone else) sends to ``POST /webhooks/pipedrive`` and checks the answer
Pipedrive reads, what Sphere received, and what the table recorded.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import boto3
import pytest

from devstack.pipeline import Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.sphere_standin import SEED_INDIVIDUAL_ID, SEED_KYC_SUBMITTED_ID
from devstack.vendors import vendor
from devstack.vendors.pipedrive import COMPANY, basic_auth
from webhook_adapter.model import ContactField

KIT = vendor("pipedrive")
SECRET = LOCAL_SECRETS["PipedriveSecretArn"]
PLANTED = "PIPEDRIVE-PII-31337"


def now_ms() -> int:
    return int(time.time() * 1000)


def test_the_documented_v1_sample_becomes_its_patch_and_a_delivered_outcome(pipeline: Pipeline) -> None:
    # Given Pipedrive's v1 "updated.person" sample for a person holding a Sphere customer id
    start = now_ms()
    sample = KIT.sample(secret=SECRET, base_url="https://hooks.example.com", now_ms=start)
    expected = KIT.sample_expectation()

    # When Pipedrive posts it
    answer = pipeline.send(sample)

    # Then it is acknowledged at once with its event id, a digest of the body (v1 has no event id)
    assert KIT.acknowledged(answer.status, answer.headers, json.dumps(answer.body).encode())
    [event_id] = answer.body["accepted"]
    assert event_id.startswith("v1:")
    assert answer.body["duplicates"] == []

    # And, once delivered, Sphere got exactly the expected PATCH and the event is recorded delivered
    pipeline.drain()
    assert [patch.body for patch in pipeline.standin.patches(expected.customer_id)] == [expected.patch]
    item = pipeline.store.get_event("pipedrive", expected.contact_id, event_id)
    assert item is not None
    assert item["status"] == "delivered"
    assert item["customer_id"] == expected.customer_id


def test_a_retried_v1_event_is_a_duplicate_and_sends_nothing_more(pipeline: Pipeline) -> None:
    # Given the v1 sample delivered once
    sample = KIT.sample(secret=SECRET, base_url="", now_ms=now_ms())
    first = pipeline.send(sample)
    pipeline.drain()

    # When Pipedrive retries it (its retry counter up)
    document = json.loads(sample.body)
    document["retry"] = 1
    again = pipeline.send(sample.replace(body=json.dumps(document).encode()))

    # Then it is acknowledged as a duplicate, and Sphere got one PATCH only
    assert again.status == 202
    assert again.body == {"accepted": [], "duplicates": first.body["accepted"]}
    assert len(pipeline.standin.patches(SEED_INDIVIDUAL_ID)) == 1


def test_a_v2_change_is_delivered_and_its_retry_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given a v2 person change with a Sphere customer id and an email
    values = {ContactField.CUSTOMER_ID: SEED_KYC_SUBMITTED_ID, ContactField.EMAIL: "grace@example.org"}
    request = KIT.change(31, values, event_id=7001, occurred_at_ms=now_ms(), secret=SECRET, base_url="")

    # When Pipedrive posts it, it is delivered, and Pipedrive sends it again as attempt 2
    answer = pipeline.send(request)
    pipeline.drain()
    document = json.loads(request.body)
    document["meta"]["attempt"] = 2
    retried = pipeline.send(request.replace(body=json.dumps(document).encode()))

    # Then the first is accepted under its event id, the retry is a duplicate, and Sphere got the email once
    event_id = str(uuid.UUID(int=7001))
    assert answer.status == 202
    assert answer.body == {"accepted": [event_id], "duplicates": []}
    assert retried.body == {"accepted": [], "duplicates": [event_id]}
    assert [patch.body for patch in pipeline.standin.patches(SEED_KYC_SUBMITTED_ID)] == [{"email": "grace@example.org"}]
    item = pipeline.store.get_event("pipedrive", KIT.contact_id(31), event_id)
    assert item is not None
    assert item["status"] == "delivered"


def test_an_irrelevant_event_is_acknowledged_and_recorded_ignored(pipeline: Pipeline) -> None:
    # Given a v2 deal creation
    request = KIT.irrelevant(event_id=7002, occurred_at_ms=now_ms(), secret=SECRET, base_url="")

    # When Pipedrive posts it
    answer = pipeline.send(request)

    # Then it is acknowledged (2xx, so Pipedrive never counts it as a failure) and recorded ignored with why
    event_id = str(uuid.UUID(int=7002))
    assert answer.status == 202
    assert answer.body["settled"] == {"ignored": [event_id]}
    item = pipeline.event("pipedrive", event_id)
    assert item["status"] == "ignored"
    assert item["reason"] == "create.deal events carry no person to deliver"
    assert pipeline.queued_messages() == 0


def test_an_address_without_components_is_queued_with_its_note(pipeline: Pipeline) -> None:
    # Given a v2 person whose address Google could not split: only postal_address is set
    request = KIT.change(32, {}, event_id=7003, occurred_at_ms=now_ms(), secret=SECRET, base_url="")
    document = json.loads(request.body)
    document["data"].update(postal_address="1 Nowhere Lane")

    # When Pipedrive posts it
    answer = pipeline.send(request.replace(body=json.dumps(document).encode()))

    # Then it is accepted, and the queued event carries line1 and the note saying where line1 came from
    assert answer.status == 202
    [message] = pipeline.sqs.receive_message(QueueUrl=pipeline.resources.queue_url, MaxNumberOfMessages=10)["Messages"]
    [event] = json.loads(message["Body"])["events"]
    assert event["changes"] == {"line1": "1 Nowhere Lane"}
    assert event["reason"] == "the address has no components: line1 is Pipedrive's whole address (postal_address)"


@pytest.mark.parametrize("name", ["wrong password", "no credentials", "a bearer token instead of Basic"])
def test_bad_credentials_get_401_with_a_basic_challenge_and_are_recorded(pipeline: Pipeline, name: str) -> None:
    # Given an authentic request's forgery
    start = now_ms()
    request = KIT.change(
        33,
        {ContactField.EMAIL: f"{PLANTED}@example.com"},
        event_id=7004,
        occurred_at_ms=start,
        secret=SECRET,
        base_url="",
    )
    forged = KIT.forged(request)[name]

    # When posted
    answer = pipeline.send(forged)

    # Then it is refused 401 in JSON with Pipedrive's challenge header, recorded with a digest of the body only
    assert answer.status == 401
    assert answer.body["error"]["code"] == "invalid_credentials"
    assert answer.headers["www-authenticate"] == 'Basic realm="pipedrive"'
    assert KIT.refusal(answer.status, answer.headers, json.dumps(answer.body).encode())
    assert PLANTED not in json.dumps(answer.body)
    [record] = pipeline.refused_requests("pipedrive", start)
    assert record["http_status"] == 401
    assert record["body_sha256"] == hashlib.sha256(forged.body).hexdigest()
    assert pipeline.queued_messages() == 0


def test_a_foreign_company_gets_403_and_is_recorded(pipeline: Pipeline) -> None:
    # Given a request with the right credentials about a company this deployment does not serve
    start = now_ms()
    request = KIT.change(
        34, {ContactField.EMAIL: "a@example.com"}, event_id=7005, occurred_at_ms=start, secret=SECRET, base_url=""
    )

    # When posted
    answer = pipeline.send(KIT.forged(request)["a foreign company"])

    # Then it is forbidden, without the Basic challenge (the credentials were right), and recorded
    assert answer.status == 403
    assert answer.body["error"]["code"] == "forbidden_sender"
    assert "www-authenticate" not in answer.headers
    assert [record["http_status"] for record in pipeline.refused_requests("pipedrive", start)] == [403]
    assert pipeline.queued_messages() == 0


def test_malformed_bodies_get_400_in_json_and_are_recorded(pipeline: Pipeline) -> None:
    # Given the kit's authentic but broken requests
    start = now_ms()
    malformed = KIT.malformed(secret=SECRET, base_url="", occurred_at_ms=start)

    # When each is posted
    answers = {name: pipeline.send(request) for name, request in malformed.items()}

    # Then each is a 400 naming the problem, and each is recorded refused; nothing is queued
    for name, answer in answers.items():
        assert answer.status == 400, name
        assert answer.body["error"]["code"] == "invalid_payload", name
        assert KIT.refusal(answer.status, answer.headers, json.dumps(answer.body).encode()), name
    assert len(pipeline.refused_requests("pipedrive", start)) == len(malformed)
    assert pipeline.queued_messages() == 0


def test_another_content_type_gets_415(pipeline: Pipeline) -> None:
    # Given an authentic request sent as a form
    request = KIT.change(35, {}, event_id=7006, occurred_at_ms=now_ms(), secret=SECRET, base_url="")
    headers = {**request.headers, "Content-Type": "application/x-www-form-urlencoded"}

    # When posted, Then it is refused 415
    assert pipeline.send(request.replace(headers=headers)).status == 415


def test_the_secret_may_hold_two_credentials_during_a_rotation(pipeline: Pipeline) -> None:
    # Given the secret holding the old and the new user:password, space-separated
    arn = pipeline.resources.secret_arns["PipedriveSecretArn"]
    secrets = boto3.client("secretsmanager")
    secrets.put_secret_value(SecretId=arn, SecretString=f"{SECRET} sphere-webhooks:rotated-password")

    # When Pipedrive posts with the new one
    request = KIT.change(
        36, {ContactField.EMAIL: "a@example.com"}, event_id=7007, occurred_at_ms=now_ms(), secret=SECRET, base_url=""
    )
    headers = {**request.headers, "Authorization": basic_auth("sphere-webhooks:rotated-password")}
    answer = pipeline.send(request.replace(headers=headers))

    # Then it is accepted
    assert answer.status == 202
    assert answer.body["accepted"] == [str(uuid.UUID(int=7007))]
    assert KIT.contact_id(36) == f"{COMPANY}:36"
