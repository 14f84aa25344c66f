"""Pipedrive webhooks (v2, the default since March 2025, and v1): one person event per request, HTTP Basic auth.

Pipedrive signs nothing: trust rests on the HTTP Basic credentials the webhook was created with and
on ``meta.company_id`` being a company this deployment serves. Each request carries the person as
it is now (v2 ``data``, v1 ``current``), so every mapped field in it is a change (present and empty
means cleared). Pipedrive bans a webhook for 30 minutes after ten failures in a row and loses what
it would have sent meanwhile, so only bad credentials, a foreign company and a body that is not a
Pipedrive event get a 4xx: other entities, deletions and persons without a mapped field are
acknowledged and recorded ``ignored``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from webhook_adapter.errors import CredentialsError, ForbiddenSender, InvalidPayload
from webhook_adapter.model import MAX_EPOCH_MS, ContactField, FieldValue, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_credential
from webhook_adapter.sources.base import (
    Answer,
    FieldChanges,
    JsonSource,
    Unusable,
    WebhookRequest,
    canonical_json,
    describe_validation_error,
    parse_json,
)

__all__ = ["ADDRESS_PARTS", "PipedriveConfig", "PipedriveMeta", "PipedriveSource", "build"]

NAME = "pipedrive"
REALM = "pipedrive"
PERSON = "person"
UNKNOWN_ENTITY = "unknown"
"""The entity of an ignored event (another object) whose id cannot be read."""
DELIVERED_ACTIONS = frozenset({"create", "change", "added", "updated"})
"""v2's ``create``/``change`` and v1's ``added``/``updated``: the actions whose person is delivered.

Deletions (v2 ``delete``, v1 ``deleted``) and v1 ``merged`` carry no new values: acknowledged and ignored.
"""
_V1_RETRY_COUNTER = "retry"
"""The one top-level key Pipedrive v1 changes when it resends an event: left out of its identity."""
_ATTEMPT = "attempt"
"""v2's attempt counter in ``meta``: left out of a v1 identity too, should a v1 event carry one."""
_UNAUTHORIZED = 401
_EPOCH_SECONDS_LIMIT = 10**11
"""Numbers below this are epoch seconds, above it epoch milliseconds (10**11 s is the year 5138)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_ID_LENGTH = 128
_ID_TEXT = re.compile(f"[!-~]{{1,{_MAX_ID_LENGTH}}}")
"""Visible ASCII only: ids become dedup keys, queue groups and log fields."""
_MAX_DIGITS = 20
"""No id or epoch time Pipedrive sends has more digits (read before conversion to a number)."""

ADDRESS_PARTS: dict[ContactField, tuple[str, ...]] = {
    ContactField.LINE1: ("street_number", "route"),
    ContactField.LINE2: ("subpremise",),
    ContactField.CITY: ("locality",),
    ContactField.STATE: ("admin_area_level_1",),
    ContactField.POSTAL_CODE: ("postal_code",),
    ContactField.COUNTRY: ("country",),
}
"""Contact field to the ``postal_address_*`` components it is made of (line1 joins the number and the street)."""
_WHOLE_ADDRESS = ("formatted_address", "value")
"""Where the whole address text sits when Google found no components: the flat ``postal_address_formatted_address``
(or ``postal_address`` itself), or the ``formatted_address``/``value`` of a ``postal_address`` object."""


def _company_ids(value: Any) -> Any:
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        if not all(part.isascii() and part.isdigit() and len(part) <= _MAX_DIGITS for part in parts):
            raise ValueError("must be comma-separated company ids (integers)")
        return frozenset(int(part) for part in parts)
    return value


class PipedriveConfig(BaseModel):
    """``PIPEDRIVE_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    company_ids: Annotated[frozenset[int], BeforeValidator(_company_ids), Field(min_length=1)]
    """The Pipedrive companies whose webhooks are accepted (``meta.company_id``); others get 403."""
    customer_id_field: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
    """Key of the person custom field holding the Sphere customer id (Settings → Data fields → API key)."""


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


type _Id = Annotated[
    str, BeforeValidator(_as_text), Field(min_length=1, max_length=_MAX_ID_LENGTH, pattern=r"^[!-~]+$")
]
"""Pipedrive's ids are numbers or UUIDs; text is accepted, but only visible ASCII: ids become keys and queue groups."""
type _Word = Annotated[str, Field(min_length=1, max_length=64)]


class PipedriveMeta(BaseModel):
    """``meta`` of either version: what the adapter reads of it (other keys are allowed and left alone)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: _Id | None = None
    """v2: the event's id. v1: the person's id (v1 events have no id of their own)."""
    action: _Word
    entity: _Word | None = None
    """v2's object type (v1 calls it ``object``)."""
    object: _Word | None = None
    entity_id: _Id | None = None
    timestamp: Annotated[StrictInt | StrictFloat | StrictStr, Field(union_mode="left_to_right")]
    """Epoch seconds (v1, and v2's meta table) or an ISO 8601 time (v2's format example): both are read."""
    timestamp_micro: Annotated[int | None, Field(ge=0, lt=MAX_EPOCH_MS * 1000, strict=True)] = None
    """v1 only: the same moment in microseconds, which orders two changes within one second."""

    @field_validator("*", mode="before")
    @classmethod
    def _usable(cls, value: Any) -> Any:
        if isinstance(value, Unusable):
            raise ValueError(value.problem)  # noqa: TRY004 - pydantic turns ValueError into a field error
        if isinstance(value, bool):
            raise ValueError("must not be a boolean")  # noqa: TRY004 - pydantic turns ValueError into a field error
        return value

    @property
    def kind(self) -> str:
        """The entity, whichever version named it."""
        return (self.entity or self.object or "").lower()


def _company_id(value: Any) -> int:
    """``meta.company_id`` as a number (v1 sends a number, v2's example text).

    Raises:
        InvalidPayload: missing, or not an integer.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)
    raise InvalidPayload("meta.company_id must be the Pipedrive company id (an integer)")


def _epoch_ms(meta: PipedriveMeta) -> int:
    """When the change happened, epoch milliseconds: v1's microseconds when given, else ``meta.timestamp``.

    Raises:
        InvalidPayload: the timestamp is neither epoch seconds (or milliseconds) nor an ISO time with a zone.
    """
    if meta.timestamp_micro is not None:
        return meta.timestamp_micro // 1000
    problem = "meta.timestamp must be epoch seconds or an ISO 8601 time with a zone, after 1970"
    value: int | float | str = meta.timestamp
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        value = int(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 <= value < MAX_EPOCH_MS:
            raise InvalidPayload(problem)
        return round(value * 1000) if value < _EPOCH_SECONDS_LIMIT else round(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidPayload(problem) from exc
    if moment.tzinfo is None or moment < _EPOCH or (moment - _EPOCH) // timedelta(milliseconds=1) >= MAX_EPOCH_MS:
        raise InvalidPayload(problem)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _entity_id(meta: PipedriveMeta, record: Any, *, v1: bool) -> str | None:
    """The record's id, else v2's ``meta.entity_id`` or v1's ``meta.id`` (the person's id there), else ``None``."""
    candidates = [record.get("id") if isinstance(record, dict) else None, meta.id if v1 else meta.entity_id]
    for candidate in candidates:
        text = _as_text(candidate)
        if isinstance(text, str) and _ID_TEXT.fullmatch(text):
            return text
    return None


def _text(value: Any, where: str) -> str | None:
    """A scalar field's value as trimmed text, ``None`` when empty (cleared).

    Raises:
        InvalidPayload: the value is not text, a number or null (the message names the field, never the value).
    """
    if isinstance(value, Unusable):
        raise InvalidPayload(f"{where} holds {value.problem}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise InvalidPayload(f"{where} must be text, a number or null")
    return (value or "").strip() or None


def _primary(items: Any, where: str) -> str | None:
    """The primary entry's value of an ``emails``/``phones`` list, else the first one's; ``None`` for an empty list.

    Raises:
        InvalidPayload: not a list (or null) of ``{value, primary, label}`` objects.
    """
    if items is None:
        return None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidPayload(f"{where} must be a list of {{value, primary, label}} objects")
    if not items:
        return None
    chosen = next((item for item in items if item.get("primary") is True), items[0])
    return _text(chosen.get("value"), f"{where}.value")


def _basic_credentials(request: WebhookRequest) -> str | None:
    """The ``user:password`` of an ``Authorization: Basic`` header, or ``None`` when there is no such header.

    Raises:
        CredentialsError: another scheme, or not base64 of UTF-8 text.
    """
    header = (request.header("authorization") or "").strip()
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise CredentialsError("Authorization must use the Basic scheme")
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise CredentialsError("Authorization Basic credentials are not base64 of user:password") from exc


@dataclass(frozen=True, slots=True)
class _Person:
    """A person record's mapped fields: the values present, those refused for length, and a note on the address."""

    changes: dict[ContactField, FieldValue]
    refused: dict[ContactField, str]
    note: str | None


class PipedriveSource(JsonSource):
    """Checks HTTP Basic credentials and the company, and reads one person event per request."""

    name = NAME

    def __init__(self, config: PipedriveConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id

    def answer(self, status: int, document: Mapping[str, Any]) -> Answer:
        """JSON, as every answer; a 401 also names the scheme and realm (``WWW-Authenticate``), as HTTP asks."""
        headers = {"WWW-Authenticate": f'Basic realm="{REALM}"'} if status == _UNAUTHORIZED else {}
        return Answer(status, json.dumps(document), headers=headers)

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check the ``Authorization: Basic`` credentials against each configured ``user:password``, in constant time.

        Raises:
            CredentialsError: no credentials, another scheme, not base64 of UTF-8 text, or no match.
        """
        verify_credential(given=_basic_credentials(request), secrets=secrets, what="HTTP Basic user:password")

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The request's one event: the company is checked first, then the event is read.

        Raises:
            ForbiddenSender: ``meta.company_id`` is not an allowed company.
            InvalidPayload: not a Pipedrive webhook (no ``meta``, no company, no event id in v2, a bad
                time, a person that is not an object, a mapped field of the wrong type).
        """
        payload = parse_json(request.body)
        if not isinstance(payload, dict):
            raise InvalidPayload("Pipedrive webhook body must be a JSON object")
        meta_document = payload.get("meta")
        if not isinstance(meta_document, dict):
            raise InvalidPayload("meta must be an object")
        company = _company_id(meta_document.get("company_id"))
        if company not in self.config.company_ids:
            raise ForbiddenSender("meta.company_id is not a company this deployment serves")
        try:
            meta = PipedriveMeta.model_validate(meta_document)
        except ValidationError as exc:
            raise InvalidPayload(f"invalid Pipedrive meta: {describe_validation_error(exc)}") from exc
        v1 = payload.get("v") == 1 or "current" in payload
        record = payload.get("current" if v1 else "data")
        key = self._key(payload, meta, v1=v1)
        kind = f"{meta.action}.{meta.kind or 'unknown'}"
        person_id = _entity_id(meta, record, v1=v1)
        relevant = meta.kind == PERSON and meta.action.lower() in DELIVERED_ACTIONS
        if person_id is None and relevant:
            raise InvalidPayload("the event names no person id (the record's id, or meta.entity_id)")
        common = {
            "key": key,
            "event_id": key,
            "contact_id": f"{company}:{person_id or UNKNOWN_ENTITY}",
            "occurred_at": _epoch_ms(meta),
            "kind": kind[:128],
        }
        if not relevant:
            return [
                SourceEvent(**common, settled=Status.IGNORED, reason=f"{kind[:128]} events carry no person to deliver")
            ]
        if not isinstance(record, dict):
            raise InvalidPayload(f"{'current' if v1 else 'data'} must be the person object")
        person = self._person(record, v1=v1)
        refusals = "; ".join(person.refused.values())
        reason = "; ".join(part for part in (person.note, refusals) if part) or None
        if person.changes:
            return [SourceEvent(**common, changes=person.changes, refused=person.refused, reason=reason)]
        if person.refused:
            return [SourceEvent(**common, refused=person.refused, settled=Status.REJECTED, reason=reason)]
        return [SourceEvent(**common, settled=Status.IGNORED, reason="no mapped field in the person")]

    @staticmethod
    def _key(payload: dict[str, Any], meta: PipedriveMeta, *, v1: bool) -> str:
        """The event's identity: v2's ``meta.id``; for v1 (no event id), a digest of the body without ``retry``.

        Raises:
            InvalidPayload: a v2 event without ``meta.id``.
        """
        if not v1:
            if meta.id is None:
                raise InvalidPayload("meta.id (the event id) is required in a v2 webhook")
            return meta.id
        identity = {key: value for key, value in payload.items() if key != _V1_RETRY_COUNTER}
        meta_document = identity.get("meta")
        if isinstance(meta_document, dict):
            identity["meta"] = {key: value for key, value in meta_document.items() if key != _ATTEMPT}
        return "v1:" + hashlib.sha256(canonical_json(identity).encode()).hexdigest()

    def _person(self, record: dict[str, Any], *, v1: bool) -> _Person:
        """The mapped fields the person record holds.

        Raises:
            InvalidPayload: a mapped field holds a value of the wrong type.
        """
        found: dict[ContactField, tuple[str, str | None]] = {}
        emails, phones = ("email", "phone") if v1 else ("emails", "phones")
        for field, name, alternate in ((ContactField.EMAIL, emails, "emails"), (ContactField.PHONE, phones, "phones")):
            for key in (name, alternate):
                if key in record:
                    found[field] = (key, _primary(record[key], key))
                    break
        customer = self._customer_id(record)
        if customer is not None:
            found[ContactField.CUSTOMER_ID] = customer
        address, note = _address(record)
        found.update(address)
        person = FieldChanges()
        for field, (name, value) in found.items():
            person.put(field, value, name)
        return _Person(person.changes, person.refused, note)

    def _customer_id(self, record: dict[str, Any]) -> tuple[str, str | None] | None:
        """The configured custom field, where the version puts it: top-level (v1) or under ``custom_fields`` (v2).

        Raises:
            InvalidPayload: it holds something else than text, a number, null or ``{"value": ...}``.
        """
        key = self.config.customer_id_field
        custom = record.get("custom_fields")
        if isinstance(custom, dict) and key in custom:
            where, value = f"custom_fields.{key}", custom[key]
        elif key in record:
            where, value = key, record[key]
        else:
            return None
        if isinstance(value, dict):
            value = value.get("value")
        return where, _text(value, where)


def _address(record: dict[str, Any]) -> tuple[dict[ContactField, tuple[str, str | None]], str | None]:
    """The address fields the record holds, from the ``postal_address_*`` components, and a note on a fallback.

    The components are flat keys (``postal_address_route``) in v1; a ``postal_address`` object holding them
    (``route``) is read too. When no component has a value but the whole address text does, that text is
    ``line1`` and the note says so (the components present stay cleared: Pipedrive knows none).

    Raises:
        InvalidPayload: a component is not text, a number or null.
    """
    nested = record.get("postal_address")
    if isinstance(nested, dict):
        parts, prefix = nested, "postal_address."
        whole_keys: tuple[str, ...] = _WHOLE_ADDRESS
    else:
        parts = {
            key.removeprefix("postal_address_"): value
            for key, value in record.items()
            if key.startswith("postal_address_")
        }
        prefix = "postal_address_"
        whole_keys = ("formatted_address",)
    found: dict[ContactField, tuple[str, str | None]] = {}
    for field, components in ADDRESS_PARTS.items():
        present = [name for name in components if name in parts]
        if present:
            values = [_text(parts[name], prefix + name) for name in present]
            joined = " ".join(value for value in values if value) or None
            found[field] = (prefix + present[-1], joined)
    if any(value for _, value in found.values()):
        return found, None
    whole = [(prefix + name, _text(parts[name], prefix + name)) for name in whole_keys if name in parts]
    if not isinstance(nested, dict) and "postal_address" in record:
        whole.append(("postal_address", _text(nested, "postal_address")))
    text = next(((name, value) for name, value in whole if value), None)
    if text is None:
        if whole and ContactField.LINE1 not in found:
            found[ContactField.LINE1] = (whole[0][0], None)
        return found, None
    return (
        {**found, ContactField.LINE1: text},
        f"the address has no components: line1 is Pipedrive's whole address ({text[0]})",
    )


def build() -> PipedriveSource:
    """The Pipedrive source from ``PIPEDRIVE_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return PipedriveSource(load_prefixed(PipedriveConfig, NAME))
