"""Keap REST hooks: batches of up to 1,000 changed contact ids, trusted by an endpoint token, with a handshake.

A subscription (``POST /crm/rest/v1/hooks`` with an ``eventKey`` and the ``hookUrl``) is confirmed by a
``POST`` to the hook URL carrying an ``X-Hook-Secret`` header and no event: the adapter answers ``200``
echoing that header, and Keap marks the subscription verified. Keap signs none of its deliveries with that
secret (its docs describe no signature), so trust is an endpoint token in the hook URL (``?token=``),
checked on the handshake and on every delivery like Salesforce's Outbound Messages.

A delivery is ``{event_key, object_type, object_keys: [{id, apiUrl, timestamp}]}``: ids only, so a contact's
``contact.add`` or ``contact.edit`` becomes an event with no changes that asks deliver to read the contact
(``ReadCause.THIN``). Keap's contact ids are numbers unique within the Keap app, which one deployment serves:
the contact id is the number as text. Keap retries a delivery up to four times with the same body, so an
event's dedup key is ``event_key``, id and ``timestamp``; the ``timestamp`` (the change's time) orders it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from webhook_adapter.errors import CredentialsError, InvalidPayload
from webhook_adapter.model import ReadCause, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_credential
from webhook_adapter.sources.base import (
    Answer,
    JsonSource,
    PayloadModel,
    WebhookRequest,
    describe_validation_error,
    parse_json,
)

__all__ = ["HOOK_SECRET_HEADER", "MAX_OBJECT_KEYS", "TOKEN_PARAMETER", "KeapConfig", "KeapSource", "build"]

NAME = "keap"
MAX_OBJECT_KEYS = 1000
"""Most changed objects one delivery holds (Keap's REST hook documentation): more is refused whole (400)."""
HOOK_SECRET_HEADER = "X-Hook-Secret"  # nosec B105
"""The header of Keap's subscription handshake, echoed in the answer (a header's name, not a secret)."""
TOKEN_PARAMETER = "token"  # nosec B105
"""The query parameter of the hook URL that carries the endpoint token (its name, not a token)."""
CONTACT = "contact"
READ_EVENT_KEYS = frozenset({"contact.add", "contact.edit"})
"""Event keys after which the contact holds values to send (read from Keap)."""
UNKNOWN_CONTACT = "unknown"
"""The contact id of a refused element whose id is unreadable."""
_HOOK_SECRET_PATTERN = r"^[!-~]{1,512}$"  # nosec B105
"""What an ``X-Hook-Secret`` value must look like to be echoed (a shape, not a secret): visible ASCII, bounded."""


class KeapConfig(BaseModel):
    """``KEAP_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    """The secret holding the endpoint token(s) of the hook URL's ``?token=``."""


type _Kind = Annotated[str, Field(min_length=1, max_length=128)]


class _Read(PayloadModel):
    """A part of Keap's body: unknown keys are left alone, a value ``parse_json`` marked unusable is an error."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class KeapObjectKey(_Read):
    """One element of ``object_keys``: which object changed and when (``apiUrl`` is left alone)."""

    id: Annotated[int, Field(gt=0, lt=2**63, strict=True)]
    timestamp: Annotated[str, Field(min_length=1, max_length=64)]


class _Delivery(_Read):
    event_key: _Kind
    object_type: _Kind
    object_keys: Annotated[list[Any], Field(min_length=1, max_length=MAX_OBJECT_KEYS)]


_HOOK_SECRET: TypeAdapter[str] = TypeAdapter(Annotated[str, Field(pattern=_HOOK_SECRET_PATTERN)])


class KeapSource(JsonSource):
    """Checks the endpoint token, answers Keap's handshake and turns contact ids into events that ask for a read."""

    name = NAME

    def __init__(self, config: KeapConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id

    def check_media_type(self, request: WebhookRequest) -> None:
        """Deliveries are ``application/json``; the handshake carries no body, so its content type is not checked.

        Raises:
            UnsupportedMediaType: a delivery of another content type.
        """
        if request.header(HOOK_SECRET_HEADER) is None:
            super().check_media_type(request)

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check the endpoint token (``?token=`` of the hook URL) against each configured one.

        Raises:
            CredentialsError: no token, more than one, or none matches.
        """
        tokens = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(TOKEN_PARAMETER, [])
        if len(tokens) > 1:
            raise CredentialsError(f"the {TOKEN_PARAMETER} query parameter must be given once")
        verify_credential(given=tokens[0] if tokens else None, secrets=secrets, what="endpoint token (?token=)")

    def handshake(self, request: WebhookRequest) -> Answer | None:
        """Keap's subscription handshake (an ``X-Hook-Secret`` header): ``200`` echoing it; ``None`` for a delivery.

        Called once the request is verified, so only a hook URL with the endpoint token gets verified.

        Raises:
            InvalidPayload: the header is not 1 to 512 visible ASCII characters.
        """
        given = request.header(HOOK_SECRET_HEADER)
        if given is None:
            return None
        secret = given.strip()
        try:
            _HOOK_SECRET.validate_python(secret)
        except ValidationError as exc:
            raise InvalidPayload(f"{HOOK_SECRET_HEADER} header must be 1 to 512 visible ASCII characters") from exc
        return Answer(200, '{"verified": true}', headers={HOOK_SECRET_HEADER: secret})

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """One event per element of ``object_keys``, in order; a malformed element is settled ``refused`` alone.

        Raises:
            InvalidPayload: the body is not ``{event_key, object_type, object_keys: [...]}`` with 1 to
                ``MAX_OBJECT_KEYS`` elements.
        """
        payload = parse_json(request.body)
        if not isinstance(payload, dict):
            raise InvalidPayload("Keap hook body must be a JSON object")
        try:
            delivery = _Delivery.model_validate(payload)
        except ValidationError as exc:
            # The message names fields and problems only: pydantic's own message holds the payload's values (PII).
            raise InvalidPayload(f"invalid Keap hook delivery: {describe_validation_error(exc)}") from exc
        received_ms = int(request.received_at * 1000)
        return [
            self._read(delivery, index, element, received_ms=received_ms)
            for index, element in enumerate(delivery.object_keys)
        ]

    @staticmethod
    def _read(delivery: _Delivery, index: int, element: Any, *, received_ms: int) -> SourceEvent:
        kind = delivery.event_key
        try:
            key = KeapObjectKey.model_validate(element)
        except ValidationError as exc:
            return _refused(
                delivery,
                index,
                element,
                f"invalid Keap object key: {describe_validation_error(exc)}",
                received_ms=received_ms,
            )
        occurred_at = _epoch_ms(key.timestamp)
        if occurred_at is None:
            reason = "invalid Keap object key: timestamp is not an ISO 8601 time with a zone"
            return _refused(delivery, index, element, reason, received_ms=received_ms)
        event_id = f"{kind}:{key.id}:{key.timestamp.strip()}"
        common = {
            "key": event_id,
            "event_id": event_id,
            "contact_id": str(key.id),
            "occurred_at": occurred_at,
            "kind": kind,
        }
        if delivery.object_type != CONTACT:
            return SourceEvent(
                **common, settled=Status.IGNORED, reason=f"{delivery.object_type} objects are not contacts"
            )
        if kind not in READ_EVENT_KEYS:
            return SourceEvent(**common, settled=Status.IGNORED, reason=f"{kind} events carry no values")
        return SourceEvent(**common, read=ReadCause.THIN)


def _epoch_ms(text: str) -> int | None:
    """The hook's ``timestamp`` (ISO 8601 with a zone: ``Z``, ``+00:00`` or ``+0000``) as epoch ms, else ``None``.

    Parsed here rather than with the readers' helper so receive never loads the readers' HTTP client.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp() * 1000) if moment.tzinfo is not None else None


def _refused(delivery: _Delivery, index: int, element: Any, reason: str, *, received_ms: int) -> SourceEvent:
    """A malformed element of ``object_keys`` as an event settled ``refused``, keyed by its delivery and position.

    Keap repeats the same body on a retry, so the key (``event_key``, position, ``timestamp`` as sent when it
    is text) finds the refusal known.
    """
    fields: dict[str, Any] = element if isinstance(element, dict) else {}
    raw_id = fields.get("id")
    contact_id = str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) and raw_id > 0 else None
    stamp = fields.get("timestamp")
    stamp_text = stamp.strip()[:64] if isinstance(stamp, str) and stamp.strip().isprintable() else ""
    key = f"{delivery.event_key}:refused:{index}:{contact_id or ''}:{stamp_text}"
    return SourceEvent(
        key=key,
        event_id=key,
        contact_id=contact_id or UNKNOWN_CONTACT,
        occurred_at=received_ms,
        kind=delivery.event_key,
        settled=Status.REFUSED,
        reason=reason,
    )


def build() -> KeapSource:
    """The Keap source from ``KEAP_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return KeapSource(load_prefixed(KeapConfig, NAME))
