"""Each CRM's record-read contract: paths, field names, the 200 bodies and the error bodies.

Pure functions of a stored contact and the request, so ``devstack.crm_standin`` (the server) only
routes, authenticates, stores and records. The vendor page each shape follows, and what could not be
confirmed, is listed in ``devstack.crm_standin``'s docstring.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Final

from devstack.standin_server import Reply, format_timestamp, json_bytes
from webhook_adapter.model import ContactField

__all__ = [
    "ATTIO_CUSTOMER_ID",
    "CRM_FIELD_NAMES",
    "HUBSPOT_CUSTOMER_ID",
    "KEAP_CUSTOMER_ID_FIELD_ID",
    "SALESFORCE_CUSTOMER_ID",
    "SALESFORCE_PATH",
    "SALESFORCE_TOKEN_PATH",
    "UNAUTHORIZED_MESSAGES",
    "ZOHO_CUSTOMER_ID",
    "ZOHO_TOKEN_PATH",
    "ZOHO_WATCH_PATH",
    "Contact",
    "Crm",
    "attio_view",
    "crm_of",
    "from_ms",
    "hubspot_view",
    "json_reply",
    "keap_view",
    "not_found_message",
    "oauth_error",
    "pipedrive_view",
    "read_route",
    "require_crm",
    "salesforce_view",
    "vendor_error",
    "zoho_view",
]

# ---------------------------------------------------------------------------------------------- constants


class Crm(StrEnum):
    """The CRMs served."""

    HUBSPOT = "hubspot"
    PIPEDRIVE = "pipedrive"
    ATTIO = "attio"
    SALESFORCE = "salesforce"
    ZOHO = "zoho"
    KEAP = "keap"


HUBSPOT_CUSTOMER_ID: Final = "sphere_customer_id"
SALESFORCE_CUSTOMER_ID: Final = "Sphere_Customer_Id__c"
ATTIO_CUSTOMER_ID: Final = "sphere_customer_id"
ZOHO_CUSTOMER_ID: Final = "Sphere_Customer_Id"
KEAP_CUSTOMER_ID_FIELD_ID: Final = 12
"""The id of the Keap app's contact custom field holding the Sphere customer id (``custom_fields[].id``)."""

CRM_FIELD_NAMES: Final[Mapping[Crm, Mapping[ContactField, str]]] = MappingProxyType(
    {
        Crm.HUBSPOT: MappingProxyType(
            {
                ContactField.EMAIL: "email",
                ContactField.PHONE: "phone",
                ContactField.MOBILE_PHONE: "mobilephone",
                ContactField.LINE1: "address",
                ContactField.CITY: "city",
                ContactField.STATE: "state",
                ContactField.POSTAL_CODE: "zip",
                ContactField.COUNTRY: "country",
                ContactField.CUSTOMER_ID: HUBSPOT_CUSTOMER_ID,
            }
        ),
        Crm.SALESFORCE: MappingProxyType(
            {
                ContactField.EMAIL: "Email",
                ContactField.PHONE: "Phone",
                ContactField.MOBILE_PHONE: "MobilePhone",
                ContactField.LINE1: "MailingStreet",
                ContactField.LINE2: "MailingStreet",
                ContactField.CITY: "MailingCity",
                ContactField.STATE: "MailingState",
                ContactField.POSTAL_CODE: "MailingPostalCode",
                ContactField.COUNTRY: "MailingCountry",
                ContactField.CUSTOMER_ID: SALESFORCE_CUSTOMER_ID,
            }
        ),
        Crm.PIPEDRIVE: MappingProxyType(
            {
                ContactField.EMAIL: "emails[label=work]",
                ContactField.PHONE: "phones[label=work]",
                ContactField.MOBILE_PHONE: "phones[label=mobile]",
                ContactField.LINE1: "postal_address.route",
                ContactField.LINE2: "postal_address.subpremise",
                ContactField.CITY: "postal_address.locality",
                ContactField.STATE: "postal_address.admin_area_level_1",
                ContactField.POSTAL_CODE: "postal_address.postal_code",
                ContactField.COUNTRY: "postal_address.country",
                ContactField.CUSTOMER_ID: "custom_fields.<customer id key>",
            }
        ),
        Crm.ATTIO: MappingProxyType(
            {
                ContactField.EMAIL: "email_addresses",
                ContactField.PHONE: "phone_numbers[0]",
                ContactField.MOBILE_PHONE: "phone_numbers[1]",
                ContactField.LINE1: "primary_location.line_1",
                ContactField.LINE2: "primary_location.line_2",
                ContactField.CITY: "primary_location.locality",
                ContactField.STATE: "primary_location.region",
                ContactField.POSTAL_CODE: "primary_location.postcode",
                ContactField.COUNTRY: "primary_location.country_code",
                ContactField.CUSTOMER_ID: ATTIO_CUSTOMER_ID,
            }
        ),
        Crm.ZOHO: MappingProxyType(
            {
                ContactField.EMAIL: "Email",
                ContactField.PHONE: "Phone",
                ContactField.MOBILE_PHONE: "Mobile",
                ContactField.LINE1: "Mailing_Street",
                ContactField.CITY: "Mailing_City",
                ContactField.STATE: "Mailing_State",
                ContactField.POSTAL_CODE: "Mailing_Zip",
                ContactField.COUNTRY: "Mailing_Country",
                ContactField.CUSTOMER_ID: ZOHO_CUSTOMER_ID,
            }
        ),
        Crm.KEAP: MappingProxyType(
            {
                ContactField.EMAIL: "email_addresses[field=EMAIL1].email",
                ContactField.PHONE: "phone_numbers[field=PHONE1].number",
                ContactField.MOBILE_PHONE: "phone_numbers[field=PHONE2,type=Mobile].number",
                ContactField.LINE1: "addresses[field=BILLING].line1",
                ContactField.LINE2: "addresses[field=BILLING].line2",
                ContactField.CITY: "addresses[field=BILLING].locality",
                ContactField.STATE: "addresses[field=BILLING].region",
                ContactField.POSTAL_CODE: "addresses[field=BILLING].postal_code",
                ContactField.COUNTRY: "addresses[field=BILLING].country_code",
                ContactField.CUSTOMER_ID: f"custom_fields[id={KEAP_CUSTOMER_ID_FIELD_ID}].content",
            }
        ),
    }
)
"""Where each CRM keeps each contact field (documentation; HubSpot and Zoho have no standard address line 2).

Salesforce's ``MailingStreet`` holds line 1, then line 2 on a new line. Pipedrive's line 1 goes in
``route`` whole (``street_number`` stays ``null``). Attio's phone numbers are one multi-value
attribute: the phone first, the mobile second; values are stored as given (Attio would normalize).
"""

_HUBSPOT_DEFAULT_PROPERTIES: Final = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
"""What HubSpot answers without ``properties``."""

_ATTIO_WORKSPACE_ID: Final = "14beef7a-99f7-4534-a87e-70b564330a4c"
_ATTIO_PEOPLE_OBJECT_ID: Final = "97052eb9-e65e-443f-a297-f2d9a4a7f795"
_ATTIO_WORKSPACE_SLUG: Final = "local"
_HUBSPOT_PATH: Final = re.compile(r"^/crm/(?:objects/(?P<version>\d{4}-\d{2})|v3/objects)/contacts/(?P<id>[^/]+)$")
_PIPEDRIVE_PATH: Final = re.compile(r"^/api/v2/persons/(?P<id>[^/]+)$")
_ATTIO_PATH: Final = re.compile(r"^/v2/objects/people/records/(?P<id>[^/]+)$")
SALESFORCE_PATH: Final = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/sobjects/Contact/(?P<id>[^/]+)$")
SALESFORCE_TOKEN_PATH: Final = "/services/oauth2/token"
_ZOHO_PATH: Final = re.compile(r"^/crm/v\d+/Contacts/(?P<id>[^/]+)$")
ZOHO_TOKEN_PATH: Final = "/oauth/v2/token"
ZOHO_WATCH_PATH: Final = re.compile(r"^/crm/v\d+/actions/watch$")
_KEAP_PATH: Final = re.compile(r"^/crm/rest/v1/contacts/(?P<id>[^/]+)$")
_PIPEDRIVE_ERROR_INFO: Final = "Please check developers.pipedrive.com for more information about Pipedrive API."
_ROUTES: Final = (
    (Crm.HUBSPOT, _HUBSPOT_PATH),
    (Crm.PIPEDRIVE, _PIPEDRIVE_PATH),
    (Crm.ATTIO, _ATTIO_PATH),
    (Crm.SALESFORCE, SALESFORCE_PATH),
    (Crm.ZOHO, _ZOHO_PATH),
    (Crm.KEAP, _KEAP_PATH),
)


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Contact:
    """A record put from contact fields; rendered in the CRM's shape when read."""

    values: Mapping[ContactField, str | None]
    created_at: datetime
    modified_at: datetime


def read_route(path: str) -> tuple[Crm, str] | None:
    """The CRM and record id a read path names."""
    for crm, pattern in _ROUTES:
        match = pattern.match(path)
        if match is not None:
            return crm, match["id"]
    return None


def crm_of(path: str) -> Crm | None:
    """The CRM whose endpoint (a record read, a token endpoint, Zoho's watch API) ``path`` names."""
    if path == SALESFORCE_TOKEN_PATH:
        return Crm.SALESFORCE
    if path == ZOHO_TOKEN_PATH or ZOHO_WATCH_PATH.match(path):
        return Crm.ZOHO
    found = read_route(path)
    return found[0] if found else None


def require_crm(crm: Any) -> Crm:
    """Raises: ValueError: not one of the served CRMs."""
    try:
        return Crm(crm)
    except ValueError:
        raise ValueError(f"crm must be one of {', '.join(Crm)}") from None


# ---------------------------------------------------------------------------------------------- times


def from_ms(epoch_ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def _rfc3339_seconds(moment: datetime) -> str:
    """Pipedrive v2: ``2026-11-26T04:54:30Z``."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _attio_time(moment: datetime) -> str:
    """Attio: nanosecond precision, ``2022-11-21T13:22:49.061000000Z``."""
    return format_timestamp(moment).replace("Z", "000000Z")


def _salesforce_time(moment: datetime) -> str:
    """Salesforce: ``2026-11-26T04:54:30.000+0000``."""
    return format_timestamp(moment).replace("Z", "+0000")


# ---------------------------------------------------------------------------------------------- vendor views


def hubspot_view(
    record_id: str, contact: Contact, requested: Sequence[str] | None, customer_id_property: str
) -> dict[str, Any]:
    """A contact read's body: the requested properties (HubSpot's default set without any), null when unset."""
    names = {**CRM_FIELD_NAMES[Crm.HUBSPOT], ContactField.CUSTOMER_ID: customer_id_property}
    stored: dict[str, str | None] = {names[field]: value for field, value in contact.values.items()}
    stored |= {
        "hs_object_id": record_id,
        "createdate": format_timestamp(contact.created_at),
        "lastmodifieddate": format_timestamp(contact.modified_at),
    }
    wanted = [*(requested if requested is not None else _HUBSPOT_DEFAULT_PROPERTIES)]
    wanted += [name for name in ("hs_object_id", "createdate", "lastmodifieddate") if name not in wanted]
    return {
        "id": record_id,
        "properties": {name: stored.get(name) for name in wanted},
        "createdAt": format_timestamp(contact.created_at),
        "updatedAt": format_timestamp(contact.modified_at),
        "archived": False,
    }


def salesforce_view(
    record_id: str, contact: Contact, version: str, fields: Sequence[str] | None, customer_id_field: str
) -> dict[str, Any]:
    """``sobjects/Contact/{id}``'s body: the record with its ``attributes`` (only ``fields`` when given)."""
    values = contact.values
    lines = [line for line in (values.get(ContactField.LINE1), values.get(ContactField.LINE2)) if line is not None]
    document: dict[str, Any] = {
        "attributes": {"type": "Contact", "url": f"/services/data/v{version}/sobjects/Contact/{record_id}"},
        "Id": record_id,
        "IsDeleted": False,
        "MailingStreet": "\n".join(lines) if lines else None,
        "MailingCity": values.get(ContactField.CITY),
        "MailingState": values.get(ContactField.STATE),
        "MailingPostalCode": values.get(ContactField.POSTAL_CODE),
        "MailingCountry": values.get(ContactField.COUNTRY),
        "Phone": values.get(ContactField.PHONE),
        "MobilePhone": values.get(ContactField.MOBILE_PHONE),
        "Email": values.get(ContactField.EMAIL),
        "CreatedDate": _salesforce_time(contact.created_at),
        "LastModifiedDate": _salesforce_time(contact.modified_at),
        "SystemModstamp": _salesforce_time(contact.modified_at),
        customer_id_field: values.get(ContactField.CUSTOMER_ID),
    }
    if fields is None:
        return document
    return {"attributes": document["attributes"], **{name: document.get(name) for name in fields}}


def pipedrive_view(record_id: str, contact: Contact, customer_id_key: str) -> dict[str, Any]:
    """``GET /api/v2/persons/{id}``'s body: the person in ``{"success": true, "data"}``."""
    values = contact.values
    email = values.get(ContactField.EMAIL)
    phones = [
        {"value": value, "primary": primary, "label": label}
        for value, label, primary in (
            (values.get(ContactField.PHONE), "work", True),
            (values.get(ContactField.MOBILE_PHONE), "mobile", values.get(ContactField.PHONE) is None),
        )
        if value is not None
    ]
    address_parts = {
        "street_number": None,
        "route": values.get(ContactField.LINE1),
        "subpremise": values.get(ContactField.LINE2),
        "locality": values.get(ContactField.CITY),
        "admin_area_level_1": values.get(ContactField.STATE),
        "postal_code": values.get(ContactField.POSTAL_CODE),
        "country": values.get(ContactField.COUNTRY),
    }
    formatted = ", ".join(str(part) for part in address_parts.values() if part is not None)
    postal_address = (
        {"value": formatted, **address_parts, "formatted_address": formatted}
        if any(part is not None for part in address_parts.values())
        else None
    )
    return {
        "success": True,
        "data": {
            "id": int(record_id) if record_id.isdigit() else record_id,
            "name": f"Person {record_id}",
            "first_name": None,
            "last_name": None,
            "owner_id": 1,
            "org_id": None,
            "add_time": _rfc3339_seconds(contact.created_at),
            "update_time": _rfc3339_seconds(contact.modified_at),
            "emails": [{"value": email, "primary": True, "label": "work"}] if email is not None else [],
            "phones": phones,
            "postal_address": postal_address,
            "is_deleted": False,
            "visible_to": 3,
            "label_ids": [],
            "picture_id": None,
            "custom_fields": {customer_id_key: values.get(ContactField.CUSTOMER_ID)},
        },
    }


def _attio_value(attribute_type: str, since: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "active_from": _attio_time(since),
        "active_until": None,
        "created_by_actor": {"type": "system", "id": None},
        "attribute_type": attribute_type,
        **properties,
    }


def attio_view(record_id: str, contact: Contact, customer_id_slug: str) -> dict[str, Any]:
    """``GET /v2/objects/people/records/{id}``'s body: every attribute a list of active value objects."""
    values, since = contact.values, contact.modified_at
    email = values.get(ContactField.EMAIL)
    emails = []
    if email is not None:
        local, _, domain = email.partition("@")
        emails.append(
            _attio_value(
                "email-address",
                since,
                original_email_address=email,
                email_address=email.lower(),
                email_domain=domain.lower(),
                email_root_domain=".".join(domain.lower().split(".")[-2:]),
                email_local_specifier=local.lower(),
            )
        )
    phones = [
        _attio_value("phone-number", since, original_phone_number=number, country_code=None, phone_number=number)
        for number in (values.get(ContactField.PHONE), values.get(ContactField.MOBILE_PHONE))
        if number is not None
    ]
    location_fields = {
        "line_1": values.get(ContactField.LINE1),
        "line_2": values.get(ContactField.LINE2),
        "line_3": None,
        "line_4": None,
        "locality": values.get(ContactField.CITY),
        "region": values.get(ContactField.STATE),
        "postcode": values.get(ContactField.POSTAL_CODE),
        "country_code": values.get(ContactField.COUNTRY),
        "latitude": None,
        "longitude": None,
    }
    locations = (
        [_attio_value("location", since, **location_fields)]
        if any(value is not None for value in location_fields.values())
        else []
    )
    customer_id = values.get(ContactField.CUSTOMER_ID)
    return {
        "data": {
            "id": {"workspace_id": _ATTIO_WORKSPACE_ID, "object_id": _ATTIO_PEOPLE_OBJECT_ID, "record_id": record_id},
            "created_at": _attio_time(contact.created_at),
            "web_url": f"https://app.attio.com/{_ATTIO_WORKSPACE_SLUG}/person/{record_id}",
            "values": {
                "email_addresses": emails,
                "phone_numbers": phones,
                "primary_location": locations,
                customer_id_slug: [_attio_value("text", since, value=customer_id)] if customer_id is not None else [],
            },
        }
    }


def _zoho_time(moment: datetime) -> str:
    """Zoho: ISO 8601 with an offset and no fraction, ``2026-11-26T04:54:30+00:00``."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def zoho_view(record_id: str, contact: Contact, fields: Sequence[str] | None, customer_id_field: str) -> dict[str, Any]:
    """``GET /crm/v8/Contacts/{id}``'s body: the record alone in ``data`` (only ``id`` and ``fields`` when given)."""
    names = {**CRM_FIELD_NAMES[Crm.ZOHO], ContactField.CUSTOMER_ID: customer_id_field}
    record: dict[str, Any] = {"id": record_id}
    record |= {name: contact.values.get(field) for field, name in names.items()}
    record |= {"Created_Time": _zoho_time(contact.created_at), "Modified_Time": _zoho_time(contact.modified_at)}
    if fields is not None:
        record = {"id": record_id, **{name: record.get(name) for name in fields}}
    return {"data": [record]}


def _keap_time(moment: datetime) -> str:
    """Keap v1: milliseconds and a ``+0000`` offset, ``2026-11-26T04:54:30.000+0000``."""
    return format_timestamp(moment).replace("Z", "+0000")


def keap_view(record_id: str, contact: Contact, customer_id_field_id: int, optional: Sequence[str] | None) -> Any:
    """``GET /crm/rest/v1/contacts/{id}``'s body; ``custom_fields`` only when ``optional_properties`` names it."""
    values = contact.values
    email = values.get(ContactField.EMAIL)
    phones = [
        {"field": field, "number": number, "type": kind, "extension": None}
        for field, kind, number in (
            ("PHONE1", "Work", values.get(ContactField.PHONE)),
            ("PHONE2", "Mobile", values.get(ContactField.MOBILE_PHONE)),
        )
        if number is not None
    ]
    address = {part: values.get(field) for part, field in _KEAP_ADDRESS.items()}
    body: dict[str, Any] = {
        "id": int(record_id) if record_id.isdigit() else record_id,
        "given_name": "Local",
        "family_name": "Contact",
        "email_addresses": [{"email": email, "field": "EMAIL1"}] if email is not None else [],
        "phone_numbers": phones,
        "addresses": (
            [{"field": "BILLING", **address, "zip_code": None, "zip_four": None}]
            if any(value is not None for value in address.values())
            else []
        ),
        "date_created": _keap_time(contact.created_at),
        "last_updated": _keap_time(contact.modified_at),
    }
    if optional is not None and "custom_fields" in optional:
        customer_id = values.get(ContactField.CUSTOMER_ID)
        body["custom_fields"] = [{"id": customer_id_field_id, "content": customer_id}]
    return body


_KEAP_ADDRESS: Final[Mapping[str, ContactField]] = {
    "line1": ContactField.LINE1,
    "line2": ContactField.LINE2,
    "locality": ContactField.CITY,
    "region": ContactField.STATE,
    "postal_code": ContactField.POSTAL_CODE,
    "country_code": ContactField.COUNTRY,
}


# ---------------------------------------------------------------------------------------------- vendor errors


def _new_id() -> str:
    return str(uuid.uuid4())


def json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """``payload`` as a compact JSON answer."""
    return Reply(status=int(status), body=json_bytes(payload), headers=headers)


_HUBSPOT_CATEGORIES: Final[Mapping[int, str]] = {
    HTTPStatus.UNAUTHORIZED: "INVALID_AUTHENTICATION",
    HTTPStatus.NOT_FOUND: "OBJECT_NOT_FOUND",
}
"""``category`` by status (``INTERNAL_ERROR`` for the others, unconfirmed)."""


def _hubspot_error(status: int, message: str, category: str) -> Reply:
    correlation_id = _new_id()
    body = {"status": "error", "message": message, "correlationId": correlation_id, "category": category}
    return Reply(
        status=status,
        body=json_bytes(body),
        correlation_id=correlation_id,
        headers=(("X-HubSpot-Correlation-Id", correlation_id),),
    )


def _hubspot_rate_limited(headers: tuple[tuple[str, str], ...]) -> Reply:
    correlation_id = _new_id()
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id,
        "policyName": "TEN_SECONDLY_ROLLING",
        "requestId": _new_id(),
    }
    return Reply(
        status=HTTPStatus.TOO_MANY_REQUESTS, body=json_bytes(body), correlation_id=correlation_id, headers=headers
    )


def _pipedrive_error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    body = {"success": False, "error": message, "errorCode": status, "error_info": _PIPEDRIVE_ERROR_INFO}
    return json_reply(status, body, headers)


_ATTIO_ERROR_TYPES: Final[Mapping[int, tuple[str, str]]] = {
    HTTPStatus.UNAUTHORIZED: ("auth_error", "unauthorized"),
    HTTPStatus.NOT_FOUND: ("invalid_request_error", "not_found"),
    HTTPStatus.TOO_MANY_REQUESTS: ("rate_limit_error", "rate_limit_exceeded"),
}


def _attio_error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    error_type, code = _ATTIO_ERROR_TYPES.get(status, ("internal_server_error", "internal_error"))
    return json_reply(status, {"status_code": status, "type": error_type, "code": code, "message": message}, headers)


_SALESFORCE_ERROR_CODES: Final[Mapping[int, str]] = {
    HTTPStatus.UNAUTHORIZED: "INVALID_SESSION_ID",
    HTTPStatus.NOT_FOUND: "NOT_FOUND",
    HTTPStatus.FORBIDDEN: "REQUEST_LIMIT_EXCEEDED",
}


def _salesforce_error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    code = _SALESFORCE_ERROR_CODES.get(status, "UNKNOWN_EXCEPTION")
    return json_reply(status, [{"message": message, "errorCode": code}], headers)


_ZOHO_ERROR_CODES: Final[Mapping[int, str]] = {
    HTTPStatus.UNAUTHORIZED: "INVALID_TOKEN",
    HTTPStatus.TOO_MANY_REQUESTS: "TOO_MANY_REQUESTS",
}


def _zoho_error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    code = _ZOHO_ERROR_CODES.get(status, "INTERNAL_ERROR")
    return json_reply(status, {"code": code, "details": {}, "message": message, "status": "error"}, headers)


def _keap_error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    if status == HTTPStatus.UNAUTHORIZED:  # Keap's API gateway (Apigee) answers a bad token in its own shape
        fault = {"faultstring": message, "detail": {"errorcode": "keymanagement.service.invalid_access_token"}}
        return json_reply(status, {"fault": fault}, headers)
    return json_reply(status, {"message": message}, headers)


def vendor_error(crm: Crm | None, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """An error in ``crm``'s format (a plain ``{"error"}`` for an unknown path)."""
    match crm:
        case Crm.HUBSPOT if status == HTTPStatus.TOO_MANY_REQUESTS:
            return _hubspot_rate_limited(headers)
        case Crm.HUBSPOT:
            reply = _hubspot_error(status, message, _HUBSPOT_CATEGORIES.get(status, "INTERNAL_ERROR"))
            return Reply(reply.status, reply.body, reply.correlation_id, headers=reply.headers + headers)
        case Crm.PIPEDRIVE:
            return _pipedrive_error(status, message, headers)
        case Crm.ATTIO:
            return _attio_error(status, message, headers)
        case Crm.SALESFORCE:
            return _salesforce_error(status, message, headers)
        case Crm.ZOHO:
            return _zoho_error(status, message, headers)
        case Crm.KEAP:
            return _keap_error(status, message, headers)
        case None:
            return json_reply(status, {"error": message}, headers)


UNAUTHORIZED_MESSAGES: Final[Mapping[Crm, str]] = {
    Crm.HUBSPOT: "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
    Crm.PIPEDRIVE: "unauthorized access",
    Crm.ATTIO: "Authentication failed: the access token is invalid or revoked.",
    Crm.SALESFORCE: "Session expired or invalid",
    Crm.ZOHO: "invalid oauth token",
    Crm.KEAP: "Invalid Access Token",
}


def not_found_message(crm: Crm, record_id: str) -> str:
    """What ``crm`` says when the record does not exist."""
    match crm:
        case Crm.HUBSPOT:
            return f"Object not found.  objectId are usually numeric. ({record_id})"
        case Crm.PIPEDRIVE:
            return "Person not found"
        case Crm.ATTIO:
            return f'Record with ID "{record_id}" not found.'
        case Crm.SALESFORCE | Crm.ZOHO:
            return "The requested resource does not exist"
        case Crm.KEAP:
            return f"Contact with id {record_id} not found"


def oauth_error(error: str, description: str) -> Reply:
    """A 400 from Salesforce's token endpoint (``invalid_client``, ``unsupported_grant_type``...)."""
    return json_reply(HTTPStatus.BAD_REQUEST, {"error": error, "error_description": description})
