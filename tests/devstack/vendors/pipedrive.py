"""Pipedrive webhooks as Pipedrive sends them: one person event per request, HTTP Basic credentials, no signature.

``change`` sends webhooks v2 (Pipedrive's default), built on the meta of Pipedrive's v2 format example;
``sample`` sends the documented v1 ``updated.person`` event. Both fixtures are in ``tests/fixtures/pipedrive/``.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField

__all__ = ["COMPANY", "CUSTOMER_ID_FIELD", "VENDOR", "PipedriveWebhooks", "basic_auth", "load_jsonc", "v2_event"]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "pipedrive"
COMPANY = 7_340_112
FOREIGN_COMPANY = 9_900_001
DOCS_COMPANY = 1234567890
"""The company of Pipedrive's v1 sample: allowed locally, so the sample is read as published."""
CUSTOMER_ID_FIELD = "5a3f0c9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
"""The test deployment's key of the person custom field holding the Sphere customer id."""
SAMPLE_PERSON = 4242

_FIELDS: dict[ContactField, str] = {
    ContactField.LINE1: "route",
    ContactField.LINE2: "subpremise",
    ContactField.CITY: "locality",
    ContactField.STATE: "admin_area_level_1",
    ContactField.POSTAL_CODE: "postal_code",
    ContactField.COUNTRY: "country",
}
"""Address fields to the ``postal_address_*`` component ``change`` puts them in (line1 in ``route`` alone)."""

_COMMENT = re.compile(r'("(?:[^"\\]|\\.)*")|//[^\n]*')
_PLACEHOLDER = re.compile(r"\(\s*[^()\"]*\)")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def load_jsonc(text: str) -> dict[str, Any]:
    """A documentation example as JSON: ``//`` comments dropped (never inside strings), prose placeholders such as
    ``( the object data as of this update )`` read as ``null``, trailing commas removed."""
    stripped = _COMMENT.sub(lambda match: match.group(1) or "", text)
    document: dict[str, Any] = json.loads(_TRAILING_COMMA.sub(r"\1", _PLACEHOLDER.sub("null", stripped)))
    return document


def v2_event(
    *,
    entity: str = "person",
    action: str = "change",
    entity_id: int,
    event_id: str,
    timestamp: int | str,
    data: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None = None,
    company_id: int = COMPANY,
) -> dict[str, Any]:
    """A webhooks v2 body: the meta of Pipedrive's format example with these ids, time, data and previous."""
    document = load_jsonc((FIXTURES / "v2-format-doc.jsonc").read_text(encoding="utf-8"))
    document["meta"].update(
        action=action,
        entity=entity,
        company_id=str(company_id),
        correlation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, event_id)),
        entity_id=str(entity_id),
        id=event_id,
        timestamp=timestamp,
        user_id="7001",
        webhook_id="301",
        webhook_owner_id="7001",
        permitted_user_ids=["7001"],
        host="example-company.pipedrive.com",
    )
    document["data"] = None if data is None else dict(data)
    document["previous"] = None if previous is None else dict(previous)
    return document


def basic_auth(credentials: str) -> str:
    """The ``Authorization`` value Pipedrive sends for a webhook created with this ``user:password``."""
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _listed(value: str | None) -> list[dict[str, Any]]:
    """An ``emails``/``phones`` list with one primary entry, empty when cleared."""
    return [] if value is None else [{"value": value, "primary": True, "label": "work"}]


class PipedriveWebhooks:
    """A Pipedrive company with a webhook on persons, created with HTTP Basic credentials."""

    source = "pipedrive"
    secret_parameter = "PipedriveSecretArn"
    secret_variable = "PIPEDRIVE_BASIC_AUTH"
    local_secret = "sphere-webhooks:local-pipedrive-password"
    parameters: Mapping[str, str] = {
        "PipedriveCompanyIds": f"{COMPANY},{DOCS_COMPANY}",
        "PipedriveCustomerIdField": CUSTOMER_ID_FIELD,
    }
    full_record = True
    fields = frozenset(ContactField) - {ContactField.MOBILE_PHONE}

    def contact_id(self, contact: int) -> str:
        return f"{COMPANY}:{contact}"

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return str(uuid.UUID(int=event_id))

    def record(self, contact: int) -> CrmRecordRef | None:
        return None  # the events carry the values

    def _post(self, document: Mapping[str, Any], *, secret: str) -> VendorRequest:
        headers = {
            "Content-Type": "application/json",
            "Authorization": basic_auth(secret.split(maxsplit=1)[0]),
            "User-Agent": "Pipedrive Webhooks",
        }
        return VendorRequest(self.source, headers, json.dumps(document).encode())

    def person(self, contact: int, values: Mapping[ContactField, str | None]) -> dict[str, Any]:
        """A v2 person record holding exactly these mapped fields (``None``: cleared).

        Raises:
            ValueError: a field Pipedrive's source does not map (``mobile_phone``: Pipedrive has one phone list).
        """
        data: dict[str, Any] = {"id": contact, "name": f"Person {contact}", "owner_id": 7001}
        for field, value in values.items():
            if field is ContactField.EMAIL:
                data["emails"] = _listed(value)
            elif field is ContactField.PHONE:
                data["phones"] = _listed(value)
            elif field is ContactField.CUSTOMER_ID:
                data.setdefault("custom_fields", {})[CUSTOMER_ID_FIELD] = value
            elif field in _FIELDS:
                data[f"postal_address_{_FIELDS[field]}"] = value
            else:
                raise ValueError(f"Pipedrive persons have no field the adapter maps to {field}")
        return data

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
        document = v2_event(
            entity_id=contact,
            event_id=str(uuid.UUID(int=event_id)),
            timestamp=_iso(occurred_at_ms),
            data=self.person(contact, values),
            previous={},
        )
        return self._post(document, secret=secret)

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        document = v2_event(
            entity="deal",
            action="create",
            entity_id=88,
            event_id=str(uuid.UUID(int=event_id)),
            timestamp=_iso(occurred_at_ms),
            data={"id": 88, "title": "A deal", "value": 1200, "currency": "USD"},
        )
        return self._post(document, secret=secret)

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        user = self.local_secret.split(":", 1)[0]
        document = json.loads(request.body)
        document["meta"]["company_id"] = FOREIGN_COMPANY
        return {
            "wrong password": request.replace(headers={**headers, "Authorization": basic_auth(f"{user}:guessed")}),
            "no credentials": request.replace(headers=headers),
            "a bearer token instead of Basic": request.replace(
                headers={**headers, "Authorization": "Bearer " + self.local_secret}
            ),
            "Basic credentials that are not base64": request.replace(
                headers={**headers, "Authorization": "Basic not*base64"}
            ),
            "a foreign company": request.replace(body=json.dumps(document).encode()),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        def sent(body: bytes) -> VendorRequest:
            return self._post({}, secret=secret).replace(body=body)

        good = v2_event(entity_id=1, event_id=str(uuid.UUID(int=1)), timestamp=_iso(occurred_at_ms), data={"id": 1})
        no_id = {**good, "meta": {k: v for k, v in good["meta"].items() if k != "id"}}
        bad_time = {**good, "meta": {**good["meta"], "timestamp": "yesterday"}}
        return {
            "not JSON": sent(b'{"meta": '),
            "a JSON array": sent(b"[]"),
            "empty": sent(b""),
            "no meta": sent(json.dumps({"data": {"id": 1}}).encode()),
            "a v2 event without its id": sent(json.dumps(no_id).encode()),
            "a time that is no time": sent(json.dumps(bad_time).encode()),
            "a person that is not an object": sent(json.dumps({**good, "data": ["id", 1]}).encode()),
            "emails that are not a list": sent(json.dumps({**good, "data": {"id": 1, "emails": "a@b.c"}}).encode()),
        }

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        document = json.loads((FIXTURES / "v1-updated-person.json").read_text(encoding="utf-8"))
        seconds = now_ms // 1000
        document["meta"].update(
            company_id=COMPANY,
            id=SAMPLE_PERSON,
            timestamp=seconds,
            timestamp_micro=now_ms * 1000,
            prepublish_timestamp=now_ms + 13,
            host="example-company.pipedrive.com",
            user_id=7001,
            permitted_user_ids=[7001],
            webhook_id="301",
        )
        for record in (document["current"], document["previous"]):
            record.update(id=SAMPLE_PERSON, company_id=COMPANY, owner_id=7001, cc_email="example@pipedrivemail.com")
        document["current"].update(
            {
                "email": [{"value": "ada.lovelace@example.com", "primary": True, "label": "work"}],
                "phone": [
                    {"value": "+1 312 555 0100", "primary": False, "label": "home"},
                    {"value": "+1 312 555 0142", "primary": True, "label": "mobile"},
                ],
                "postal_address": "233 S Wacker Dr, Suite 4400, Chicago, IL 60606, USA",
                "postal_address_street_number": "233",
                "postal_address_route": "S Wacker Dr",
                "postal_address_subpremise": "Suite 4400",
                "postal_address_locality": "Chicago",
                "postal_address_admin_area_level_1": "Illinois",
                "postal_address_postal_code": "60606",
                "postal_address_country": "United States",
                "postal_address_formatted_address": "233 S Wacker Dr, Suite 4400, Chicago, IL 60606, USA",
                CUSTOMER_ID_FIELD: SEED_INDIVIDUAL_ID,
            }
        )
        document["previous"][CUSTOMER_ID_FIELD] = None
        return self._post(document, secret=secret)

    def sample_expectation(self) -> SampleExpectation:
        return SampleExpectation(
            contact_id=f"{COMPANY}:{SAMPLE_PERSON}",
            customer_id=SEED_INDIVIDUAL_ID,
            event_count=1,
            patch={
                "email": "ada.lovelace@example.com",
                "phone": "+13125550142",
                "address": {
                    "line1": "233 S Wacker Dr",
                    "line2": "Suite 4400",
                    "city": "Chicago",
                    "state": "IL",
                    "postalCode": "60606",
                    "country": "USA",
                },
            },
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        return 200 <= status < 300

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = PipedriveWebhooks()
