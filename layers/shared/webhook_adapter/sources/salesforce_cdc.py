"""Salesforce Change Data Capture through Event Relay: ``ContactChangeEvent``s delivered by Amazon EventBridge.

Not an HTTP webhook: Event Relay publishes to a partner event bus, a rule invokes the receive function
with the EventBridge event, and ``webhook_adapter.relay`` hands it here. There is no signature to check:
only EventBridge can invoke the function that way (IAM), and the partner source name
(``aws.partner/salesforce.com/...``) is set by AWS, not by the sender.

The Salesforce event sits under ``detail.payload``; its ``ChangeEventHeader`` says what changed. The
envelope around it is not documented by a published sample, so ``detail`` itself holding the header is
read too. An ``UPDATE`` carries only what changed: a field named in ``changedFields`` (or, for the address,
``MailingAddress.City`` and the like) with its new value, one named in ``nulledFields`` cleared, every
other field unknown (absent, or ``null`` as CometD and Pub/Sub send unchanged fields). A ``CREATE`` carries
every field that has a value. One event may name several records (the same change in one transaction):
each record is one ``SourceEvent``. Gap events (``GAP_*``) carry no fields: deliver reads the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from webhook_adapter.errors import InvalidPayload
from webhook_adapter.model import UNCARRIABLE_TEXT, ContactField, FieldValue, ReadCause, SourceEvent, Status
from webhook_adapter.salesforce_fields import CDC_DETAIL_TYPE, CDC_NAME, CDC_PARTNER_SOURCE_PREFIX, split_street
from webhook_adapter.settings import load_prefixed
from webhook_adapter.sources.base import FieldChanges, describe_validation_error

__all__ = [
    "DETAIL_TYPE",
    "NAME",
    "PARTNER_SOURCE_PREFIX",
    "SalesforceCdcConfig",
    "SalesforceCdcSource",
    "build",
]

NAME = CDC_NAME
DETAIL_TYPE = CDC_DETAIL_TYPE
PARTNER_SOURCE_PREFIX = CDC_PARTNER_SOURCE_PREFIX
_ENTITY = "Contact"
_ADDRESS = "MailingAddress"
_MAX_RECORDS = 1000
"""More record ids than one change event carries in practice; a longer list is not a change event."""

_FIELDS: dict[str, ContactField] = {
    "Email": ContactField.EMAIL,
    "Phone": ContactField.PHONE,
    "MobilePhone": ContactField.MOBILE_PHONE,
}
_ADDRESS_FIELDS: dict[str, ContactField] = {
    "City": ContactField.CITY,
    "PostalCode": ContactField.POSTAL_CODE,
}
_ADDRESS_PREFERRED: dict[ContactField, tuple[str, str]] = {
    ContactField.STATE: ("StateCode", "State"),
    ContactField.COUNTRY: ("CountryCode", "Country"),
}
"""The picklist code when the org has state and country picklists and it has a value, else the name."""

_CHANGES = frozenset({"CREATE", "UPDATE"})
_IGNORED = frozenset({"DELETE", "UNDELETE"})
_GAPS = frozenset({"GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"})

type _RecordId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")]
"""A Salesforce id, 15 or 18 letters and digits (the change events send 18)."""


class SalesforceCdcConfig(BaseModel):
    """``SALESFORCE_CDC_*`` settings of the receive function."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    customer_id_field: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")] = "Sphere_Customer_Id__c"
    """The Contact field holding the Sphere customer id (a custom field: ``__c``)."""


class _Header(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    entityName: Annotated[StrictStr, Field(min_length=1, max_length=128)]  # noqa: N815  # Salesforce's names
    changeType: Annotated[StrictStr, Field(min_length=1, max_length=32)]  # noqa: N815
    recordIds: Annotated[list[_RecordId], Field(max_length=_MAX_RECORDS)] = Field(default_factory=list)  # noqa: N815
    changedFields: list[Annotated[StrictStr, Field(max_length=256)]] | None = None  # noqa: N815
    nulledFields: list[Annotated[StrictStr, Field(max_length=256)]] = Field(default_factory=list)  # noqa: N815
    commitTimestamp: Annotated[StrictInt, Field(ge=0, lt=10**14)]  # noqa: N815
    commitNumber: Annotated[StrictInt, Field(ge=0, lt=10**20)] = 0  # noqa: N815
    sequenceNumber: Annotated[StrictInt, Field(ge=0, lt=10**10)] = 0  # noqa: N815
    transactionKey: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]  # noqa: N815


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    ChangeEventHeader: _Header


def _text(value: Any, name: str) -> FieldValue:
    """A field's value as trimmed text (``None`` when empty or null).

    Raises:
        InvalidPayload: not text (a number, an object), or text nothing downstream can store; names the field.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidPayload(f"{name} must be text or null")
    if UNCARRIABLE_TEXT.search(value):
        raise InvalidPayload(f"{name} holds a lone surrogate or a noncharacter (U+FFFE, U+FFFF)")
    return value.strip() or None


def payload_of(detail: Any) -> Mapping[str, Any]:
    """The Salesforce event in an EventBridge ``detail``: under ``payload``, or ``detail`` itself.

    Raises:
        InvalidPayload: neither holds a ``ChangeEventHeader``.
    """
    if isinstance(detail, Mapping):
        payload = detail.get("payload")
        if isinstance(payload, Mapping) and "ChangeEventHeader" in payload:
            return payload
        if "ChangeEventHeader" in detail:
            return detail
    raise InvalidPayload("detail holds no change event (no payload.ChangeEventHeader)")


class SalesforceCdcSource:
    """Turns one ``ContactChangeEvent`` into one event per record it names."""

    name = NAME

    def __init__(self, config: SalesforceCdcConfig) -> None:
        self.config = config

    def parse(self, detail: Any) -> list[SourceEvent]:
        """The events of one EventBridge ``detail``: changes, gaps to re-read, or settled ones.

        Raises:
            InvalidPayload: not a change event, a header of the wrong shape, or a mapped field that is not text
                (the message names the field or the header's path, never a value).
        """
        payload = payload_of(detail)
        try:
            event = _Payload.model_validate(payload)
        except ValidationError as exc:
            raise InvalidPayload(f"not a change event: {describe_validation_error(exc)}") from exc
        header = event.ChangeEventHeader
        change_type = header.changeType.upper()
        common = {"occurred_at": header.commitTimestamp, "kind": f"{header.entityName}.{change_type}"}
        if header.entityName != _ENTITY:
            return self._each(header, common, settled=Status.IGNORED, reason=f"not a Contact ({header.entityName})")
        if change_type in _GAPS:
            if not header.recordIds:  # an overflow names no record: nothing to re-read per contact
                return [
                    SourceEvent(
                        key=_key(header, "*"),
                        event_id=_key(header, "*"),
                        contact_id="*",
                        **common,
                        settled=Status.INCOMPLETE,
                        reason=f"{change_type} names no record: the changes it stands for cannot be read",
                    )
                ]
            return self._each(header, common, read=ReadCause.GAP, reason=f"{change_type}: the record is read")
        if change_type in _IGNORED or change_type not in _CHANGES:
            return self._each(header, common, settled=Status.IGNORED, reason=f"{change_type} changes no field")
        if not header.recordIds:
            raise InvalidPayload("ChangeEventHeader.recordIds names no record")
        changes, refused = self._changes(payload, header, create=change_type == "CREATE")
        refusals = "; ".join(sorted(set(refused.values()))) or None
        if changes:
            return self._each(header, common, changes=changes, refused=refused, reason=refusals)
        if refused:
            return self._each(header, common, refused=refused, settled=Status.REJECTED, reason=refusals)
        return self._each(header, common, settled=Status.IGNORED, reason="no mapped field changed")

    def _each(self, header: _Header, common: Mapping[str, Any], **outcome: Any) -> list[SourceEvent]:
        """One event per record id (the record's 18-character id is the contact)."""
        return [
            SourceEvent(key=_key(header, record), event_id=_key(header, record), contact_id=record, **common, **outcome)
            for record in dict.fromkeys(header.recordIds)
        ]

    def _changes(
        self, payload: Mapping[str, Any], header: _Header, *, create: bool
    ) -> tuple[dict[ContactField, FieldValue], dict[ContactField, str]]:
        """The mapped fields the event changes (``None``: cleared), and those refused for their length.

        Raises:
            InvalidPayload: a mapped field, or the address, has the wrong type.
        """
        nulled = set(header.nulledFields)
        changed = None if create or header.changedFields is None else set(header.changedFields)

        def given(path: str, value: Any) -> bool:
            """Whether the event says something about ``path``: changed (or, on CREATE, present with a value)."""
            if path in nulled:
                return True
            if changed is not None:
                return path in changed and value is not None
            return value is not None

        found = FieldChanges()
        names = {**_FIELDS, self.config.customer_id_field: ContactField.CUSTOMER_ID}
        for name, field in names.items():
            value = payload.get(name)
            if given(name, value):
                found.put(field, None if name in nulled else _text(value, name), name)
        address = payload.get(_ADDRESS)
        if address is not None and not isinstance(address, Mapping):
            raise InvalidPayload(f"{_ADDRESS} must be an object")
        parts: Mapping[str, Any] = address or {}
        for part, field in _ADDRESS_FIELDS.items():
            path = f"{_ADDRESS}.{part}"
            if given(path, parts.get(part)):
                found.put(field, None if path in nulled else _text(parts.get(part), path), path)
        for field, preferred in _ADDRESS_PREFERRED.items():
            said = [
                (path, None if path in nulled else _text(parts.get(part), path))
                for part in preferred
                if given(path := f"{_ADDRESS}.{part}", parts.get(part))
            ]
            if said:  # the code when it has a value, else the name; both cleared: cleared
                path, value = next(((path, value) for path, value in said if value), said[0])
                found.put(field, value, path)
        street = f"{_ADDRESS}.Street"
        if given(street, parts.get("Street")):
            found.put_street(split_street(None if street in nulled else _text(parts.get("Street"), street)), street)
        return found.changes, found.refused


def _key(header: _Header, record: str) -> str:
    """The event's identity for one record, ordered as Salesforce committed it.

    ``transactionKey`` and ``sequenceNumber`` identify a change event (the same across EventBridge's
    redeliveries and a relay's replay); the record id tells apart the records one event names. The
    commit number and sequence number lead, zero-padded, so events of the same millisecond sort in
    commit order when a contact's events are queued (``group_by_contact`` sorts on time, then key).
    The replay id is not used: where EventBridge's envelope carries it is not documented.
    """
    return f"{header.commitNumber:020d}:{header.sequenceNumber:010d}:{header.transactionKey}:{record}"


def build() -> SalesforceCdcSource:
    """The source from ``SALESFORCE_CDC_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is invalid.
    """
    return SalesforceCdcSource(load_prefixed(SalesforceCdcConfig, NAME))
