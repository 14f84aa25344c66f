"""Salesforce Outbound Messages: a SOAP 1.1 message of 1 to 100 notifications, each carrying a record's chosen fields.

An admin defines an Outbound Message on Contact (the fields to send, the endpoint URL with ``?token=``) and
sends it from a record-triggered Flow. Salesforce signs nothing: trust is the endpoint token in the URL
(checked in ``verify``) and the ``OrganizationId`` in the body against an allow-list (checked in ``parse``,
the first reading of the body). Every notification carries the full value of each field sent, so a
Contact notification becomes one event with every mapped field it holds; other objects are acknowledged and
recorded as ``ignored``.

Salesforce reads only SOAP: a 2xx is the ``notificationsResponse`` with ``<Ack>true</Ack>`` (anything else
and it redelivers the whole message, for up to 24 hours), an error is a SOAP fault. One Ack covers every
notification of the message, so, as with HubSpot's batches, a malformed notification is recorded as
``refused`` on its own and the message's others go on; only a body that is not a notifications message at
all is answered 400.

The XML is read with ``defusedxml``: no DTD, no entity (internal or external) is ever expanded. The standard
library's ``xml.etree`` only types and serializes the elements it gives (hence ``nosec B405``).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit
from xml.etree.ElementTree import Element, ParseError, tostring  # nosec B405

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from webhook_adapter.errors import CredentialsError, ForbiddenSender, InvalidPayload
from webhook_adapter.model import MAX_EPOCH_MS, ContactField, FieldValue, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_credential
from webhook_adapter.sources.base import Answer, FieldChanges, WebhookRequest, require_media_type

__all__ = ["ACK", "MAX_XML_DEPTH", "XML_MEDIA_TYPE", "SalesforceConfig", "SalesforceSource", "build", "fault"]

NAME = "salesforce"
MAX_NOTIFICATIONS = 100
TOKEN_PARAMETER = "token"  # nosec B105
"""The query parameter of the endpoint URL that carries the endpoint token (its name, not a token)."""
XML_MEDIA_TYPE = "text/xml"
_ANSWER_TYPE = "text/xml; charset=utf-8"
_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
_OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_TYPE = f"{{{_XSI}}}type"
_XSI_NIL = f"{{{_XSI}}}nil"
CONTACT_TYPE = "Contact"
_ID_PATTERN = r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$"
_MAX_RECORD_ID = 64
_OBJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
"""An sObject's API name (``Contact``, ``Invoice__c``), as ``xsi:type`` gives it after its prefix."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_XML_DEPTH = 32
"""Deepest element accepted: an Outbound Message is 5 levels deep (a field of an sObject). Bounded because the
standard library serializes (and a refused notification's digest is taken) by recursion."""
_SERVER_ERROR = 500
_OK = 200

ACK = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
    "<soapenv:Body>\n"
    '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">\n'
    "<Ack>true</Ack>\n"
    "</notificationsResponse>\n"
    "</soapenv:Body>\n"
    "</soapenv:Envelope>\n"
)
"""The answer that tells Salesforce the message is delivered (Help article 000381752); anything else is a retry."""

_FIELDS: dict[str, ContactField] = {
    "MailingCity": ContactField.CITY,
    "MailingPostalCode": ContactField.POSTAL_CODE,
    "Phone": ContactField.PHONE,
    "MobilePhone": ContactField.MOBILE_PHONE,
    "Email": ContactField.EMAIL,
}
"""Contact fields read as they are (the street, state and country have rules of their own)."""
_CHANGE_TIMES = ("LastModifiedDate", "SystemModstamp")
"""Where a record's change time is read, in order; neither sent: the time the message arrived."""
_STREET = "MailingStreet"
_PREFERRED: dict[ContactField, tuple[str, str]] = {
    ContactField.STATE: ("MailingStateCode", "MailingState"),
    ContactField.COUNTRY: ("MailingCountryCode", "MailingCountry"),
}
"""With State and Country picklists, both the code and the name are sent: the code is what Sphere reads best."""


def _organization_ids(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


type _OrganizationId = Annotated[str, Field(pattern=_ID_PATTERN)]


class SalesforceConfig(BaseModel):
    """``SALESFORCE_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    organization_ids: Annotated[tuple[_OrganizationId, ...], BeforeValidator(_organization_ids), Field(min_length=1)]
    """Orgs whose messages are accepted (15 or 18 characters): without one, every message would be refused."""
    customer_id_field: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=80)] = (
        "Sphere_Customer_Id__c"
    )

    @property
    def organizations(self) -> frozenset[str]:
        """The allowed orgs by their 15-character id (the 18-character form only adds a checksum of its case)."""
        return frozenset(org_id[:15] for org_id in self.organization_ids)


class _Malformed(Exception):
    """One notification cannot be read; the message names what is wrong, never a value."""


def _local(tag: str) -> str:
    """An element's name without its namespace (``{urn:...}Phone`` -> ``Phone``)."""
    return tag.rpartition("}")[2]


def _is_nil(element: Element) -> bool:
    return element.get(_XSI_NIL, "").strip().lower() in {"true", "1"}


def _text(element: Element, name: str) -> str | None:
    """A leaf's trimmed text, ``None`` when it is ``xsi:nil`` or empty (Salesforce's cleared field).

    Raises:
        _Malformed: the element holds elements, not text.
    """
    if len(element):
        raise _Malformed(f"{name} must hold text, not elements")
    if _is_nil(element):
        return None
    return (element.text or "").strip() or None


def _epoch_ms(value: str | None, name: str) -> int:
    """An xsd:dateTime with its zone (Salesforce sends ``2014-06-26T00:05:38.000Z``) in epoch milliseconds.

    Raises:
        _Malformed: not such a time, or before 1970 or after ``MAX_EPOCH_MS``.
    """
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is not None and moment >= _EPOCH:
        epoch_ms = (moment - _EPOCH) // timedelta(milliseconds=1)
        if epoch_ms < MAX_EPOCH_MS:
            return epoch_ms
    raise _Malformed(f"{name} must be an ISO 8601 time with a zone, after 1970")


def _is_record_id(value: str | None) -> bool:
    """1 to ``_MAX_RECORD_ID`` ASCII letters and digits: ids become keys, queue groups and log fields."""
    return value is not None and 0 < len(value) <= _MAX_RECORD_ID and value.isascii() and value.isalnum()


def _street(text: str | None) -> tuple[FieldValue, FieldValue]:
    """``MailingStreet`` as two address lines: its first line, then the others joined with ``", "``.

    A one-line street clears line 2: the notification carries the whole street, so there is no second line.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None, None
    return lines[0], ", ".join(lines[1:]) or None


def fault(status: int, message: str) -> str:
    """A SOAP 1.1 fault: ``soapenv:Client`` for the sender's mistake (4xx), ``soapenv:Server`` for ours (5xx)."""
    code = "soapenv:Server" if status >= _SERVER_ERROR else "soapenv:Client"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP}">\n'
        "<soapenv:Body>\n"
        "<soapenv:Fault>\n"
        f"<faultcode>{code}</faultcode>\n"
        f"<faultstring>{html.escape(message, quote=False)}</faultstring>\n"
        "</soapenv:Fault>\n"
        "</soapenv:Body>\n"
        "</soapenv:Envelope>\n"
    )


class SalesforceSource:
    """Checks the endpoint token and the org, and turns an Outbound Message into one event per notification."""

    name = NAME

    def __init__(self, config: SalesforceConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id
        self._organizations = config.organizations

    def answer(self, status: int, document: Mapping[str, Any]) -> Answer:
        """The Ack envelope (HTTP 200) for a receipt, else a SOAP fault with the adapter's status and message.

        Salesforce reads neither the receipt's ids nor a 202: only ``<Ack>true</Ack>`` under HTTP 200 ends
        its retries, and a fault's 5xx makes it retry.
        """
        if status < 300:  # 2xx: the receipt
            return Answer(_OK, ACK, content_type=_ANSWER_TYPE)
        error = document.get("error")
        message = error.get("message") if isinstance(error, Mapping) else None
        return Answer(status, fault(status, str(message or "the request was not accepted")), content_type=_ANSWER_TYPE)

    def check_media_type(self, request: WebhookRequest) -> None:
        """Salesforce posts ``text/xml; charset=utf-8`` (SOAP 1.1).

        Raises:
            UnsupportedMediaType: another content type.
        """
        require_media_type(request, XML_MEDIA_TYPE)

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check the endpoint token (``?token=`` of the Outbound Message's URL) against each configured one.

        Raises:
            CredentialsError: no token, more than one, or none matches.
        """
        tokens = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(TOKEN_PARAMETER, [])
        if len(tokens) > 1:
            raise CredentialsError(f"the {TOKEN_PARAMETER} query parameter must be given once")
        verify_credential(given=tokens[0] if tokens else None, secrets=secrets, what="endpoint token (?token=)")

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The message's notifications as events, in order; the org is checked first.

        Raises:
            InvalidPayload: not XML, a DTD or entity, not a notifications envelope, no readable
                ``OrganizationId``, or not 1 to 100 notifications.
            ForbiddenSender: the org is not in ``SALESFORCE_ORGANIZATION_IDS``.
        """
        notifications = _notifications(request.body)
        org = _organization(notifications)
        if org[:15] not in self._organizations:
            raise ForbiddenSender("the Salesforce organization is not allowed to send to this endpoint")
        items = [child for child in notifications if child.tag == f"{{{_OUTBOUND}}}Notification"]
        if not 1 <= len(items) <= MAX_NOTIFICATIONS:
            raise InvalidPayload(
                f"a Salesforce outbound message must hold 1 to {MAX_NOTIFICATIONS} notifications, got {len(items)}"
            )
        received_ms = int(request.received_at * 1000)
        return [self._read(index, item, org=org[:15], received_ms=received_ms) for index, item in enumerate(items)]

    def _read(self, index: int, notification: Element, *, org: str, received_ms: int) -> SourceEvent:
        notification_id = _child_text(notification, f"{{{_OUTBOUND}}}Id")
        try:
            return self._to_event(notification, notification_id, org=org, received_ms=received_ms)
        except _Malformed as exc:
            return _refused(index, notification, notification_id, org=org, reason=str(exc), received_ms=received_ms)

    def _to_event(
        self, notification: Element, notification_id: str | None, *, org: str, received_ms: int
    ) -> SourceEvent:
        """The notification's event.

        Raises:
            _Malformed: no usable ``Id``, not one sObject, no object type or record ``Id``, a bad time,
                a field given twice or holding elements.
        """
        if notification_id is None or not _is_record_id(notification_id):
            raise _Malformed("the notification has no usable Id")
        records = notification.findall(f"{{{_OUTBOUND}}}sObject")
        if len(records) != 1:
            raise _Malformed("a notification must hold exactly one sObject")
        record = records[0]
        kind = record.get(_XSI_TYPE, "").strip().rpartition(":")[2]  # sf:Contact: the prefix varies, the name counts
        if not _OBJECT_NAME.fullmatch(kind):
            raise _Malformed("the sObject has no xsi:type naming an object")
        fields = _record_fields(record)
        record_id = _text(fields["Id"], "Id") if "Id" in fields else None
        if not _is_record_id(record_id):
            raise _Malformed("the sObject has no usable Id")
        stamp = next((name for name in _CHANGE_TIMES if name in fields), None)
        occurred_at = received_ms if stamp is None else _epoch_ms(_text(fields[stamp], stamp), stamp)
        common = {
            "key": f"{org}:{notification_id}",
            "event_id": notification_id,
            "contact_id": f"{org}:{record_id}",
            "occurred_at": occurred_at,
            "kind": kind,
        }
        if kind != CONTACT_TYPE:
            return SourceEvent(**common, settled=Status.IGNORED, reason=f"{kind} records carry no contact")
        changes, refused = self._changes(fields)
        refusals = "; ".join(refused.values()) or None
        if changes:
            return SourceEvent(**common, changes=changes, refused=refused, reason=refusals)
        if refused:
            return SourceEvent(**common, refused=refused, settled=Status.REJECTED, reason=refusals)
        return SourceEvent(**common, settled=Status.IGNORED, reason="no mapped field in the notification")

    def _changes(self, fields: Mapping[str, Element]) -> tuple[dict[ContactField, FieldValue], dict[ContactField, str]]:
        """The mapped fields the record holds (``None``: cleared), and those refused for their length.

        Raises:
            _Malformed: a mapped field holds elements.
        """
        found = FieldChanges()
        names = {**_FIELDS, self.config.customer_id_field: ContactField.CUSTOMER_ID}
        for name, field in names.items():
            if name in fields:
                found.put(field, _text(fields[name], name), name)
        for field, preferred in _PREFERRED.items():
            given = [(name, _text(fields[name], name)) for name in preferred if name in fields]
            if given:  # the code when it has a value, else the name; both empty: cleared
                name, value = next(((name, value) for name, value in given if value), given[0])
                found.put(field, value, name)
        if _STREET in fields:
            found.put_street(_street(_text(fields[_STREET], _STREET)), _STREET)
        return found.changes, found.refused


def _notifications(body: bytes) -> Element:
    """The ``notifications`` element of a SOAP envelope, read without DTDs or entities.

    Raises:
        InvalidPayload: empty, not well-formed XML, in an encoding that cannot be read, a DTD or an entity,
            nested deeper than ``MAX_XML_DEPTH``, or not a SOAP envelope around Salesforce's ``notifications``.
    """
    if not body.strip():
        raise InvalidPayload("request body is empty")
    try:
        root: Element = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidPayload("request body declares a DTD or an entity, which are not accepted") from exc
    except ParseError as exc:
        raise InvalidPayload("request body is not well-formed XML") from exc
    except (LookupError, ValueError) as exc:  # an encoding no codec knows, or one expat cannot read (multi-byte)
        raise InvalidPayload("request body is not in an encoding it can be read in") from exc
    if _deeper_than(root, MAX_XML_DEPTH):
        raise InvalidPayload(f"request body is nested deeper than {MAX_XML_DEPTH} levels")
    body_element = root.find(f"{{{_SOAP}}}Body") if root.tag == f"{{{_SOAP}}}Envelope" else None
    notifications = None if body_element is None else body_element.find(f"{{{_OUTBOUND}}}notifications")
    if notifications is None:
        raise InvalidPayload("request body is not a SOAP envelope of Salesforce outbound notifications")
    return notifications


def _deeper_than(root: Element, limit: int) -> bool:
    """Whether an element lies more than ``limit`` levels down (the root is level 1), found without recursion."""
    pending = [(root, 1)]
    while pending:
        element, level = pending.pop()
        if level > limit:
            return True
        pending.extend((child, level + 1) for child in element)
    return False


def _organization(notifications: Element) -> str:
    """The message's ``OrganizationId``.

    Raises:
        InvalidPayload: missing, given twice, or not a 15- or 18-character id.
    """
    found = notifications.findall(f"{{{_OUTBOUND}}}OrganizationId")
    org = (found[0].text or "").strip() if len(found) == 1 and not len(found[0]) else ""
    if not (len(org) in {15, 18} and org.isascii() and org.isalnum()):
        raise InvalidPayload("the message must carry one OrganizationId of 15 or 18 letters and digits")
    return org


def _child_text(element: Element, tag: str) -> str | None:
    """The trimmed text of ``element``'s one child ``tag``, or ``None`` (missing, repeated, nil or holding elements)."""
    found = element.findall(tag)
    if len(found) != 1 or len(found[0]) or _is_nil(found[0]):
        return None
    return (found[0].text or "").strip() or None


def _record_fields(record: Element) -> dict[str, Element]:
    """The sObject's fields by name.

    Raises:
        _Malformed: a field appears twice (which of the values would count?).
    """
    fields: dict[str, Element] = {}
    for child in record:
        name = _local(child.tag)
        if name in fields:
            raise _Malformed(f"the sObject holds {name[:64]} twice")
        fields[name] = child
    return fields


def _refused(
    index: int, notification: Element, notification_id: str | None, *, org: str, reason: str, received_ms: int
) -> SourceEvent:
    """A malformed notification as an event settled ``refused``, keeping what of its identity is readable.

    Its dedup key is its org and ``Id`` when readable, else a digest of the notification as sent, so
    Salesforce's redeliveries of the message find it known; its name in the answer is its ``Id`` or position.
    """
    usable_id = notification_id if notification_id and _is_record_id(notification_id) else None
    digest = hashlib.sha256(tostring(notification)).hexdigest()
    return SourceEvent(
        key=f"{org}:{usable_id}" if usable_id else f"invalid:{org}:{digest}",
        event_id=usable_id or f"#{index}",
        contact_id=f"{org}:unknown",
        occurred_at=received_ms,
        kind="",
        settled=Status.REFUSED,
        reason=f"invalid Salesforce notification: {reason}",
    )


def build() -> SalesforceSource:
    """The Salesforce source from ``SALESFORCE_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid (no organization id, a malformed one).
    """
    return SalesforceSource(load_prefixed(SalesforceConfig, NAME))
