"""The generic source's sender: any system signing a JSON contact with Standard Webhooks."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.crm import generic_request
from devstack.sphere_standin import SEED_KYC_SUBMITTED_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField
from webhook_adapter.signatures import sign_standard_webhook
from webhook_adapter.sources.generic import DEFAULT_FIELD_MAP

__all__ = ["SAMPLE", "VENDOR", "GenericSender"]

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "generic" / "contact.json"
"""The contact the ready event and the sample tests post (the generic source has no vendor of its own)."""


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class GenericSender:
    """Posts one contact per request, every field at its dotted path, signed with the ``whsec_`` secret."""

    source = "generic"
    secret_parameter = "GenericSecretArn"
    secret_variable = "GENERIC_WEBHOOK_SECRET"
    local_secret = "whsec_bG9jYWwtZ2VuZXJpYy13ZWJob29rLXNlY3JldA=="
    parameters: Mapping[str, str] = {}
    full_record = True
    fields = frozenset(ContactField)

    def contact_id(self, contact: int) -> str:
        return f"crm-contact-{contact}"

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return f"msg_{event_id}"

    def record(self, contact: int) -> CrmRecordRef | None:
        return None  # the events carry the values

    def _post(self, payload: Mapping[str, Any], *, event_id: int, occurred_at_ms: int, secret: str) -> VendorRequest:
        headers, body = generic_request(payload, secret=secret, msg_id=f"msg_{event_id}", timestamp=int(time.time()))
        return VendorRequest(self.source, headers, body)

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
        payload: dict[str, Any] = {"id": self.contact_id(contact), "updatedAt": _iso(occurred_at_ms)}
        for field, value in values.items():
            *parents, leaf = DEFAULT_FIELD_MAP[field].split(".")
            node = payload
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
        return self._post(payload, event_id=event_id, occurred_at_ms=occurred_at_ms, secret=secret)

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        payload = {"id": "crm-contact-0", "updatedAt": _iso(occurred_at_ms), "lifecycleStage": "customer"}
        return self._post(payload, event_id=event_id, occurred_at_ms=occurred_at_ms, secret=secret)

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        headers = dict(request.headers)
        return {
            "signed with another secret": self._post(
                json.loads(request.body),
                event_id=1,
                occurred_at_ms=0,
                secret="whsec_b3RoZXItc2VjcmV0LW9mLWFub3RoZXItc2VuZGVy",
            ),
            "no signature": request.replace(headers={k: v for k, v in headers.items() if k != "webhook-signature"}),
            "body changed after signing": request.replace(body=request.body.replace(b"crm-contact", b"crm-contakt")),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        def signed(body: bytes) -> VendorRequest:
            msg_id, stamp = f"msg_bad_{len(body)}", str(int(time.time()))
            signature = sign_standard_webhook(secret=secret, msg_id=msg_id, timestamp=stamp, body=body)
            headers = {
                "Content-Type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": stamp,
                "webhook-signature": signature,
            }
            return VendorRequest(self.source, headers, body)

        return {"not JSON": signed(b"{not json"), "a JSON array": signed(b"[]"), "empty": signed(b"")}

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        payload = json.loads(SAMPLE.read_text(encoding="utf-8"))
        payload["updatedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000))
        headers, body = generic_request(payload, secret=secret, msg_id="msg_2Lh9p8n4Xb0yQ7", timestamp=now_ms // 1000)
        return VendorRequest(self.source, headers, body)

    def sample_expectation(self) -> SampleExpectation:
        return SampleExpectation(
            contact_id="crm-contact-42",
            customer_id=SEED_KYC_SUBMITTED_ID,
            patch={
                "email": "grace.hopper@example.org",
                "phone": "+12125550199",
                "address": {
                    "line1": "1 Main St",
                    "city": "New York",
                    "state": "NY",
                    "postalCode": "10001",
                    "country": "USA",
                },
            },
            event_ids=("msg_2Lh9p8n4Xb0yQ7",),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        return 200 <= status < 300

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = GenericSender()
