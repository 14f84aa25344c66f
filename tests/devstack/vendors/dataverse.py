"""Microsoft Dataverse webhooks as Dataverse sends them: a ``RemoteExecutionContext`` per step run, a key in a header.

The step the README registers: Update (and Create) of contact, asynchronous, post-operation, with a post-image of the
mapped columns, authenticated with "HttpHeader" (``x-api-key: <key>``) or "WebhookKey" (``?code=<key>``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest, json_error_message
from webhook_adapter.model import ContactField
from webhook_adapter.sources.dataverse import API_KEY_HEADER, COLUMNS, SIZE_EXCEEDED_HEADER

__all__ = [
    "CUSTOMER_ID_COLUMN",
    "FIXTURES",
    "ORGANIZATION",
    "VENDOR",
    "DataverseWebhook",
    "dataverse_context",
    "dataverse_request",
    "guid",
    "wcf_date",
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dataverse"
CUSTOMER_ID_COLUMN = "cr123_spherecustomerid"
"""The local ``DataverseCustomerIdColumn``: a custom column's logical name, publisher prefix ``cr123``."""
ORGANIZATION = "0b5e7a11-5e1f-4c3a-9d2e-7f6a5b4c3d2e"
"""The test organization's id (``OrganizationId``): the first half of every contact id."""
_CONTACT_PREFIX = "c0a7ac70-0000-4000-8000"
_OPERATION_PREFIX = "0be1a710-0000-4000-8000"
_CORRELATION_PREFIX = "c011e1a7-0000-4000-8000"
_ENTITY_TYPE = "Entity:http://schemas.microsoft.com/xrm/2011/Contracts"
_COLUMN = {field: column for column, field in COLUMNS.items()} | {
    ContactField.LINE2: "address1_line2",
    ContactField.CUSTOMER_ID: CUSTOMER_ID_COLUMN,
}
"""The column ``change`` writes for each contact field."""

# The documented sample's ids, replaced by test ones in ``sample``.
_SAMPLE_ORGANIZATION = "4ef5b371-e89e-e711-8122-000d3aa2331c"
_SAMPLE_CONTACT = "6d81597f-0f9f-e711-8122-000d3aa2331c"
_SAMPLE_OPERATION = "4af10637-4ea2-e711-8122-000d3aa2331c"
_SAMPLE_CORRELATION = "b374239d-4233-41a9-8b17-a86cb4f737b5"
_SAMPLE_CREATED_ON = "1506409448000"
_SAMPLE_CUSTOMER_ID = "customer_5a3c0e0d1f2b4c6d8e9f0a1b2c3d4e5f"
_SAMPLE_CONTACT_NUMBER = 1001
_SAMPLE_OPERATION_NUMBER = 7001


def guid(prefix: str, number: int) -> str:
    """A test GUID: a fixed prefix naming what it is, then ``number`` in hex."""
    return f"{prefix}-{number:012x}"


def wcf_date(epoch_ms: int, offset: str = "") -> str:
    """A WCF JSON date as Dataverse writes ``OperationCreatedOn`` (``/Date(ms)/``, an offset like ``-0700`` beside)."""
    return f"/Date({epoch_ms}{offset})/"


def _entity(entity: str, record: str, attributes: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    return {
        "__type": _ENTITY_TYPE,
        "Attributes": [{"key": key, "value": value} for key, value in attributes],
        "EntityState": None,
        "FormattedValues": [],
        "Id": record,
        "KeyAttributes": [],
        "LogicalName": entity,
        "RelatedEntities": [],
        "RowVersion": None,
    }


def dataverse_context(
    contact: int,
    written: Sequence[tuple[str, Any]],
    *,
    image: Sequence[tuple[str, Any]] | None = None,
    operation: int,
    occurred_at_ms: int,
    message: str = "Update",
    entity: str = "contact",
    request_id: str | None = None,
) -> dict[str, Any]:
    """A ``RemoteExecutionContext`` of an asynchronous post-operation step, shaped like Microsoft's sample.

    ``written`` is the Target's columns (what the user wrote), ``image`` the post-image's (``None``: no image).
    """
    record = guid(_CONTACT_PREFIX, contact)
    images = [{"key": "PostImage", "value": _entity(entity, record, image)}] if image is not None else []
    return {
        "BusinessUnitId": "e2b9dd85-e89e-e711-8122-000d3aa2331c",
        "CorrelationId": guid(_CORRELATION_PREFIX, operation),
        "Depth": 1,
        "InitiatingUserId": "75c2dd85-e89e-e711-8122-000d3aa2331c",
        "InputParameters": [{"key": "Target", "value": _entity(entity, record, written)}],
        "IsExecutingOffline": False,
        "IsInTransaction": False,
        "IsOfflinePlayback": False,
        "IsolationMode": 1,
        "MessageName": message,
        "Mode": 1,
        "OperationCreatedOn": wcf_date(occurred_at_ms, "-0700"),
        "OperationId": guid(_OPERATION_PREFIX, operation),
        "OrganizationId": ORGANIZATION,
        "OrganizationName": "LocalOrg",
        "OutputParameters": [],
        "ParentContext": None,
        "PostEntityImages": images,
        "PreEntityImages": [],
        "PrimaryEntityId": record,
        "PrimaryEntityName": entity,
        "RequestId": request_id,
        "SecondaryEntityName": "none",
        "SharedVariables": [],
        "Stage": 40,
        "UserId": "75c2dd85-e89e-e711-8122-000d3aa2331c",
    }


def dataverse_request(
    document: Mapping[str, Any] | bytes, *, secret: str | None, size_exceeded: bool = False, query: str = ""
) -> VendorRequest:
    """The POST Dataverse makes: JSON, the key in ``x-api-key`` ("HttpHeader"; ``None``: no header), its headers."""
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    fields = document if isinstance(document, Mapping) else {}
    headers = {
        "Content-Type": "application/json",
        "x-ms-dynamics-organization": "localorg.crm.dynamics.com",
        "x-ms-dynamics-entity-name": str(fields.get("PrimaryEntityName", "contact")),
        "x-ms-dynamics-request-name": str(fields.get("MessageName", "Update")),
        "x-ms-correlation-request-id": str(fields.get("CorrelationId", "")),
    }
    if secret is not None:
        headers[API_KEY_HEADER] = secret
    if size_exceeded:
        headers[SIZE_EXCEEDED_HEADER] = "true"
    return VendorRequest("dataverse", headers, body, query=query)


class DataverseWebhook:
    """A Dataverse service endpoint (webhook) with an Update/Create step on contact and a post-image."""

    source = "dataverse"
    secret_parameter = "DataverseSecretArn"
    secret_variable = "DATAVERSE_WEBHOOK_KEY"
    local_secret = "local-dataverse-webhook-key"
    parameters: Mapping[str, str] = {"DataverseCustomerIdColumn": CUSTOMER_ID_COLUMN}
    full_record = True
    fields = frozenset(ContactField)

    def contact_id(self, contact: int) -> str:
        return f"{ORGANIZATION}:{guid(_CONTACT_PREFIX, contact)}"

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return guid(_OPERATION_PREFIX, event_id)

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
        written = [(_COLUMN[field], value) for field, value in values.items()]
        image = [(column, value) for column, value in written if value is not None]  # images leave out nulls
        document = dataverse_context(contact, written, image=image, operation=event_id, occurred_at_ms=occurred_at_ms)
        return dataverse_request(document, secret=secret)

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        written = [("address1_city", "Chicago"), ("telephone1", "+1 312 555 0100")]
        document = dataverse_context(1, written, operation=event_id, occurred_at_ms=occurred_at_ms, entity="account")
        return dataverse_request(document, secret=secret)

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        without_key = {name: value for name, value in request.headers.items() if name.lower() != API_KEY_HEADER}
        key = request.headers.get(API_KEY_HEADER, "")
        return {
            "another key in x-api-key": request.replace(headers={**without_key, API_KEY_HEADER: "not-the-webhook-key"}),
            "no key": request.replace(headers=without_key),
            "another key in ?code=": request.replace(headers=without_key, query="code=not-the-webhook-key"),
            "the key under another header name": request.replace(headers={**without_key, "x-functions-key": key}),
            "the key in another query parameter": request.replace(headers=without_key, query=f"key={key}"),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        good = dataverse_context(1, [("address1_city", "Chicago")], operation=9001, occurred_at_ms=occurred_at_ms)
        body = json.dumps(good).encode()
        return {
            "truncated": dataverse_request(body[: len(body) // 2], secret=secret),
            "a JSON array": dataverse_request(b"[]", secret=secret),
            "OperationCreatedOn not a WCF date": dataverse_request(
                {**good, "OperationCreatedOn": "2026-11-26T05:00:00Z"}, secret=secret
            ),
            "PrimaryEntityId not a GUID": dataverse_request({**good, "PrimaryEntityId": "contact-1"}, secret=secret),
            "a contact update without its Target": dataverse_request({**good, "InputParameters": []}, secret=secret),
            "a Target without Attributes": dataverse_request(
                {**good, "InputParameters": [{"key": "Target", "value": {"LogicalName": "contact"}}]}, secret=secret
            ),
        }

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        text = (FIXTURES / "contact-update-address.json").read_text(encoding="utf-8")
        for documented, test in (
            (_SAMPLE_ORGANIZATION, ORGANIZATION),
            (_SAMPLE_CONTACT, guid(_CONTACT_PREFIX, _SAMPLE_CONTACT_NUMBER)),
            (_SAMPLE_OPERATION, guid(_OPERATION_PREFIX, _SAMPLE_OPERATION_NUMBER)),
            (_SAMPLE_CORRELATION, guid(_CORRELATION_PREFIX, _SAMPLE_OPERATION_NUMBER)),
            (_SAMPLE_CREATED_ON, str(now_ms)),
            (_SAMPLE_CUSTOMER_ID, SEED_INDIVIDUAL_ID),
        ):
            text = text.replace(documented, test)
        return dataverse_request(json.loads(text), secret=secret)

    def sample_expectation(self) -> SampleExpectation:
        return SampleExpectation(
            contact_id=self.contact_id(_SAMPLE_CONTACT_NUMBER),
            customer_id=SEED_INDIVIDUAL_ID,
            patch={
                "email": "james.glynn@example.com",
                "phone": "+13125550142",
                "address": {
                    "line1": "233 S Wacker Dr",
                    "line2": "Suite 3100",
                    "city": "Chicago",
                    "state": "IL",
                    "postalCode": "60606",
                    "country": "USA",
                },
            },
            event_ids=(guid(_OPERATION_PREFIX, _SAMPLE_OPERATION_NUMBER),),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        return 200 <= status < 300

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return json_error_message(body)


VENDOR = DataverseWebhook()
