"""Close webhooks as Close sends them: one event per request, signed with the subscription's hex signature key.

Close keeps emails and phones on the contact and postal addresses on the lead, and sends each list whole: ``change``
posts a contact event for email and phone fields and a lead event (its own record, ``lead_contact_id``) for address
fields, and refuses what one Close event cannot say (contact and address fields together, one phone without the
other, part of an address).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.sphere_standin import SEED_KYC_SUBMITTED_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField
from webhook_adapter.signatures import sign_close
from webhook_adapter.sources.close import ADDRESS_PARTS

__all__ = ["FIXTURES", "ORGANIZATION", "VENDOR", "CloseOrganization", "event_body", "signed_request"]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "close"
ORGANIZATION = "orga_testLocalOrganization0001"
CUSTOMER_ID_FIELD = "custom.cf_Rz3dn8bEjjVjuT4sWmEu0bqmd5ZBfYOjZiiYOdlPa7Z"
"""The Sphere customer id custom field of the documented-shape contact sample (and the local stack's setting)."""
_SAMPLE_CONTACT = "cont_testSampleContact0001"
_SAMPLE_EVENT = "ev_testSampleEvent0001"
_CONTACT_FIELDS = frozenset({ContactField.EMAIL, ContactField.PHONE, ContactField.MOBILE_PHONE})
_ADDRESS_FIELDS = frozenset(ADDRESS_PARTS.values())


def _close_time(ms: int) -> str:
    """Close's event time: ISO 8601, microseconds, no zone (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}000"


def event_body(event: Mapping[str, Any]) -> bytes:
    """A webhook body around ``event``, as Close posts it."""
    return json.dumps({"event": dict(event), "subscription_id": "whsub_testSubscription0001"}).encode()


def signed_request(body: bytes, *, key: str, timestamp: int | None = None) -> VendorRequest:
    """``body`` with Close's ``close-sig-hash`` and ``close-sig-timestamp`` (epoch seconds) for ``key``."""
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "close-sig-hash": sign_close(key=key, timestamp=stamp, body=body),
        "close-sig-timestamp": stamp,
        "User-Agent": "Close Webhooks",
    }
    return VendorRequest("close", headers, body)


def _fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


class CloseOrganization:
    """A Close organization with a webhook subscription to contact and lead events."""

    source = "close"
    secret_parameter = "CloseSecretArn"
    secret_variable = "CLOSE_SIGNATURE_KEY"
    local_secret = "6c6f63616c2d636c6f73652d7369676e61747572652d6b65792d30303031"
    parameters: Mapping[str, str] = {"CloseCustomerIdField": CUSTOMER_ID_FIELD}
    full_record = True
    fields = frozenset({ContactField.CUSTOMER_ID, *_CONTACT_FIELDS})

    def contact_id(self, contact: int) -> str:
        return f"{ORGANIZATION}:cont_test{contact}"

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return f"ev_test{event_id}"

    def record(self, contact: int) -> CrmRecordRef | None:
        return None  # the events carry the values

    def lead_contact_id(self, contact: int) -> str:
        """The adapter's contact id of the lead ``change`` posts address fields of."""
        return f"{ORGANIZATION}:lead_test{contact}"

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
        fields = set(values) - {ContactField.CUSTOMER_ID}
        data: dict[str, Any] = {"organization_id": ORGANIZATION, "lead_id": f"lead_test{contact}"}
        if fields <= _CONTACT_FIELDS:
            object_type, object_id = "contact", f"cont_test{contact}"
            if ContactField.EMAIL in values:
                email = values[ContactField.EMAIL]
                data["emails"] = [{"type": "office", "email": email}] if email is not None else []
            if fields & {ContactField.PHONE, ContactField.MOBILE_PHONE}:
                # Close sends a contact's phones as one list: a phone not given is not in it, so it reads as cleared.
                phones = [("office", values.get(ContactField.PHONE)), ("mobile", values.get(ContactField.MOBILE_PHONE))]
                data["phones"] = [{"type": kind, "phone": phone} for kind, phone in phones if phone is not None]
        elif fields == _ADDRESS_FIELDS:
            object_type, object_id = "lead", f"lead_test{contact}"
            data["addresses"] = [{"label": "business", **{part: values[f] for part, f in ADDRESS_PARTS.items()}}]
        else:
            raise ValueError("one Close event carries a contact's emails and phones, or its lead's whole address")
        if ContactField.CUSTOMER_ID in values:
            data[CUSTOMER_ID_FIELD] = values[ContactField.CUSTOMER_ID]
        data["id"] = object_id
        event = {
            "id": f"ev_test{event_id}",
            "object_type": object_type,
            "object_id": object_id,
            "action": "updated",
            "organization_id": ORGANIZATION,
            "date_created": _close_time(occurred_at_ms),
            "date_updated": _close_time(occurred_at_ms),
            "changed_fields": sorted(key for key in data if key not in {"id", "organization_id", "lead_id"}),
            "previous_data": {},
            "data": data,
        }
        return signed_request(event_body(event), key=secret)

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        event = _fixture("opportunity-updated.json")["event"]
        event |= {
            "id": f"ev_test{event_id}",
            "organization_id": ORGANIZATION,
            "date_updated": _close_time(occurred_at_ms),
        }
        return signed_request(event_body(event), key=secret)

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        headers = dict(request.headers)
        return {
            "signed with another key": signed_request(request.body, key="ab" * 32),
            "no signature": request.replace(headers={k: v for k, v in headers.items() if k != "close-sig-hash"}),
            "body changed after signing": request.replace(body=request.body.replace(b"ev_", b"EV_", 1)),
            "signed seven minutes ago": signed_request(
                request.body, key=self.local_secret, timestamp=int(time.time()) - 420
            ),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        contact = _fixture("contact-updated.json")["event"]
        no_id = {key: value for key, value in contact.items() if key != "id"}
        return {
            "not JSON": signed_request(b'{"event": {', key=secret),
            "a JSON array": signed_request(b"[]", key=secret),
            "no event": signed_request(b'{"subscription_id": "whsub_1"}', key=secret),
            "an event without an id": signed_request(event_body(no_id), key=secret),
            "emails that are not a list": signed_request(
                event_body({**contact, "data": {**contact["data"], "emails": "m.jones@kline.example"}}), key=secret
            ),
        }

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        event = _fixture("contact-updated.json")["event"]
        event |= {"id": _SAMPLE_EVENT, "object_id": _SAMPLE_CONTACT, "organization_id": ORGANIZATION}
        event["data"] |= {"id": _SAMPLE_CONTACT, "organization_id": ORGANIZATION}
        event["data"][CUSTOMER_ID_FIELD] = SEED_KYC_SUBMITTED_ID
        return signed_request(event_body(event), key=secret, timestamp=now_ms // 1000)

    def sample_expectation(self) -> SampleExpectation:
        return SampleExpectation(
            contact_id=f"{ORGANIZATION}:{_SAMPLE_CONTACT}",
            customer_id=SEED_KYC_SUBMITTED_ID,
            patch={"email": "m.jones@kline.example", "phone": "+16505550199"},
            event_ids=(_SAMPLE_EVENT,),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        return 200 <= status < 300

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = CloseOrganization()
