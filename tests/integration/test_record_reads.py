"""Reading the current record from the CRM, through the handlers: HubSpot contacts read from its objects API.

The receive and deliver handlers on moto, Sphere's stand-in, and the CRM stand-in serving HubSpot's contact
read (``devstack.crm_standin``); HubSpot reads contacts ``fetch-when-incomplete``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest

from devstack.crm import hubspot_event
from devstack.crm_standin import CrmStandIn
from devstack.pipeline import Pipeline
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from webhook_adapter import runtime
from webhook_adapter.model import Status

PORTAL = 62515


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def crm(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrmStandIn]:
    """HubSpot's contact read on the CRM stand-in; both functions read contacts when the events fall short."""
    with CrmStandIn(port=0) as standin:
        # The token's secret is the local stack's (HubSpotApiTokenSecretArn): the template names it to deliver.
        assert os.environ["HUBSPOT_API_TOKEN_SECRET_ID"]
        monkeypatch.setenv("HUBSPOT_READ_MODE", "fetch-when-incomplete")
        monkeypatch.setenv("HUBSPOT_API_URL", standin.base_url)
        runtime.reset()
        yield standin


def key_of(event: dict[str, Any]) -> str:
    return f"{event['portalId']}:{event['objectId']}:{event['propertyName']}:{event['occurredAt']}:{event['eventId']}"


def put_contact(crm: CrmStandIn, contact: int, values: Mapping[str, str | None], *, modified_at_ms: int) -> None:
    crm.put_record("hubspot", str(contact), values, modified_at_ms=modified_at_ms)


FULL = {
    "customer_id": SEED_INDIVIDUAL_ID,
    "email": "ada@example.com",
    "line1": "233 S Wacker Dr",
    "city": "Chicago",
    "state": "IL",
    "postal_code": "60606",
    "country": "US",
}


def test_a_redacted_value_is_replaced_by_the_value_read_from_hubspot(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given a known contact, and HubSpot's event for its email, which it redacted as sensitive
    at = now_ms() - 5000
    put_contact(crm, 601, {**FULL, "email": "grace@example.com"}, modified_at_ms=at + 100)
    known = hubspot_event(601, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=at - 1000, portal_id=PORTAL)
    redacted = hubspot_event(601, "email", "REDACTED", occurred_at=at, portal_id=PORTAL)

    # When the batch is received and delivered
    answer = pipeline.post_hubspot([known, redacted])
    pipeline.drain()

    # Then the contact was read once, and Sphere got the value read in place of the redacted one
    assert answer.status == 202
    assert len(crm.records_read("hubspot")) == 1
    [patch] = pipeline.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body is not None
    assert patch.body["email"] == "grace@example.com"
    item = pipeline.event("hubspot", key_of(redacted))
    assert item["status"] == Status.DELIVERED
    assert "completed by reading the CRM's record (redacted)" in item["reason"]


def test_an_address_known_in_part_is_completed_by_one_read(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given a contact whose city alone changed (the rest of its address never arrived), and its record in HubSpot
    at = now_ms() - 5000
    put_contact(crm, 602, FULL, modified_at_ms=at - 2000)
    events = [
        hubspot_event(602, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=at - 1000, portal_id=PORTAL),
        hubspot_event(602, "city", "Evanston", occurred_at=at, portal_id=PORTAL),
    ]

    # When delivered
    pipeline.post_hubspot(events)
    pipeline.drain()

    # Then one read completed the address, and the newer city from the event won over the read's older one
    assert len(crm.records_read("hubspot")) == 1
    [patch] = pipeline.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body is not None
    assert patch.body["address"] == {
        "line1": "233 S Wacker Dr",
        "city": "Evanston",
        "state": "IL",
        "postalCode": "60606",
        "country": "USA",
    }


def test_a_merge_reads_the_surviving_contact_and_carries_its_customer_id(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given two contacts merged in HubSpot; the survivor's record holds the Sphere customer id and an email
    at = now_ms() - 5000
    put_contact(crm, 701, {"customer_id": SEED_INDIVIDUAL_ID, "email": "merged@example.com"}, modified_at_ms=at)
    merge = {
        **hubspot_event(701, "email", None, occurred_at=at, portal_id=PORTAL),
        "subscriptionType": "contact.merge",
        "primaryObjectId": 701,
        "mergedObjectIds": [702],
    }
    del merge["propertyName"], merge["propertyValue"]

    # When the merge is received and delivered
    pipeline.post_hubspot([merge])
    pipeline.drain()

    # Then the survivor was read and Sphere got its values under the customer id it carries
    [patch] = pipeline.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body == {"email": "merged@example.com"}


def test_a_read_older_than_a_queued_change_loses_to_it(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given HubSpot's record as of before the contact's newest email change, and a city that asks for a read
    at = now_ms() - 5000
    put_contact(crm, 603, {**FULL, "email": "old@example.com"}, modified_at_ms=at - 3000)
    events = [
        hubspot_event(603, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=at - 1000, portal_id=PORTAL),
        hubspot_event(603, "email", "new@example.com", occurred_at=at, portal_id=PORTAL),
        hubspot_event(603, "city", "Chicago", occurred_at=at, portal_id=PORTAL),
    ]

    # When delivered (the city alone cannot make an address: the record is read)
    pipeline.post_hubspot(events)
    pipeline.drain()

    # Then the newer email from the event is sent, not the read's older one
    [patch] = pipeline.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body is not None
    assert patch.body["email"] == "new@example.com"


def test_a_contact_hubspot_no_longer_has_leaves_the_redacted_event_incomplete(
    pipeline: Pipeline, crm: CrmStandIn
) -> None:
    # Given a redacted value of a contact HubSpot has no record of (deleted since)
    redacted = hubspot_event(604, "email", "REDACTED", occurred_at=now_ms() - 1000, portal_id=PORTAL)

    # When delivered
    pipeline.post_hubspot([redacted])
    pipeline.drain()

    # Then the event is incomplete, saying the record is gone
    item = pipeline.event("hubspot", key_of(redacted))
    assert item["status"] == Status.INCOMPLETE
    assert "the CRM no longer has this record" in item["reason"]


@pytest.mark.parametrize(
    "fault",
    ["429 with Retry-After", "503", "timeout", "dropped connection", "token rotated"],
)
def test_a_failed_read_is_retried_like_a_call_sphere_could_not_take(
    pipeline: Pipeline, crm: CrmStandIn, fault: str
) -> None:
    assert pipeline.standin is not None
    # Given a redacted email whose read fails once
    at = now_ms() - 5000
    put_contact(crm, 605, FULL, modified_at_ms=at)
    if fault == "429 with Retry-After":
        crm.fail_next(1, 429, retry_after=0, crm="hubspot")
    elif fault == "503":
        crm.fail_next(1, 503, crm="hubspot")
    elif fault == "timeout":
        crm.timeout_next(1, 2.0)
    elif fault == "dropped connection":
        crm.drop_next(1)
    else:  # the private app's token was rotated: the stand-in wants the new one, Secrets Manager holds it
        crm.rotate_token("hubspot", "rotated-hubspot-token")
        boto3.client("secretsmanager").put_secret_value(
            SecretId=os.environ["HUBSPOT_API_TOKEN_SECRET_ID"], SecretString="rotated-hubspot-token"
        )
    known = hubspot_event(605, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=at - 1000, portal_id=PORTAL)
    redacted = hubspot_event(605, "email", "REDACTED", occurred_at=at - 500, portal_id=PORTAL)

    # When delivered (retries included)
    pipeline.post_hubspot([known, redacted])
    pipeline.drain(timeout=30)

    # Then the read succeeded in the end and Sphere got the value, once
    [patch] = pipeline.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body is not None
    assert patch.body["email"] == "ada@example.com"
    assert pipeline.event("hubspot", key_of(redacted))["status"] == Status.DELIVERED


HOSTILE_ANSWERS: dict[str, Any] = {
    "a JSON array": [{"id": "606"}],
    "properties that are not an object": {"id": "606", "properties": ["email"], "updatedAt": "2026-11-26T05:00:00Z"},
    "no modification time": {"id": "606", "properties": {"email": "x@example.com"}},
    "a modification time that is no time": {"id": "606", "properties": {}, "updatedAt": "yesterday"},
}


@pytest.mark.parametrize("answer", sorted(HOSTILE_ANSWERS))
def test_a_read_answered_with_something_that_is_no_contact_is_retried_then_dead_lettered_never_sent(
    pipeline: Pipeline, crm: CrmStandIn, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    assert pipeline.standin is not None
    # Given HubSpot answering the contact read with something that is not a contact, and two attempts allowed
    monkeypatch.setenv("MAX_RECEIVE_COUNT", "2")
    runtime.reset()
    crm.put_raw("hubspot", "606", HOSTILE_ANSWERS[answer])
    redacted = hubspot_event(606, "email", "REDACTED", occurred_at=now_ms() - 1000, portal_id=PORTAL)

    # When it is received and delivered, retries included
    pipeline.post_hubspot([redacted])
    pipeline.drain(timeout=30)

    # Then nothing reached Sphere, and the event ended dead-lettered naming HubSpot's answer, not a crash
    assert pipeline.standin.patches() == []
    item = pipeline.event("hubspot", key_of(redacted))
    assert item["status"] == Status.DEAD_LETTERED
    assert "HubSpot" in item["reason"]


def test_values_of_a_read_that_cannot_be_carried_are_left_out_and_the_rest_is_sent(
    pipeline: Pipeline, crm: CrmStandIn
) -> None:
    assert pipeline.standin is not None
    # Given HubSpot answering with a customer id, an email over the length cap and a city with a noncharacter
    properties = {
        "sphere_customer_id": SEED_INDIVIDUAL_ID,
        "email": "a" * 2000,
        "city": "Ber\uffffin",
        "phone": "+1 312 555 0100",
    }
    crm.put_raw("hubspot", "607", {"id": "607", "properties": properties, "updatedAt": "2026-01-01T00:00:00Z"})
    redacted = hubspot_event(607, "email", "REDACTED", occurred_at=1_700_000_000_000, portal_id=PORTAL)

    # When delivered
    pipeline.post_hubspot([redacted])
    pipeline.drain()

    # Then only what can be carried was sent
    [patch] = pipeline.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body == {"phone": "+13125550100"}
