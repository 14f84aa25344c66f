"""Write ``events/``: a ready event for every entry point, signed now (``make events``).

Salesforce Change Data Capture has no route: ``relay-salesforce-cdc.json`` is the EventBridge event Event
Relay's rule hands the receive function (``sam local invoke ReceiveFunction -e events/relay-salesforce-cdc.json``).

``sam local invoke ReceiveFunction -e events/receive-hubspot.json`` needs a signature whose
timestamp is within 5 minutes, so the files are written afresh by this tool rather than kept
signed forever. Each source's ready event is its vendor kit's sample; secrets come from each kit's variable
(``HUBSPOT_CLIENT_SECRET``, ...; the local defaults otherwise), the URL HubSpot signs from ``PUBLIC_BASE_URL``
(``make run``'s address).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.lambda_events import eventbridge_event, sqs_event, sqs_record, webhook_event
from devstack.resources import LOCAL_SECRETS, secrets_from_environment
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import VENDORS, VendorRequest, vendor
from webhook_adapter.enqueue import deduplication_id, message_group_id
from webhook_adapter.model import ContactChange, ContactField, SourceEvent

__all__ = ["EVENTS_DIR", "build_events", "main"]

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
LOCAL_BASE_URL = "http://127.0.0.1:3000"
_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:crm-sphere-webhooks-changes.fifo"


def _receive_event(request: VendorRequest) -> dict[str, Any]:
    event = webhook_event(
        request.source, {**request.headers, "host": "127.0.0.1:3000"}, request.body, query=request.query
    )
    # Readable in the console: the body as text (API Gateway sends JSON and XML bodies so too).
    event["body"], event["isBase64Encoded"] = request.body.decode(), False
    return event


def build_events(*, now_ms: int, secrets: Mapping[str, str], public_base_url: str) -> dict[str, dict[str, Any]]:
    """Every ready event by file name, signed at ``now_ms``."""
    ready = {}
    for source in VENDORS:
        kit = vendor(source)
        request = kit.sample(secret=secrets[kit.secret_parameter], base_url=public_base_url, now_ms=now_ms)
        ready[f"receive-{source}.json"] = _receive_event(request)

    change = ContactChange(
        source="generic",
        contact_id="crm-contact-43",
        received_at=now_ms,
        events=(
            SourceEvent(
                key="msg_sqs_ready_event_1",
                event_id="msg_sqs_ready_event_1",
                contact_id="crm-contact-43",
                occurred_at=now_ms - 1000,
                kind="contact",
                changes={
                    ContactField.CUSTOMER_ID: SEED_INDIVIDUAL_ID,
                    ContactField.EMAIL: "katherine.johnson@example.com",
                },
            ),
        ),
    )
    record = sqs_record(
        change.model_dump_json(),
        queue_arn=_QUEUE_ARN,
        group_id=message_group_id(change),
        dedup_id=deduplication_id(change),
        message_id="059f36b4-87a3-44ab-83d2-661975830a7d",
        receipt_handle="AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
    )
    return {
        **ready,
        "relay-salesforce-cdc.json": salesforce_cdc_event(now_ms=now_ms),
        "deliver-sqs.json": sqs_event([record]),
    }


def salesforce_cdc_event(*, now_ms: int) -> dict[str, Any]:
    """Event Relay's ``ContactChangeEvent``: a Contact's email and Sphere customer id changed ``now_ms`` (an UPDATE)."""
    header = {
        "entityName": "Contact",
        "changeType": "UPDATE",
        "changedFields": ["Email", "Sphere_Customer_Id__c", "LastModifiedDate"],
        "nulledFields": [],
        "diffFields": [],
        "recordIds": ["0035e00000AbCdEAAV"],
        "commitTimestamp": now_ms - 1000,
        "commitNumber": (now_ms - 1000) * 1000,
        "commitUser": "005Rj000005UEfQIAW",
        "sequenceNumber": 1,
        "transactionKey": "0000d978-0333-d593-c68b-98759eaddd49",
        "changeOrigin": "com/salesforce/api/rest/62.0",
    }
    payload = {
        "ChangeEventHeader": header,
        "Email": "katherine.johnson@example.com",
        "Sphere_Customer_Id__c": SEED_INDIVIDUAL_ID,
    }
    return eventbridge_event(
        "ContactChangeEvent",
        {"payload": payload, "schemaId": "nwh_psdDreneoyiZ-rwk8w"},
        event_id="3f7c5b2e-9d41-4a6e-b8c2-1e0f5a7d9c34",
        time_ms=now_ms,
    )


def main() -> None:
    """Write the events, signed now."""
    secrets = {**LOCAL_SECRETS, **secrets_from_environment()}
    base_url = os.environ.get("PUBLIC_BASE_URL", LOCAL_BASE_URL).rstrip("/")
    events = build_events(now_ms=int(time.time() * 1000), secrets=secrets, public_base_url=base_url)
    EVENTS_DIR.mkdir(exist_ok=True)
    for name, event in events.items():
        (EVENTS_DIR / name).write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        print(f"wrote events/{name}")
    print("Signatures are valid for 5 minutes: sam local invoke -e events/<file> now.")


if __name__ == "__main__":
    main()
