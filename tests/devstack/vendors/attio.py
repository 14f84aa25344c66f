"""Attio webhooks as Attio sends them: ``{webhook_id, events: [...]}`` naming records only, signed with the secret.

An Attio event carries no value: whatever ``change`` is given, it posts one ``record.updated`` of the contact's
person record. The values live in the CRM record, which deliver reads from Attio's API (the CRM read stand-in,
``devstack.crm_standin``): ``fields`` is empty and ``record`` says where that record is, so a suite that checks
delivered values (chaos) stores the person's new values there first, then sends the event, as Attio does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField
from webhook_adapter.signatures import sign_attio

__all__ = [
    "COMPANIES_OBJECT_ID",
    "FIXTURES",
    "PEOPLE_OBJECT_ID",
    "VENDOR",
    "WORKSPACE_ID",
    "AttioWorkspace",
    "record_event",
    "signed_request",
    "webhook_body",
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "attio"
PEOPLE_OBJECT_ID = "97052eb9-e65e-443f-a297-f2d9a4a7f795"
"""The people object of Attio's documented sample (and the local ``AttioPeopleObjectId``)."""
COMPANIES_OBJECT_ID = "c0a2b6e1-7a51-4b0e-9b7e-0c0a7f1e2d3c"
"""Another object of the test workspace (its companies)."""
WORKSPACE_ID = "0f1e2d3c-0000-4000-8000-00000000a771"
_SAMPLE_RECORD = "0f1e2d3c-0000-4000-8000-0000000005a1"
_SAMPLE_DELIVERY = "0f1e2d3c-0000-4000-9000-0000000005a1"
_WEBHOOK_ID = "0f1e2d3c-0000-4000-a000-000000000001"
_RECORD_FIELDS = frozenset(ContactField) - {ContactField.MOBILE_PHONE}
"""What deliver reads of a person: its first email and phone, its primary location, the customer id attribute."""


def _record_id(contact: int) -> str:
    """The Attio record id (a UUID) of test contact ``contact``."""
    return str(uuid.UUID(int=(0x0F1E2D3C_0000_4000_8000 << 48) | contact))


def _delivery(event_id: int) -> str:
    """The ``Idempotency-Key`` Attio gives the delivery numbered ``event_id`` (the same on each of its retries)."""
    return str(uuid.UUID(int=(0x0F1E2D3C_0000_4000_9000 << 48) | event_id))


def record_event(event_type: str, record_id: str, *, object_id: str = PEOPLE_OBJECT_ID) -> dict[str, Any]:
    """One element of ``events`` as Attio documents it: a record of the test workspace changed."""
    return {
        "event_type": event_type,
        "id": {
            "workspace_id": WORKSPACE_ID,
            "object_id": object_id,
            "record_id": record_id,
            "attribute_id": "41252299-f8c7-4b5e-99c9-4ff8321d2f96",
        },
        "actor": {"type": "workspace-member", "id": "50cf242c-7fa3-4cad-87d0-75b1af71c57b"},
    }


def webhook_body(*events: Any) -> bytes:
    """A webhook body around ``events``, as Attio posts it."""
    return json.dumps({"webhook_id": _WEBHOOK_ID, "events": list(events)}).encode()


def signed_request(body: bytes, *, secret: str, idempotency_key: str | None) -> VendorRequest:
    """``body`` with Attio's ``Attio-Signature`` for ``secret`` and, unless ``None``, its ``Idempotency-Key``."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Attio-Signature": sign_attio(secret=secret, body=body),
        "User-Agent": "Attio-Webhooks",
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return VendorRequest("attio", headers, body)


class AttioWorkspace:
    """An Attio workspace with a webhook subscribed to the people's record events."""

    source = "attio"
    secret_parameter = "AttioSecretArn"
    secret_variable = "ATTIO_WEBHOOK_SECRET"
    local_secret = "local-attio-webhook-secret-0001"
    parameters: Mapping[str, str] = {"AttioPeopleObjectId": PEOPLE_OBJECT_ID}
    full_record = False
    fields: frozenset[ContactField] = frozenset()
    """None: an Attio event carries ids only, its values are read from the record."""

    def contact_id(self, contact: int) -> str:
        return f"{WORKSPACE_ID}:{_record_id(contact)}"

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return f"{_delivery(event_id)}:0"

    def record(self, contact: int) -> CrmRecordRef | None:
        return CrmRecordRef("attio", _record_id(contact), _RECORD_FIELDS)

    def change(
        self,
        contact: int,
        values: Mapping[ContactField, str | None],
        *,
        event_id: int,
        occurred_at_ms: int,
        secret: str,
        base_url: str,
    ) -> VendorRequest:
        # Attio sends no value and no change time: the values are the record's, read from Attio's API.
        body = webhook_body(record_event("record.updated", _record_id(contact)))
        return signed_request(body, secret=secret, idempotency_key=_delivery(event_id))

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        body = webhook_body(record_event("record.updated", _record_id(event_id), object_id=COMPANIES_OBJECT_ID))
        return signed_request(body, secret=secret, idempotency_key=_delivery(event_id))

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        headers = dict(request.headers)
        key = headers.get("Idempotency-Key")
        return {
            "signed with another secret": signed_request(request.body, secret="not-the-secret", idempotency_key=key),
            "no signature": request.replace(headers={k: v for k, v in headers.items() if k != "Attio-Signature"}),
            "body changed after signing": request.replace(body=request.body.replace(b"record.", b"RECORD.", 1)),
            "the signature of an empty body": request.replace(
                headers={**headers, "Attio-Signature": sign_attio(secret=self.local_secret, body=b"")}
            ),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        def signed(body: bytes) -> VendorRequest:
            return signed_request(body, secret=secret, idempotency_key=_delivery(occurred_at_ms))

        event = record_event("record.updated", _record_id(1))
        return {
            "not JSON": signed(b'{"webhook_id": "w", "events": ['),
            "a JSON array": signed(b"[]"),
            "no events": signed(json.dumps({"webhook_id": _WEBHOOK_ID}).encode()),
            "no event in events": signed(webhook_body()),
            "events that are not a list": signed(json.dumps({"webhook_id": _WEBHOOK_ID, "events": event}).encode()),
            "no webhook_id": signed(json.dumps({"events": [event]}).encode()),
        }

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        document = json.loads((FIXTURES / "record-updated.json").read_text(encoding="utf-8"))
        document["webhook_id"] = _WEBHOOK_ID
        document["events"][0]["id"] |= {"workspace_id": WORKSPACE_ID, "record_id": _SAMPLE_RECORD}
        return signed_request(json.dumps(document).encode(), secret=secret, idempotency_key=_SAMPLE_DELIVERY)

    def sample_expectation(self) -> SampleExpectation:
        # The event names the record only: deliver reads it from Attio (the CRM stand-in holds it), then sends it.
        record = {
            "customer_id": SEED_INDIVIDUAL_ID,
            "email": "ada.lovelace@example.com",
            "phone": "+1 312 555 0142",
            "line1": "233 S Wacker Dr",
            "city": "Chicago",
            "state": "IL",
            "postal_code": "60606",
            "country": "US",
        }
        return SampleExpectation(
            contact_id=f"{WORKSPACE_ID}:{_SAMPLE_RECORD}",
            customer_id=SEED_INDIVIDUAL_ID,
            patch={
                "email": "ada.lovelace@example.com",
                "phone": "+13125550142",
                "address": {
                    "line1": "233 S Wacker Dr",
                    "city": "Chicago",
                    "state": "IL",
                    "postalCode": "60606",
                    "country": "USA",
                },
            },
            event_ids=(f"{_SAMPLE_DELIVERY}:0",),
            crm_record=("attio", _SAMPLE_RECORD, record),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        return 200 <= status < 300

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = AttioWorkspace()
