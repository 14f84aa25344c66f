"""Close webhooks: one signed event per request, about a contact (emails, phones) or a lead (addresses).

Close keeps a person's emails and phones on the contact and the postal addresses on the lead, so
both object types are read, each with its own Sphere customer id custom field (one shared custom
field, ``CLOSE_CUSTOMER_ID_FIELD``). ``data`` is the whole object after the change; on an update
``changed_fields`` names what changed, and only those mapped fields are passed on (with the
customer id), so an unrelated update is ignored instead of resending values Sphere already has.
Deletions and every other object type are acknowledged and ignored.

Close retries failed deliveries for up to 72 hours, out of order: ``event.id`` is the dedup key and
``event.date_updated`` orders the changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook_adapter.errors import InvalidPayload
from webhook_adapter.model import MAX_EPOCH_MS, ContactField, FieldValue, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_close
from webhook_adapter.sources.base import (
    JsonSource,
    PayloadModel,
    WebhookRequest,
    describe_validation_error,
    field_text,
    over_cap,
    parse_json,
)

__all__ = ["CloseConfig", "CloseEvent", "CloseSource", "build"]

NAME = "close"
MAPPED_ACTIONS = frozenset({"created", "updated"})
EMAILS = "emails"
PHONES = "phones"
ADDRESSES = "addresses"
MOBILE_TYPE = "mobile"
NOT_A_PHONE_TYPES = frozenset({"fax", "url"})
"""Close phone types that are no number to reach the person on: never sent as the customer's phone."""
ADDRESS_PARTS: dict[str, ContactField] = {
    "address_1": ContactField.LINE1,
    "address_2": ContactField.LINE2,
    "city": ContactField.CITY,
    "state": ContactField.STATE,
    "zipcode": ContactField.POSTAL_CODE,
    "country": ContactField.COUNTRY,
}
"""A Close address's keys (``lead.addresses[]``) to contact fields."""
_MAPPED_KEYS: dict[str, tuple[str, ...]] = {"contact": (EMAILS, PHONES), "lead": (ADDRESSES,)}
"""The keys of ``data`` read per object type: a contact's emails and phones, a lead's addresses."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CloseConfig(BaseModel):
    """``CLOSE_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    customer_id_field: Annotated[str, Field(pattern=r"^custom\.cf_[A-Za-z0-9]+$")]
    """Key of the custom field holding the Sphere customer id, as it appears in ``data`` (``custom.cf_...``)."""


type _Id = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[!-~]+$")]
"""Close's ids (``ev_...``, ``cont_...``, ``orga_...``, about 50 characters): visible ASCII only, as ids become keys
and queue groups; ``<organization>:<object>`` stays within a contact id's 256 characters."""
type _Word = Annotated[str, Field(max_length=63)]
"""``object_type`` and ``action``: ``<object_type>.<action>`` stays within an event kind's 128 characters."""


class CloseEvent(PayloadModel):
    """``event`` of a Close webhook: what the adapter reads of it (other keys are allowed and left alone)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: _Id
    object_type: _Word
    object_id: _Id
    action: _Word
    organization_id: _Id
    date_created: str | None = None
    date_updated: str | None = None
    changed_fields: list[Annotated[str, Field(max_length=256)]] | None = None
    data: dict[str, Any] | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event: CloseEvent


def _epoch_ms(value: str, where: str) -> int:
    """Close's ISO 8601 time in epoch milliseconds; without a zone it is UTC (Close's event dates have none).

    Raises:
        InvalidPayload: not an ISO 8601 time, or before 1970 or after ``MAX_EPOCH_MS``.
    """
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidPayload(f"{where} must be an ISO 8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if not 0 <= ms < MAX_EPOCH_MS:
        raise InvalidPayload(f"{where} must be an ISO 8601 time after 1970")
    return ms


def _entries(value: Any, where: str) -> list[Mapping[str, Any]]:
    """A list of objects (Close's ``emails``, ``phones``, ``addresses``); null reads as empty.

    Raises:
        InvalidPayload: not a list of objects.
    """
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise InvalidPayload(f"{where} must be a list of objects")
    return value


class CloseSource(JsonSource):
    """Verifies Close's signature and reads contact and lead events."""

    name = NAME

    def __init__(self, config: CloseConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check ``close-sig-hash`` (hex HMAC-SHA256 of ``close-sig-timestamp`` + body) against each signature key.

        Raises:
            SignatureError: headers missing, malformed or stale, no key is hex, or no key matches.
        """
        verify_close(
            keys=secrets,
            timestamp=request.header("close-sig-timestamp"),
            signature=request.header("close-sig-hash"),
            body=request.body,
            now=request.received_at,
        )

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The request's one event; contact and lead changes carry their mapped fields.

        Raises:
            InvalidPayload: not a Close webhook (``{subscription_id, event: {...}}``), a bad date, or a mapped
                field of the wrong shape.
        """
        payload = parse_json(request.body)
        if not isinstance(payload, dict):
            raise InvalidPayload("Close webhook body must be a JSON object")
        try:
            event = _Envelope.model_validate(payload).event
        except ValidationError as exc:
            # The message names fields and problems only: pydantic's own message holds the payload's values (PII).
            raise InvalidPayload(f"invalid Close webhook: {describe_validation_error(exc)}") from exc
        where = "event.date_updated" if event.date_updated else "event.date_created"
        stamp = event.date_updated or event.date_created
        if not stamp:
            raise InvalidPayload("Close event has neither date_updated nor date_created")
        kind = f"{event.object_type}.{event.action}"
        common = {
            "key": event.id,
            "event_id": event.id,
            "contact_id": f"{event.organization_id}:{event.object_id}",
            "occurred_at": _epoch_ms(stamp, where),
            "kind": kind,
        }
        if event.object_type not in _MAPPED_KEYS or event.action not in MAPPED_ACTIONS:
            return [SourceEvent(**common, settled=Status.IGNORED, reason=f"{kind} events carry no contact fields")]
        if event.data is None:
            raise InvalidPayload("Close event has no data object")
        mapped = [key for key in _MAPPED_KEYS[event.object_type] if self._changed(event, key)]
        if not mapped and not self._changed(event, self.config.customer_id_field):
            return [
                SourceEvent(**common, settled=Status.IGNORED, reason=f"no mapped field changed in this {kind} event")
            ]
        changes, refused = self._changes(event.data, mapped)
        refusals = "; ".join(refused.values()) or None
        if changes:
            return [SourceEvent(**common, changes=changes, refused=refused, reason=refusals)]
        return [SourceEvent(**common, settled=Status.REJECTED, refused=refused, reason=refusals)]

    @staticmethod
    def _changed(event: CloseEvent, key: str) -> bool:
        """Whether ``data[key]`` is passed on: present and, on an update listing them, among the changed fields.

        A custom field is looked for in ``changed_fields`` both as ``custom.cf_...`` and as ``cf_...``
        (how Close names it there is unconfirmed).
        """
        if key not in (event.data or {}):
            return False
        if event.action != "updated" or event.changed_fields is None:
            return True
        return key in event.changed_fields or key.removeprefix("custom.") in event.changed_fields

    def _changes(
        self, data: Mapping[str, Any], mapped: Iterable[str]
    ) -> tuple[dict[ContactField, FieldValue], dict[ContactField, str]]:
        """The fields of the ``mapped`` keys and the customer id, and those refused for their length.

        Raises:
            InvalidPayload: a mapped field of ``data`` has the wrong shape.
        """
        values: dict[ContactField, tuple[str, str]] = {}  # field -> (value, where it was read)
        for key in mapped:
            entries = _entries(data[key], key)
            if key == EMAILS:
                first = entries[0] if entries else {}
                values[ContactField.EMAIL] = (field_text(first.get("email"), "emails[0].email"), "emails[0].email")
            elif key == PHONES:
                values |= self._phones(entries)
            else:
                first = entries[0] if entries else {}
                for part, field in ADDRESS_PARTS.items():
                    where = f"addresses[0].{part}"
                    values[field] = (field_text(first.get(part), where), where)
        customer_key = self.config.customer_id_field
        if customer_key in data:
            values[ContactField.CUSTOMER_ID] = (field_text(data[customer_key], customer_key), customer_key)
        changes: dict[ContactField, FieldValue] = {}
        refused: dict[ContactField, str] = {}
        for field, (text, where) in values.items():
            if problem := over_cap(text, where):
                refused[field] = problem
            else:
                changes[field] = text or None
        return changes, refused

    @staticmethod
    def _phones(phones: list[Mapping[str, Any]]) -> dict[ContactField, tuple[str, str]]:
        """The first mobile number, and the first other number (neither fax nor URL); each absent one cleared.

        Raises:
            InvalidPayload: a phone's number or type has the wrong shape.
        """
        found: dict[ContactField, tuple[str, str]] = {}
        for index, entry in enumerate(phones):
            kind = field_text(entry.get("type"), f"phones[{index}].type").lower()
            if kind in NOT_A_PHONE_TYPES:
                continue
            field = ContactField.MOBILE_PHONE if kind == MOBILE_TYPE else ContactField.PHONE
            if field not in found:
                where = f"phones[{index}].phone"
                found[field] = (field_text(entry.get("phone"), where), where)
        return {
            ContactField.MOBILE_PHONE: found.get(ContactField.MOBILE_PHONE, ("", PHONES)),
            ContactField.PHONE: found.get(ContactField.PHONE, ("", PHONES)),
        }


def build() -> CloseSource:
    """The Close source from ``CLOSE_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return CloseSource(load_prefixed(CloseConfig, NAME))
