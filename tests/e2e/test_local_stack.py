"""The whole pipeline over real HTTP: the local stack ``make run`` starts, driven as HubSpot drives it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from devstack.crm import generic_request, hubspot_event, hubspot_request
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.stack import LocalStack
from e2e.support import wait_for
from webhook_adapter.model import Status

CONTACT = 501
PORTAL = 62515


def settled(stack: LocalStack, keys: list[str]) -> dict[str, dict[str, Any]] | None:
    items = {key: stack.store.get_event("hubspot", key.rsplit(":", 3)[0], key) for key in keys}
    done = all(item and item["status"] not in {Status.QUEUED, Status.RETRYING} for item in items.values())
    return {key: item for key, item in items.items() if item} if done else None


def key_of(event: dict[str, Any]) -> str:
    return f"{event['portalId']}:{event['objectId']}:{event['propertyName']}:{event['occurredAt']}:{event['eventId']}"


def test_a_signed_hubspot_batch_becomes_exactly_one_patch_and_its_outcome_records(stack: LocalStack) -> None:
    assert stack.standin is not None
    # Given a HubSpot batch about one contact: its Sphere id, email, phone and every address part,
    # plus a property the adapter does not map, signed with the app's client secret for the public URL
    now = int(time.time() * 1000)
    batch = [
        hubspot_event(CONTACT, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 900, portal_id=PORTAL),
        hubspot_event(CONTACT, "email", "Ada@Example.COM", occurred_at=now - 800, portal_id=PORTAL),
        hubspot_event(CONTACT, "phone", "+44 20 7946 0958", occurred_at=now - 800, portal_id=PORTAL),
        hubspot_event(CONTACT, "address", "10 Downing Street", occurred_at=now - 700, portal_id=PORTAL),
        hubspot_event(CONTACT, "city", "London", occurred_at=now - 700, portal_id=PORTAL),
        hubspot_event(CONTACT, "zip", "SW1A 2AA", occurred_at=now - 700, portal_id=PORTAL),
        hubspot_event(CONTACT, "country", "GB", occurred_at=now - 700, portal_id=PORTAL),
        hubspot_event(CONTACT, "hs_lead_status", "OPEN", occurred_at=now - 700, portal_id=PORTAL),
    ]
    headers, body = hubspot_request(
        batch, secret=stack.secrets["HubSpotSecretArn"], url=f"{stack.url}/webhooks/hubspot"
    )

    # When it is POSTed to the local stack over HTTP
    answer = httpx.post(f"{stack.url}/webhooks/hubspot", headers=headers, content=body, timeout=10)

    # Then it is acknowledged at once with every event id
    assert answer.status_code == 202
    assert answer.json()["accepted"] == [str(event["eventId"]) for event in batch]
    assert answer.json()["settled"] == {"ignored": [str(batch[-1]["eventId"])]}

    # And, once delivered, the stand-in received exactly one PATCH with the normalized request
    items = wait_for(lambda: settled(stack, [key_of(event) for event in batch]))
    patches = stack.standin.patches(SEED_INDIVIDUAL_ID)
    assert [patch.body for patch in patches] == [
        {
            "email": "Ada@example.com",
            "phone": "+442079460958",
            "address": {
                "line1": "10 Downing Street",
                "city": "London",
                "postalCode": "SW1A 2AA",
                "country": "GBR",
            },
        }
    ]
    assert patches[0].headers["authorization"] == f"Bearer {stack.secrets['SphereTokenSecretArn']}"

    # And every event has its outcome: delivered with Sphere's answer, the unmapped property ignored
    statuses = {item["event_id"]: item["status"] for item in items.values()}
    assert statuses == {str(e["eventId"]): "delivered" for e in batch[:-1]} | {str(batch[-1]["eventId"]): "ignored"}
    delivered = items[key_of(batch[1])]
    assert delivered["customer_id"] == SEED_INDIVIDUAL_ID
    assert delivered["sphere"]["updated_at"] == stack.standin.customer(SEED_INDIVIDUAL_ID)["updatedAt"]
    assert delivered["sphere"]["kyc_status"] in {"incomplete", "pending"}
    assert delivered["request"]["email"] == "*****"  # PII masked in the record
    assert delivered["request"]["address"]["country"] == "GBR"
    assert [entry["status"] for entry in delivered["history"]] == ["queued", "delivered"]

    # And the contact's history lists every event of the batch
    history = stack.store.contact_history("hubspot", f"{PORTAL}:{CONTACT}")
    assert {item["event_id"] for item in history} == {str(event["eventId"]) for event in batch}

    # When HubSpot retries the same batch
    headers, body = hubspot_request(
        batch, secret=stack.secrets["HubSpotSecretArn"], url=f"{stack.url}/webhooks/hubspot"
    )
    again = httpx.post(f"{stack.url}/webhooks/hubspot", headers=headers, content=body, timeout=10)

    # Then it is acknowledged as duplicates and nothing more is sent
    assert again.status_code == 202
    assert again.json() == {"accepted": [], "duplicates": [str(event["eventId"]) for event in batch]}
    assert len(stack.standin.patches(SEED_INDIVIDUAL_ID)) == 1


def test_a_forged_request_is_refused_over_http_and_recorded(stack: LocalStack) -> None:
    # Given a generic webhook signed with the wrong secret
    headers, body = generic_request({"id": "c-1", "email": "x@example.com"}, secret="whsec_d3Jvbmc=")

    # When it is POSTed
    answer = httpx.post(f"{stack.url}/webhooks/generic", headers=headers, content=body, timeout=10)

    # Then it is refused with a JSON error naming the problem, without echoing the body
    assert answer.status_code == 401
    assert answer.json() == {
        "error": {"code": "invalid_signature", "message": "webhook-signature does not match the request"}
    }
    now = int(time.time() * 1000)
    refused = stack.store.events_by_status(Status.REFUSED, now - 60_000, now + 1000)
    assert any(item["http_status"] == 401 and item["source"] == "generic" for item in refused)


def test_routes_other_than_the_webhook_answer_404(stack: LocalStack) -> None:
    # When something else is requested
    answer = httpx.get(f"{stack.url}/webhooks/hubspot", timeout=10)

    # Then the answer is a 404, as from the deployed HTTP API
    assert answer.status_code == 404
