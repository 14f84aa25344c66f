"""Keap REST hooks as Keap sends them: ``{event_key, object_type, object_keys: [...]}`` naming contacts only.

Keap signs nothing: the hook URL carries the endpoint token (``?token=``). Whatever ``change`` is given, it posts
one ``contact.edit`` of the contact, dated ``occurred_at_ms``; the values live in the Keap contact, which deliver
reads from Keap's API (the CRM read stand-in, ``devstack.crm_standin``). So ``fields`` is empty and ``record``
says where the contact is: a suite that checks delivered values (chaos) stores its new values there first, then
sends the hook, as Keap does. ``handshake`` is the subscription's verification request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from devstack.crm_shapes import KEAP_CUSTOMER_ID_FIELD_ID
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField

__all__ = ["FIXTURES", "VENDOR", "KeapApp", "hook_body", "hook_request", "object_key", "timestamp"]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "keap"
_SAMPLE_CONTACT = 12345
_CONTACT_BASE = 700_000
_RECORD_FIELDS = frozenset(ContactField)
"""What deliver reads of a contact: EMAIL1, PHONE1 and a mobile number, the BILLING address, the customer id field."""


def timestamp(epoch_ms: int) -> str:
    """A change time as the hook's ``timestamp`` (ISO 8601, milliseconds, UTC; the exact format is unconfirmed)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def object_key(contact_id: int, epoch_ms: int) -> dict[str, Any]:
    """One element of ``object_keys``: contact ``contact_id`` changed at ``epoch_ms``."""
    return {
        "apiUrl": f"https://api.infusionsoft.com/crm/rest/v1/contacts/{contact_id}",
        "id": contact_id,
        "timestamp": timestamp(epoch_ms),
    }


def hook_body(event_key: str, *keys: Any, object_type: str = "contact") -> bytes:
    """A delivery body around ``keys``, as Keap posts it."""
    return json.dumps(
        {"event_key": event_key, "object_type": object_type, "object_keys": list(keys), "api_url": ""}
    ).encode()


def hook_request(body: bytes, *, token: str | None, headers: Mapping[str, str] | None = None) -> VendorRequest:
    """``body`` posted to the hook URL with ``?token=`` (``None``: a URL without it)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    return VendorRequest("keap", sent, body, urlencode({"token": token}) if token is not None else "")


class KeapApp:
    """A Keap app with REST hooks on ``contact.add`` and ``contact.edit`` pointing at the adapter."""

    source = "keap"
    secret_parameter = "KeapSecretArn"
    secret_variable = "KEAP_ENDPOINT_TOKEN"
    local_secret = "local-keap-endpoint-token-0001"
    parameters: Mapping[str, str] = {"KeapCustomerIdFieldId": str(KEAP_CUSTOMER_ID_FIELD_ID)}
    full_record = False
    fields: frozenset[ContactField] = frozenset()
    """None: a hook names contact ids only, the values are read from the contact."""

    def contact_id(self, contact: int) -> str:
        return str(_CONTACT_BASE + contact)

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return f"contact.edit:{_CONTACT_BASE + contact}:{timestamp(occurred_at_ms)}"

    def record(self, contact: int) -> CrmRecordRef | None:
        return CrmRecordRef("keap", str(_CONTACT_BASE + contact), _RECORD_FIELDS)

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
        # Keap sends no value: the values are the contact's, read from Keap's API.
        return hook_request(
            hook_body("contact.edit", object_key(_CONTACT_BASE + contact, occurred_at_ms)), token=secret
        )

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        body = hook_body(
            "opportunity.add", object_key(_CONTACT_BASE + event_id, occurred_at_ms), object_type="opportunity"
        )
        return hook_request(body, token=secret)

    def handshake(self, *, secret: str, hook_secret: str) -> VendorRequest:
        """The verification ``POST`` Keap sends when the hook is created: no body, an ``X-Hook-Secret`` header."""
        return VendorRequest("keap", {"X-Hook-Secret": hook_secret}, b"", urlencode({"token": secret}))

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        return {
            "another endpoint token": request.replace(query=urlencode({"token": "not-the-token"})),
            "no endpoint token": request.replace(query=""),
            "an empty endpoint token": request.replace(query="token="),
            "the token given twice": request.replace(query=f"{request.query}&token=not-the-token"),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        def sent(body: bytes) -> VendorRequest:
            return hook_request(body, token=secret)

        key = object_key(_CONTACT_BASE + 1, occurred_at_ms)
        return {
            "not JSON": sent(b'{"event_key": "contact.edit", "object_keys": ['),
            "a JSON array": sent(b"[]"),
            "no object_keys": sent(json.dumps({"event_key": "contact.edit", "object_type": "contact"}).encode()),
            "no object key": sent(hook_body("contact.edit")),
            "object_keys that are not a list": sent(
                json.dumps({"event_key": "contact.edit", "object_type": "contact", "object_keys": key}).encode()
            ),
            "no event_key": sent(json.dumps({"object_type": "contact", "object_keys": [key]}).encode()),
            "more than 1000 object keys": sent(hook_body("contact.edit", *[key] * 1001)),
        }

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        document = json.loads((FIXTURES / "contact-edit.json").read_text(encoding="utf-8"))
        document["object_keys"][0] |= {"timestamp": timestamp(now_ms)}
        return hook_request(json.dumps(document).encode(), token=secret)

    def sample_expectation(self) -> SampleExpectation:
        # The hook names the contact only: deliver reads it from Keap (the CRM stand-in holds it), then sends it.
        record = {
            "customer_id": SEED_INDIVIDUAL_ID,
            "email": "ada.lovelace@example.com",
            "phone": "+1 312 555 0142",
            "line1": "233 S Wacker Dr",
            "city": "Chicago",
            "state": "IL",
            "postal_code": "60606",
            "country": "USA",
        }
        return SampleExpectation(
            contact_id=str(_SAMPLE_CONTACT),
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
            event_count=1,
            crm_record=("keap", str(_SAMPLE_CONTACT), record),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        return 200 <= status < 300

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = KeapApp()
