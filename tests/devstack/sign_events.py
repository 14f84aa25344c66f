"""Write ``events/``: a ready event for every entry point (``make events``).

Two sets, so that running it leaves git clean:

- ``events/*.json`` (tracked): every event signed with the local secrets at a fixed moment
  (``FIXED_MS``), its request id derived from its name. Rewriting them gives the same bytes; they change
  only when a vendor kit or the event shapes do. Salesforce Change Data Capture has no route:
  ``relay-salesforce-cdc.json`` is the EventBridge event Event Relay's rule hands the receive function.
- ``events/signed/receive-<source>.json`` (ignored by git): each source's request signed now, with the
  secrets in each kit's variable (``HUBSPOT_CLIENT_SECRET``, ...; the local ones otherwise) and the URL
  HubSpot signs from ``PUBLIC_BASE_URL`` (``make run``'s address). The sources in ``FRESH_SIGNATURE``
  refuse a signature older than 5 minutes, so ``sam local invoke`` needs these for them; for the others
  (and the deliver and relay events, which carry no signature) the tracked files work as they are.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devstack.lambda_events import eventbridge_event, sqs_event, sqs_record, webhook_event
from devstack.resources import LOCAL_SECRETS, secrets_from_environment
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import VENDORS, VendorRequest, vendor
from webhook_adapter.enqueue import deduplication_id, message_group_id
from webhook_adapter.model import ContactChange, ContactField, SourceEvent

__all__ = ["EVENTS_DIR", "FIXED_MS", "FRESH_SIGNATURE", "SIGNED_DIR", "build_events", "main", "write_events"]

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
SIGNED_DIR = "signed"
"""The folder under ``events/`` (ignored by git) that holds the requests signed now."""
LOCAL_BASE_URL = "http://127.0.0.1:3000"
FIXED_MS = 1_795_599_000_000
"""2026-11-25T09:30:00Z: when the tracked events are signed, so that writing them again changes nothing."""
FRESH_SIGNATURE = frozenset({"close", "generic", "hubspot", "hubspot-workflow"})
"""Sources whose signature carries a timestamp checked within 5 minutes: use ``events/signed/`` for them."""
_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:crm-sphere-webhooks-changes.fifo"


def _receive_event(request: VendorRequest, *, now_ms: int) -> dict[str, Any]:
    event = webhook_event(
        request.source, {**request.headers, "host": "127.0.0.1:3000"}, request.body, query=request.query
    )
    # Readable in the console: the body as text (API Gateway sends JSON and XML bodies so too).
    event["body"], event["isBase64Encoded"] = request.body.decode(), False
    # The request's time is the signing time and its id follows from both: the same inputs write the same file.
    context = event["requestContext"]
    context["requestId"] = uuid.uuid5(uuid.NAMESPACE_URL, f"{request.source}@{now_ms}").hex
    context["time"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now_ms / 1000))
    context["timeEpoch"] = now_ms
    return event


def build_events(*, now_ms: int, secrets: Mapping[str, str], public_base_url: str) -> dict[str, dict[str, Any]]:
    """Every ready event by file name, signed at ``now_ms`` (the same arguments give the same events)."""
    ready = {}
    for source in VENDORS:
        kit = vendor(source)
        request = kit.sample(secret=secrets[kit.secret_parameter], base_url=public_base_url, now_ms=now_ms)
        ready[f"receive-{source}.json"] = _receive_event(request, now_ms=now_ms)

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
        sent_timestamp=now_ms,
        first_receive_timestamp=now_ms,
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


def _write(directory: Path, events: Mapping[str, dict[str, Any]]) -> list[Path]:
    """Write each event as indented JSON; the paths whose bytes changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, event in events.items():
        path = directory / name
        text = json.dumps(event, indent=2) + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def write_events(directory: Path, environ: Mapping[str, str], *, now_ms: int) -> tuple[list[Path], list[Path]]:
    """The tracked events (fixed, local secrets) into ``directory``, the receive events signed at ``now_ms`` with
    ``environ``'s secrets and ``PUBLIC_BASE_URL`` into its ``signed/`` folder; the paths written in each."""
    tracked = build_events(now_ms=FIXED_MS, secrets=LOCAL_SECRETS, public_base_url=LOCAL_BASE_URL)
    secrets = {**LOCAL_SECRETS, **secrets_from_environment(environ)}
    base_url = environ.get("PUBLIC_BASE_URL", LOCAL_BASE_URL).rstrip("/")
    fresh = build_events(now_ms=now_ms, secrets=secrets, public_base_url=base_url)
    signed = {name: event for name, event in fresh.items() if name.startswith("receive-")}
    return _write(directory, tracked), _write(directory / SIGNED_DIR, signed)


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is under it (``events/...`` from the repository)."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def main(argv: Sequence[str] = sys.argv[1:]) -> None:
    """Write the events into ``events/`` (or the folder given) and its ``signed/`` folder."""
    directory = Path(argv[0]).resolve() if argv else EVENTS_DIR
    changed, signed = write_events(directory, os.environ, now_ms=int(time.time() * 1000))
    for path in changed:
        print(f"wrote {_shown(path)}")
    print(f"{_shown(directory)}: {len(changed)} tracked event(s) changed (signed at a fixed time: same files)")
    print(f"{_shown(directory / SIGNED_DIR)}: {len(signed)} receive events signed now, valid for 5 minutes:")
    print(f"  sam local invoke ReceiveFunction -e {_shown(directory / SIGNED_DIR)}/receive-<source>.json")


if __name__ == "__main__":
    main()
