"""Salesforce Outbound Messages through the receive function's handler, on moto, delivering to the Sphere stand-in.

Salesforce reads only SOAP: every answer here is checked the way Salesforce reads it (the kit's
``acknowledged`` and ``refusal``), and what the adapter recorded and sent to Sphere is checked too.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import pytest

from devstack.kit import fail_once
from devstack.lambda_events import LambdaContext, webhook_event
from devstack.pipeline import Pipeline
from devstack.resources import LOCAL_SECRETS
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import VendorRequest
from devstack.vendors.salesforce import (
    FIXTURES,
    ORG,
    SAMPLE_CONTACT,
    SAMPLE_NOTIFICATION,
    VENDOR,
    notification,
    outbound_message,
    record_id,
)
from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.model import ContactField, Status
from webhook_adapter.store import EventStore

TOKEN = LOCAL_SECRETS["SalesforceSecretArn"]
BASE_URL = "https://hooks.example.com"
ORG15 = ORG[:15]


@dataclass(frozen=True)
class SoapAnswer:
    """The receive function's raw answer."""

    status: int
    content_type: str
    body: bytes

    @property
    def acknowledged(self) -> bool:
        return VENDOR.acknowledged(self.status, {"content-type": self.content_type}, self.body)

    @property
    def fault(self) -> str | None:
        return VENDOR.refusal(self.status, {"content-type": self.content_type}, self.body)


def now_ms() -> int:
    return int(time.time() * 1000)


def post(pipeline: Pipeline, request: VendorRequest) -> SoapAnswer:
    """Invoke the receive handler as API Gateway does for ``POST /webhooks/salesforce?token=...``."""
    event = webhook_event(request.source, request.headers, request.body, query=request.query)
    response = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    return SoapAnswer(int(response["statusCode"]), headers.get("content-type", ""), response["body"].encode())


def test_the_documented_contact_message_is_acknowledged_and_becomes_the_expected_patch(pipeline: Pipeline) -> None:
    # Given the documented Contact Outbound Message with the mapped fields ticked, posted to the tokened URL
    request = VENDOR.sample(secret=TOKEN, base_url=BASE_URL, now_ms=now_ms())
    expected = VENDOR.sample_expectation()

    # When Salesforce posts it and the queue is drained
    answer = post(pipeline, request)
    pipeline.drain()

    # Then Salesforce gets exactly the Ack envelope it expects, as text/xml under HTTP 200
    assert answer.status == 200
    assert answer.content_type.startswith("text/xml")
    assert answer.acknowledged
    assert answer.body.decode() == (FIXTURES / "outbound-message-ack-response.xml").read_text(encoding="utf-8")
    # And Sphere got the one PATCH, and the notification is recorded delivered under its org-scoped key
    assert [patch.body for patch in pipeline.standin.patches(expected.customer_id)] == [expected.patch]
    event = pipeline.event("salesforce", f"{ORG15}:{SAMPLE_NOTIFICATION}")
    assert event["status"] == Status.DELIVERED
    assert expected.contact_id == f"{ORG15}:{SAMPLE_CONTACT}"
    assert expected.event_ids == (SAMPLE_NOTIFICATION,)


def test_the_documented_opportunity_message_is_acknowledged_and_recorded_ignored(pipeline: Pipeline) -> None:
    # Given the documented Opportunity message (15-character org id, no session id), from the allowed org
    body = (FIXTURES / "outbound-message-opportunity.xml").read_bytes().replace(b"00DQ0000000EB93", ORG15.encode())
    request = VendorRequest("salesforce", {"Content-Type": "text/xml; charset=utf-8"}, body, f"token={TOKEN}")

    # When Salesforce posts it
    answer = post(pipeline, request)

    # Then it is acknowledged, nothing is queued, and the notification is recorded ignored
    assert answer.acknowledged
    assert pipeline.queued_messages() == 0
    event = pipeline.event("salesforce", f"{ORG15}:04lV0000001ALshIAG")
    assert event["status"] == Status.IGNORED
    assert pipeline.standin.patches() == []


def test_a_redelivered_message_is_acknowledged_and_sphere_is_patched_once(pipeline: Pipeline) -> None:
    # Given a Contact message Salesforce sent and the adapter delivered
    request = VENDOR.sample(secret=TOKEN, base_url=BASE_URL, now_ms=now_ms())
    assert post(pipeline, request).acknowledged
    pipeline.drain()

    # When Salesforce redelivers the same message (it did not read the first Ack)
    again = post(pipeline, request)

    # Then it is acknowledged again, nothing is queued, and Sphere still has one PATCH
    assert again.acknowledged
    assert pipeline.queued_messages() == 0
    assert len(pipeline.standin.patches(SEED_INDIVIDUAL_ID)) == 1


def test_a_malformed_notification_is_refused_alone_and_the_others_are_delivered(pipeline: Pipeline) -> None:
    # Given a message with one good Contact notification and one without an Id
    now = now_ms()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now / 1000))
    good = notification(
        record_id("04l", 1),
        record_id("003", 7),
        {"LastModifiedDate": stamp, "Sphere_Customer_Id__c": SEED_INDIVIDUAL_ID, "Email": "ada@example.com"},
    )
    broken = notification("", record_id("003", 8), {"Email": "grace@example.com"})
    request = VendorRequest(
        "salesforce", {"Content-Type": "text/xml"}, outbound_message([good, broken]), f"token={TOKEN}"
    )

    # When Salesforce posts it
    answer = post(pipeline, request)
    pipeline.drain()

    # Then the whole message is acknowledged (one Ack covers it), the good one delivered, the broken one refused
    assert answer.acknowledged
    assert pipeline.event("salesforce", f"{ORG15}:{record_id('04l', 1)}")["status"] == Status.DELIVERED
    assert [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)] == [{"email": "ada@example.com"}]
    refused = pipeline.store.events_by_status(Status.REFUSED, now - 1000, now_ms() + 1000)
    assert [r["reason"] for r in refused if str(r["pk"]).startswith("C#")] == [
        "invalid Salesforce notification: the notification has no usable Id"
    ]


@pytest.mark.parametrize(
    ("variant", "status", "code"),
    [
        ("another endpoint token", 401, "invalid_credentials"),
        ("no endpoint token", 401, "invalid_credentials"),
        ("an empty endpoint token", 401, "invalid_credentials"),
        ("the token twice", 401, "invalid_credentials"),
        ("a foreign organization", 403, "forbidden_sender"),
    ],
)
def test_an_unauthenticated_or_foreign_message_gets_a_client_fault_and_is_recorded_refused(
    pipeline: Pipeline, variant: str, status: int, code: str
) -> None:
    # Given an authentic Contact message turned unauthenticated or foreign
    start = now_ms()
    genuine = VENDOR.change(
        7, {ContactField.EMAIL: "ada@example.com"}, event_id=1, occurred_at_ms=start, secret=TOKEN, base_url=BASE_URL
    )
    request = VENDOR.forged(genuine)[variant]

    # When it is posted
    answer = post(pipeline, request)

    # Then the answer is a SOAP fault with the adapter's status, not an Ack, and nothing is queued
    assert answer.status == status
    assert not answer.acknowledged
    assert answer.fault
    assert b"<faultcode>soapenv:Client</faultcode>" in answer.body
    assert TOKEN.encode() not in answer.body
    assert pipeline.queued_messages() == 0
    # And the request is recorded refused once, with a digest of its body only
    records = pipeline.refused_requests("salesforce", start)
    assert [(r["http_status"], r["code"]) for r in records] == [(status, code)]
    assert records[0]["body_sha256"] == hashlib.sha256(request.body).hexdigest()


@pytest.mark.parametrize(
    "variant",
    [
        "not XML",
        "truncated",
        "billion laughs",
        "an external entity",
        "a DTD",
        "a SOAP envelope without notifications",
        "no notification",
        "nested 10,000 levels deep",
        "empty",
    ],
)
def test_a_broken_or_hostile_body_gets_a_400_fault_and_is_never_expanded(pipeline: Pipeline, variant: str) -> None:
    # Given an authentic request (right token) whose body is broken or hostile XML
    start = now_ms()
    request = VENDOR.malformed(secret=TOKEN, base_url=BASE_URL, occurred_at_ms=start)[variant]

    # When it is posted
    answer = post(pipeline, request)

    # Then it gets a 400 SOAP client fault (never a 5xx), nothing is queued, and it is recorded refused
    assert answer.status == 400
    assert answer.fault
    assert b"<faultcode>soapenv:Client</faultcode>" in answer.body
    assert b"lol" not in answer.body
    assert b"root:" not in answer.body
    assert pipeline.queued_messages() == 0
    assert [(r["http_status"], r["code"]) for r in pipeline.refused_requests("salesforce", start)] == [
        (400, "invalid_payload")
    ]


def test_another_content_type_gets_a_415_fault(pipeline: Pipeline) -> None:
    # Given the sample posted as JSON would be
    request = VENDOR.sample(secret=TOKEN, base_url=BASE_URL, now_ms=now_ms())
    request = request.replace(headers={"Content-Type": "application/json"})

    # When it is posted
    answer = post(pipeline, request)

    # Then Salesforce reads a SOAP client fault with 415
    assert answer.status == 415
    assert answer.fault
    assert answer.content_type.startswith("text/xml")


def test_a_storage_failure_gets_a_server_fault_so_salesforce_retries(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the table fails once while the Opportunity notification (settled at receive) is recorded
    monkeypatch.setattr(
        EventStore,
        "record_settled",
        fail_once(EventStore.record_settled, StorageUnavailable("DynamoDB is throttling")),
    )
    request = VENDOR.irrelevant(event_id=9, occurred_at_ms=now_ms(), secret=TOKEN, base_url=BASE_URL)

    # When Salesforce posts it, then redelivers it
    failed = post(pipeline, request)
    retried = post(pipeline, request)

    # Then the first answer is a 503 server fault (Salesforce retries), the redelivery is acknowledged
    assert failed.status == 503
    assert b"<faultcode>soapenv:Server</faultcode>" in failed.body
    assert not failed.acknowledged
    assert retried.acknowledged
    assert pipeline.event("salesforce", f"{ORG15}:{record_id('04l', 9)}")["status"] == Status.IGNORED


def test_an_unexpected_fault_is_a_soap_server_fault_that_names_no_detail(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fault nobody foresaw inside the receive step (its message carries a planted value)
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("planted-4c1e detail")

    monkeypatch.setattr("webhook_adapter.receive.Receiver.receive", broken)

    # When Salesforce posts its sample
    answer = post(pipeline, VENDOR.sample(secret=TOKEN, base_url=BASE_URL, now_ms=now_ms()))

    # Then it is a 500 in SOAP, a server fault Salesforce retries, repeating nothing of the fault
    assert answer.status == 500
    assert answer.content_type.startswith("text/xml")
    assert b"<faultcode>soapenv:Server</faultcode>" in answer.body
    assert b"planted-4c1e" not in answer.body
