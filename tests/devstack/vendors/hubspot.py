"""HubSpot app webhooks as HubSpot sends them: v3-signed batches of one-property change events."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from devstack.crm import hubspot_event, hubspot_request
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField
from webhook_adapter.signatures import sign_hubspot_v3
from webhook_adapter.sources.hubspot import DEFAULT_FIELD_MAP

__all__ = ["VENDOR", "HubSpotApp"]

PORTAL = 62515
_PROPERTY = {field: name for name, field in DEFAULT_FIELD_MAP.items()} | {
    ContactField.CUSTOMER_ID: "sphere_customer_id"
}


class HubSpotApp:
    """A HubSpot app with contact property-change subscriptions."""

    source = "hubspot"
    secret_parameter = "HubSpotSecretArn"
    secret_variable = "HUBSPOT_CLIENT_SECRET"
    local_secret = "local-hubspot-client-secret"
    parameters: Mapping[str, str] = {}
    full_record = False
    fields = frozenset(ContactField)

    def contact_id(self, contact: int) -> str:
        return f"{PORTAL}:{contact}"

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return str(event_id * 100)

    def record(self, contact: int) -> CrmRecordRef | None:
        return None  # the events carry the values

    def _post(self, events: list[dict[str, object]], *, secret: str, base_url: str) -> VendorRequest:
        headers, body = hubspot_request(events, secret=secret, url=f"{base_url}/webhooks/hubspot")
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
        events = [
            hubspot_event(contact, _PROPERTY[field], value, occurred_at=occurred_at_ms, event_id=event_id * 100 + index)
            for index, (field, value) in enumerate(values.items())
        ]
        return self._post(events, secret=secret, base_url=base_url)

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        event = hubspot_event(1, "lifecyclestage", "customer", occurred_at=occurred_at_ms, event_id=event_id)
        return self._post([event], secret=secret, base_url=base_url)

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        headers = dict(request.headers)
        return {
            "signed with another secret": request.replace(
                headers={**headers, "X-HubSpot-Signature-v3": "bm90IHRoZSBzaWduYXR1cmUgb2YgdGhpcyBib2R5IGF0IGFsbA=="}
            ),
            "no signature": request.replace(
                headers={k: v for k, v in headers.items() if k.lower() != "x-hubspot-signature-v3"}
            ),
            "body changed after signing": request.replace(body=request.body.replace(b"portalId", b"portalid")),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        url = f"{base_url}/webhooks/hubspot"

        def signed(body: bytes) -> VendorRequest:
            stamp = str(int(time.time() * 1000))
            signature = sign_hubspot_v3(secret=secret, method="POST", uri=url, body=body, timestamp=stamp)
            headers = {
                "Content-Type": "application/json",
                "X-HubSpot-Signature-v3": signature,
                "X-HubSpot-Request-Timestamp": stamp,
            }
            return VendorRequest(self.source, headers, body)

        return {"not JSON": signed(b"[{"), "a JSON object": signed(b"{}"), "an empty batch": signed(b"[]")}

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        contact = 1001
        timed = [
            ("sphere_customer_id", SEED_INDIVIDUAL_ID, 4000),
            ("email", "ada.lovelace@example.com", 3000),
            ("mobilephone", "+1 312 555 0142", 3000),
            ("address", "233 S Wacker Dr", 2000),
            ("city", "Chicago", 2000),
            ("state", "IL", 2000),
            ("zip", "60606", 2000),
            ("country", "US", 2000),
        ]
        events = [
            hubspot_event(contact, name, value, occurred_at=now_ms - ago, event_id=3816279001 + index)
            for index, (name, value, ago) in enumerate(timed)
        ]
        headers, body = hubspot_request(events, secret=secret, url=f"{base_url}/webhooks/hubspot", timestamp_ms=now_ms)
        return VendorRequest(self.source, headers, body)

    def sample_expectation(self) -> SampleExpectation:
        return SampleExpectation(
            contact_id=f"{PORTAL}:1001",
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
            event_ids=tuple(str(3816279001 + index) for index in range(8)),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        return 200 <= status < 300 and isinstance(json.loads(body), dict)

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = HubSpotApp()
