"""The traffic every measure replays: HubSpot property changes, single or in batches of 100 over 10 contacts.

A contact of a batch sends its Sphere customer id, eight mapped properties and one unmapped one
(``lifecyclestage``, settled ``ignored`` on arrival): 10 events, 100 for 10 contacts, as the
write-cost test sends them. Deliver's records are built from the same shape without going through
receive, so a deliver probe never imports receive's code.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from devstack.crm import FULL_CONTACT, hubspot_event, hubspot_request
from devstack.lambda_events import sqs_record, webhook_event
from devstack.pipeline import PUBLIC_BASE_URL
from devstack.resources import LOCAL_SECRETS
from webhook_adapter.model import ContactChange, ContactField, SourceEvent

__all__ = [
    "BATCH_CONTACTS",
    "PORTAL",
    "PROPERTIES",
    "customer_id",
    "deliver_records",
    "hubspot_batch",
    "receive_event",
    "single_change",
]

PORTAL = 62515
BATCH_CONTACTS = 10
PROPERTIES = FULL_CONTACT
"""What each contact of a batch changes after its customer id (the last one is not mapped)."""
_FIELDS = {
    "sphere_customer_id": ContactField.CUSTOMER_ID,
    "email": ContactField.EMAIL,
    "phone": ContactField.PHONE,
    "mobilephone": ContactField.MOBILE_PHONE,
    "address": ContactField.LINE1,
    "city": ContactField.CITY,
    "state": ContactField.STATE,
    "zip": ContactField.POSTAL_CODE,
    "country": ContactField.COUNTRY,
}
_event_ids = itertools.count(7_000_000)


def customer_id(number: int) -> str:
    """The Sphere customer id of contact ``number``."""
    return f"customer_{number:032x}"


def hubspot_batch(first_contact: int, *, contacts: int = BATCH_CONTACTS, at: int = 10_000) -> list[dict[str, Any]]:
    """HubSpot's events for ``contacts`` new contacts: each its customer id and ``PROPERTIES``."""
    events = []
    for number in range(first_contact, first_contact + contacts):
        events.append(
            hubspot_event(number, "sphere_customer_id", customer_id(number), occurred_at=at, event_id=next(_event_ids))
        )
        events += [
            hubspot_event(number, prop, value, occurred_at=at + offset, event_id=next(_event_ids))
            for offset, (prop, value) in enumerate(PROPERTIES, start=1)
        ]
    return events


def single_change(number: int, prop: str, value: str, *, at: int) -> list[dict[str, Any]]:
    """One webhook carrying one property change of contact ``number``."""
    return [hubspot_event(number, prop, value, occurred_at=at, event_id=next(_event_ids))]


def receive_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    """API Gateway's event for a HubSpot batch posted now, signed for the configured public URL."""
    url = f"{PUBLIC_BASE_URL}/webhooks/hubspot"
    headers, body = hubspot_request(events, secret=LOCAL_SECRETS["HubSpotSecretArn"], url=url)
    return webhook_event("hubspot", headers, body)


def _source_event(event: dict[str, Any]) -> SourceEvent:
    key = f"{event['portalId']}:{event['objectId']}:{event['propertyName']}:{event['occurredAt']}:{event['eventId']}"
    return SourceEvent(
        key=key,
        event_id=str(event["eventId"]),
        contact_id=f"{event['portalId']}:{event['objectId']}",
        occurred_at=event["occurredAt"],
        kind=event["subscriptionType"],
        changes={_FIELDS[event["propertyName"]]: event["propertyValue"]},
    )


def deliver_records(first_contact: int, contacts: int, *, queue_arn: str) -> tuple[list[dict[str, Any]], list[str]]:
    """SQS records of ``contacts`` new contacts' changes (one message each, every mapped property), and their ids."""
    records, customers = [], []
    now = int(time.time() * 1000)
    for number in range(first_contact, first_contact + contacts):
        events = [event for event in hubspot_batch(number, contacts=1) if event["propertyName"] in _FIELDS]
        change = ContactChange(
            source="hubspot",
            contact_id=f"{PORTAL}:{number}",
            received_at=now,
            events=tuple(_source_event(event) for event in events),
        )
        records.append(sqs_record(change.model_dump_json(), queue_arn=queue_arn, group_id=change.group_id))
        customers.append(customer_id(number))
    return records, customers
