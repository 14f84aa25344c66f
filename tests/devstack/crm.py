"""Requests signed the way each CRM signs them: for the demo, the tests and ``make events``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from webhook_adapter.signatures import sign_hubspot_v3, sign_standard_webhook

__all__ = ["FULL_CONTACT", "generic_request", "hubspot_event", "hubspot_request"]

FULL_CONTACT = (
    ("email", "ada@example.com"),
    ("phone", "(312) 555-0142"),
    ("mobilephone", "+1 312 555 0143"),
    ("address", "233 S Wacker Dr"),
    ("city", "Chicago"),
    ("state", "Illinois"),
    ("zip", "60606"),
    ("country", "United States"),
    ("lifecyclestage", "customer"),
)
"""A HubSpot contact's property changes after its customer id: every mapped property, then one that is not."""

_JSON = "application/json"


def hubspot_event(
    object_id: int,
    property_name: str,
    value: str | None,
    *,
    occurred_at: int,
    event_id: int | None = None,
    portal_id: int = 62515,
) -> dict[str, Any]:
    """One ``contact.propertyChange`` event shaped as HubSpot sends it."""
    return {
        "eventId": event_id if event_id is not None else uuid.uuid4().int % 10**10,
        "subscriptionId": 4065,
        "portalId": portal_id,
        "appId": 1160452,
        "occurredAt": occurred_at,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": property_name,
        "propertyValue": value,
        "changeSource": "CRM_UI",
        "sourceId": "userId:1234",
    }


def hubspot_request(
    events: Sequence[Mapping[str, Any]], *, secret: str, url: str, timestamp_ms: int | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a HubSpot v3-signed webhook batch posted to ``url``."""
    body = json.dumps(list(events)).encode()
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    signature = sign_hubspot_v3(secret=secret, method="POST", uri=url, body=body, timestamp=timestamp)
    headers = {
        "Content-Type": _JSON,
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp,
        "User-Agent": "HubSpot Webhooks",
    }
    return headers, body


def generic_request(
    payload: Mapping[str, Any], *, secret: str, msg_id: str | None = None, timestamp: int | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a Standard Webhooks-signed contact."""
    body = json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "Content-Type": _JSON,
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": sign_standard_webhook(secret=secret, msg_id=msg_id, timestamp=stamp, body=body),
    }
    return headers, body
