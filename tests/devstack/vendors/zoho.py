"""Zoho CRM as it calls the adapter: workflow rule webhooks (the record's values) and Notification API callbacks (ids).

A workflow webhook's body is the admin's: here the README's JSON body of Zoho field API names, posted to the URL
with ``?token=``. ``change`` and ``sample`` are workflow webhooks, so Sphere gets their values without a CRM read.
``notification`` builds a Notification API callback (ids only, the channel's token echoed in the body); the kit's
``irrelevant`` is one about another module, and ``forged`` holds one of another channel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField
from webhook_adapter.sources.zoho import DEFAULT_FIELD_MAP

__all__ = [
    "CHANNEL_ID",
    "CUSTOMER_ID_FIELD",
    "FIXTURES",
    "VENDOR",
    "ZohoCrm",
    "modified_time",
    "notification",
    "webhook_request",
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "zoho"
CHANNEL_ID = "1000000068002"
"""The Notification API channel the local stack serves (Zoho's documented example id)."""
CUSTOMER_ID_FIELD = "Sphere_Customer_Id"
_NAME = {field: name for name, field in DEFAULT_FIELD_MAP.items()} | {ContactField.CUSTOMER_ID: CUSTOMER_ID_FIELD}
_RECORD_BASE = 5725767000000000000
_SAMPLE_RECORD_ID = "5725767000000524157"


def modified_time(epoch_ms: int) -> str:
    """A change time as ``Modified_Time`` in Zoho's API form (ISO 8601 with an offset), kept to the millisecond."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _event_time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_request(body: bytes, *, token: str | None, content_type: str = "application/json") -> VendorRequest:
    """A workflow webhook's ``body`` posted to the URL with ``?token=`` (``None``: a URL without it)."""
    query = urlencode({"token": token}) if token is not None else ""
    return VendorRequest("zoho", {"Content-Type": content_type}, body, query)


def notification(
    ids: list[Any],
    *,
    token: str,
    operation: str = "update",
    module: str = "Contacts",
    channel_id: Any = CHANNEL_ID,
    server_time: int,
) -> VendorRequest:
    """A Notification API callback for ``ids``, as Zoho posts it to the channel's notify URL (no query)."""
    body = {
        "server_time": server_time,
        "query_params": {},
        "module": module,
        "resource_uri": f"https://www.zohoapis.com/crm/v2/{module}",
        "ids": ids,
        "affected_fields": [{str(record): ["Mailing_City"]} for record in ids if isinstance(record, (int, str))],
        "operation": operation,
        "channel_id": channel_id,
        "token": token,
    }
    return VendorRequest("zoho", {"Content-Type": "application/json"}, json.dumps(body).encode())


class ZohoCrm:
    """A Zoho CRM org whose Contacts workflow rule posts the README's JSON body to the adapter."""

    source = "zoho"
    secret_parameter = "ZohoSecretArn"
    secret_variable = "ZOHO_TOKEN"
    local_secret = "local-zoho-endpoint-token-0001"
    parameters: Mapping[str, str] = {"ZohoChannelId": CHANNEL_ID}
    full_record = True
    fields = frozenset(_NAME)
    """What the workflow body carries: every contact field but a second street line (Zoho has one street field)."""

    def contact_id(self, contact: int) -> str:
        return str(_RECORD_BASE + contact)

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return f"{_RECORD_BASE + contact}@{_event_time(occurred_at_ms)}"

    def record(self, contact: int) -> CrmRecordRef | None:
        return None  # the workflow webhooks ``change`` sends carry the values

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
        body = {"id": str(_RECORD_BASE + contact), "Modified_Time": modified_time(occurred_at_ms)} | {
            _NAME[field]: value for field, value in values.items()
        }
        return webhook_request(json.dumps(body).encode(), token=secret)

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        # A Deals notification: the channel may watch other modules, whose ids are not contacts.
        return notification(
            [str(_RECORD_BASE + event_id % 10**9)], token=secret, module="Deals", server_time=occurred_at_ms
        )

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        token = (parse_qs(request.query).get("token") or ["not-the-token"])[0]
        document = json.loads(request.body) if request.body.startswith(b"{") else {}
        record = str(document.get("id", _RECORD_BASE + 1))
        at = 1_780_000_000_000
        return {
            "another endpoint token": request.replace(query=urlencode({"token": "not-the-token"})),
            "no endpoint token": request.replace(query=""),
            "an empty endpoint token": request.replace(query="token="),
            "the token given twice": request.replace(query=f"{request.query}&token=not-the-token"),
            "a wrong token in the header": request.replace(
                query="", headers={**request.headers, "X-Zoho-Webhook-Token": "not-the-token"}
            ),
            "a notification echoing another token": notification([record], token="not-the-token", server_time=at),
            "a notification without a token": notification([record], token="", server_time=at),
            "a notification of another channel": notification(
                [record], token=token, channel_id="1000000068999", server_time=at
            ),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        def sent(body: bytes, content_type: str = "application/json") -> VendorRequest:
            return webhook_request(body, token=secret, content_type=content_type)

        record = str(_RECORD_BASE + 1)
        return {
            "not JSON": sent(b'{"id": "5725767000000000001", "Email": '),
            "a JSON array": sent(b"[]"),
            "no record id": sent(json.dumps({"Email": "ada@example.com"}).encode()),
            "a record id that is not digits": sent(json.dumps({"id": "${Contacts.Contact Id}"}).encode()),
            "a mapped field that is not text": sent(json.dumps({"id": record, "Email": ["ada@example.com"]}).encode()),
            "not form parameters": sent(b"id=1&&=", "application/x-www-form-urlencoded"),
            "a form field given twice": sent(
                f"id={record}&Email=a%40example.com&Email=b%40example.com".encode(), "application/x-www-form-urlencoded"
            ),
            "a notification without ids": notification([], token=secret, server_time=occurred_at_ms),
            "a notification of more than 1000 ids": notification(
                [record] * 1001, token=secret, server_time=occurred_at_ms
            ),
            "a notification without server_time": VendorRequest(
                "zoho",
                {"Content-Type": "application/json"},
                json.dumps({"channel_id": CHANNEL_ID, "ids": [record], "token": secret}).encode(),
            ),
        }

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        document = json.loads((FIXTURES / "workflow-webhook.json").read_text(encoding="utf-8"))
        document |= {"id": _SAMPLE_RECORD_ID, CUSTOMER_ID_FIELD: SEED_INDIVIDUAL_ID}
        return webhook_request(json.dumps(document).encode(), token=secret)

    def sample_expectation(self) -> SampleExpectation:
        return SampleExpectation(
            contact_id=_SAMPLE_RECORD_ID,
            customer_id=SEED_INDIVIDUAL_ID,
            patch={
                "email": "p.boyle@zylker.com",
                "phone": "+18475550142",
                "address": {
                    "line1": "2400 N Sheridan Rd",
                    "city": "Evanston",
                    "state": "IL",
                    "postalCode": "60201",
                    "country": "USA",
                },
            },
            event_ids=(f"{_SAMPLE_RECORD_ID}@2026-11-26T04:54:30.000Z",),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        # Zoho reads only the status of a webhook's or a notification's answer.
        return 200 <= status < 300

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = ZohoCrm()
