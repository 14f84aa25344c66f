"""HubSpot workflow "Send a webhook" actions as HubSpot sends them: one contact record per request, app-signed (v3)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField
from webhook_adapter.signatures import sign_hubspot_v3
from webhook_adapter.sources.hubspot import DEFAULT_FIELD_MAP

__all__ = ["SAMPLE", "VENDOR", "HubSpotWorkflow", "record", "signed_request"]

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "hubspot-workflow" / "contact-objects-api.json"
CUSTOMER_ID_PROPERTY = "sphere_customer_id"
_PROPERTY = {field: name for name, field in DEFAULT_FIELD_MAP.items()} | {
    ContactField.CUSTOMER_ID: CUSTOMER_ID_PROPERTY
}
_SAMPLE_RECORD_ID = "1001"


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def record(record_id: int | str, properties: Mapping[str, Any], *, updated_at_ms: int) -> dict[str, Any]:
    """A contact in the CRM objects API shape, as a workflow posts it."""
    stamp = _iso(updated_at_ms)
    return {
        "id": str(record_id),
        "properties": {**properties, "hs_object_id": str(record_id), "lastmodifieddate": stamp},
        "createdAt": "2026-01-05T09:00:00.000Z",
        "updatedAt": stamp,
        "archived": False,
    }


def signed_request(body: bytes, *, secret: str, base_url: str, timestamp_ms: int | None = None) -> VendorRequest:
    """``body`` posted by a workflow, with the app's v3 signature for the route's public URL."""
    stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    url = f"{base_url}/webhooks/hubspot-workflow"
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": sign_hubspot_v3(secret=secret, method="POST", uri=url, body=body, timestamp=stamp),
        "X-HubSpot-Request-Timestamp": stamp,
        "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WorkflowsWebhooksAction",
    }
    return VendorRequest("hubspot-workflow", headers, body)


class HubSpotWorkflow:
    """A contact-based workflow whose "Send a webhook" action is signed with the app's client secret."""

    source = "hubspot-workflow"
    secret_parameter = "HubSpotWorkflowSecretArn"
    secret_variable = "HUBSPOT_WORKFLOW_SECRET"
    local_secret = "local-hubspot-workflow-client-secret"
    parameters: Mapping[str, str] = {}
    full_record = True
    fields = frozenset(ContactField)

    def contact_id(self, contact: int) -> str:
        return str(contact)

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return f"{contact}@{_iso(occurred_at_ms)}"

    def record(self, contact: int) -> CrmRecordRef | None:
        return None  # the events carry the values

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
        properties = {_PROPERTY[field]: value for field, value in values.items()}
        body = json.dumps(record(contact, properties, updated_at_ms=occurred_at_ms)).encode()
        return signed_request(body, secret=secret, base_url=base_url)

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        properties = {"firstname": "Ada", "lifecyclestage": "customer"}
        body = json.dumps(record(event_id, properties, updated_at_ms=occurred_at_ms)).encode()
        return signed_request(body, secret=secret, base_url=base_url)

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        headers = dict(request.headers)
        return {
            "signed with another secret": request.replace(
                headers={**headers, "X-HubSpot-Signature-v3": "bm90IHRoZSBzaWduYXR1cmUgb2YgdGhpcyBib2R5IGF0IGFsbA=="}
            ),
            "no signature": request.replace(
                headers={k: v for k, v in headers.items() if k.lower() != "x-hubspot-signature-v3"}
            ),
            "body changed after signing": request.replace(body=request.body.replace(b'"id"', b'"ID"', 1)),
            "an API key instead of the signature": request.replace(
                headers={
                    **{k: v for k, v in headers.items() if not k.lower().startswith("x-hubspot-")},
                    "X-Api-Key": self.local_secret,
                }
            ),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        def signed(body: bytes) -> VendorRequest:
            return signed_request(body, secret=secret, base_url=base_url)

        return {
            "not JSON": signed(b'{"id": "1", "properties": {'),
            "a JSON array": signed(b"[]"),
            "no properties": signed(b'{"id": "1"}'),
            "no record id": signed(b'{"properties": {"email": "ada@example.com"}}'),
            "a property that is not text": signed(b'{"id": "1", "properties": {"email": ["ada@example.com"]}}'),
        }

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        document = json.loads(SAMPLE.read_text(encoding="utf-8"))
        document["id"] = _SAMPLE_RECORD_ID
        document["properties"] |= {"hs_object_id": _SAMPLE_RECORD_ID, CUSTOMER_ID_PROPERTY: SEED_INDIVIDUAL_ID}
        body = json.dumps(document).encode()
        return signed_request(body, secret=secret, base_url=base_url, timestamp_ms=now_ms)

    def sample_expectation(self) -> SampleExpectation:
        return SampleExpectation(
            contact_id=_SAMPLE_RECORD_ID,
            customer_id=SEED_INDIVIDUAL_ID,
            patch={
                "email": "bcooper@biglytics.net",
                "phone": "+18779290687",
                "address": {
                    "line1": "25 First Street",
                    "city": "Cambridge",
                    "state": "MA",
                    "postalCode": "02139",
                    "country": "USA",
                },
            },
            event_ids=(f"{_SAMPLE_RECORD_ID}@2019-12-07T16:50:06.678Z",),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        # HubSpot retries a workflow webhook on 429 and 5xx only: any other answer ends the delivery.
        return 200 <= status < 300

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = HubSpotWorkflow()
