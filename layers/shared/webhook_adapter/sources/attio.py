"""Attio webhooks: signed batches of record events that name the record and carry no value.

Attio posts ``{webhook_id, events: [...]}``; an event's ``id`` says which workspace, object, record (and,
on an update, attribute) changed, never the new value. So a person's ``record.created`` or ``record.updated``
becomes an event with no changes that asks deliver to read the record (``ReadCause.THIN``): deliver reads it
from Attio's API when the source has a reader, and otherwise records it ``incomplete`` saying why. Only the
records of the workspace's ``people`` object (``ATTIO_PEOPLE_OBJECT_ID``) are contacts: companies, deals and
custom objects are acknowledged and ignored, like deletions, merges and every other event type.

Attio retries a delivery up to 10 times over about 3 days with the same ``Idempotency-Key`` header, so an
event's dedup key is that key and its position in ``events``; without the header, a digest of the body
(canonical JSON) stands in for it. Attio sends no change time: an event is dated by its arrival, and the read
dates the values by the record's own modification time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from webhook_adapter.errors import InvalidPayload
from webhook_adapter.model import ReadCause, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_attio
from webhook_adapter.sources.base import (
    JsonSource,
    PayloadModel,
    WebhookRequest,
    canonical_json,
    describe_validation_error,
    parse_json,
)

__all__ = ["MAX_EVENTS", "UNKNOWN_CONTACT", "AttioConfig", "AttioEvent", "AttioSource", "build"]

NAME = "attio"
MAX_EVENTS = 100
"""Most events one request may hold. Attio's docs say a delivery holds one event today and may be batched later
(how many is unconfirmed): a request over this is refused whole (400)."""
READ_EVENT_TYPES = frozenset({"record.created", "record.updated"})
"""Event types after which the person's record holds values to send (read from Attio)."""
MERGED = "record.merged"
UNKNOWN_CONTACT = "unknown"
"""The contact id of a refused element whose workspace or record id is unreadable."""
IDEMPOTENCY_KEY_HEADER = "idempotency-key"
_BODY_DIGEST_PREFIX = "body-sha256-"
_UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,200}$"
"""An ``Idempotency-Key`` the adapter takes as is: visible ASCII, short enough for an event id with its index."""


class AttioConfig(BaseModel):
    """``ATTIO_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    people_object_id: Annotated[str, Field(pattern=_UUID_PATTERN)]
    """The workspace's ``people`` object id (``GET /v2/objects/people``): only its records are contacts."""


type _Id = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[!-~]+$")]
"""Attio's ids (UUIDs): visible ASCII only, as ids become keys and queue groups; ``<workspace>:<record>`` stays
within a contact id's 256 characters."""
type _Kind = Annotated[str, Field(min_length=1, max_length=128)]


class _Read(PayloadModel):
    """A part of Attio's body: unknown keys are left alone, a value ``parse_json`` marked unusable is an error."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class AttioIds(_Read):
    """An event's ``id``: which record changed. Other event types (notes, tasks, lists) name other ids."""

    workspace_id: _Id
    object_id: _Id | None = None
    record_id: _Id | None = None


class AttioEvent(_Read):
    """One element of ``events``: what the adapter reads of it (``actor`` and other keys are left alone)."""

    event_type: _Kind
    id: AttioIds


class _Envelope(_Read):
    webhook_id: _Id
    events: Annotated[list[Any], Field(min_length=1, max_length=MAX_EVENTS)]


_ID: TypeAdapter[str] = TypeAdapter(_Id)
_KIND: TypeAdapter[str] = TypeAdapter(_Kind)
_IDEMPOTENCY_KEY: TypeAdapter[str] = TypeAdapter(Annotated[str, Field(pattern=_IDEMPOTENCY_KEY_PATTERN)])


def _readable[T](adapter: TypeAdapter[T], value: Any) -> T | None:
    """``value`` as a valid event's field of this type would read it, or ``None``."""
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


class AttioSource(JsonSource):
    """Verifies Attio's signature and turns a person's record events into events that ask for a read."""

    name = NAME

    def __init__(self, config: AttioConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id
        self._people = config.people_object_id.lower()

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check ``Attio-Signature`` (hex HMAC-SHA256 of the raw body) against each configured secret.

        Raises:
            SignatureError: no secret is configured, the header is missing or malformed, or no secret matches.
        """
        verify_attio(secrets=secrets, signature=request.header("attio-signature"), body=request.body)

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """One event per element of ``events``, in order; a malformed element is settled ``refused`` on its own.

        Raises:
            InvalidPayload: the body is not ``{webhook_id, events: [...]}`` with 1 to ``MAX_EVENTS`` events, or
                the ``Idempotency-Key`` header is not visible ASCII of at most 200 characters.
        """
        payload = parse_json(request.body)
        if not isinstance(payload, dict):
            raise InvalidPayload("Attio webhook body must be a JSON object")
        try:
            envelope = _Envelope.model_validate(payload)
        except ValidationError as exc:
            # The message names fields and problems only: pydantic's own message holds the payload's values (PII).
            raise InvalidPayload(f"invalid Attio webhook: {describe_validation_error(exc)}") from exc
        delivery = self._delivery_key(request, payload)
        received_ms = int(request.received_at * 1000)
        return [
            self._read(f"{delivery}:{index}", element, received_ms=received_ms)
            for index, element in enumerate(envelope.events)
        ]

    @staticmethod
    def _delivery_key(request: WebhookRequest, payload: Any) -> str:
        """The delivery's identity, the same on each of Attio's retries: ``Idempotency-Key``, else a body digest.

        Raises:
            InvalidPayload: the header is present but not visible ASCII of at most 200 characters.
        """
        given = request.header(IDEMPOTENCY_KEY_HEADER)
        if given is None:
            return _BODY_DIGEST_PREFIX + hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        try:
            return _IDEMPOTENCY_KEY.validate_python(given.strip())
        except ValidationError as exc:
            raise InvalidPayload("Idempotency-Key header must be 1 to 200 visible ASCII characters") from exc

    def _read(self, key: str, element: Any, *, received_ms: int) -> SourceEvent:
        if not isinstance(element, dict):
            return _refused(key, element, "an Attio event must be a JSON object", received_ms=received_ms)
        try:
            event = AttioEvent.model_validate(element)
        except ValidationError as exc:
            reason = f"invalid Attio event: {describe_validation_error(exc)}"
            return _refused(key, element, reason, received_ms=received_ms)
        ids = event.id
        is_record = event.event_type.startswith("record.")
        if is_record and (ids.object_id is None or ids.record_id is None):
            reason = f"invalid Attio event: a {event.event_type} event names no object_id and record_id"
            return _refused(key, element, reason, received_ms=received_ms)
        common = {
            "key": key,
            "event_id": key,
            "contact_id": f"{ids.workspace_id}:{ids.record_id}" if ids.record_id else UNKNOWN_CONTACT,
            "occurred_at": received_ms,
            "kind": event.event_type,
        }
        if not is_record:
            reason = f"{event.event_type} events are not about a person"
            return SourceEvent(**common, settled=Status.IGNORED, reason=reason)
        if (ids.object_id or "").lower() != self._people:
            return SourceEvent(**common, settled=Status.IGNORED, reason="the record is not of the people object")
        if event.event_type == MERGED:
            reason = "record.merged events are not handled yet: a merge will be handled with the read of the record"
            return SourceEvent(**common, settled=Status.IGNORED, reason=reason)
        if event.event_type not in READ_EVENT_TYPES:
            return SourceEvent(**common, settled=Status.IGNORED, reason=f"{event.event_type} events carry no values")
        return SourceEvent(**common, read=ReadCause.THIN)


def _refused(key: str, element: Any, reason: str, *, received_ms: int) -> SourceEvent:
    """A malformed element of ``events`` as an event settled ``refused``, keeping what of its identity is readable.

    Its key is the delivery's and its position, so Attio's retries of the delivery find it known.
    """
    fields: dict[str, Any] = element if isinstance(element, dict) else {}
    ids: dict[str, Any] = fields["id"] if isinstance(fields.get("id"), dict) else {}
    workspace_id, record_id = _readable(_ID, ids.get("workspace_id")), _readable(_ID, ids.get("record_id"))
    return SourceEvent(
        key=key,
        event_id=key,
        contact_id=f"{workspace_id}:{record_id}" if workspace_id and record_id else UNKNOWN_CONTACT,
        occurred_at=received_ms,
        kind=_readable(_KIND, fields.get("event_type")) or "",
        settled=Status.REFUSED,
        reason=reason,
    )


def build() -> AttioSource:
    """The Attio source from ``ATTIO_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return AttioSource(load_prefixed(AttioConfig, NAME))
