"""Generic JSON webhooks: any system that can POST a contact (Zapier, Make, n8n, in-house code).

Signed the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).
One request is one event about one contact; ``webhook-id`` is its id (stable across retries).
Where each field sits in the body is configuration: a dotted path per contact field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from webhook_adapter.dotted import MISSING, lookup
from webhook_adapter.errors import InvalidPayload
from webhook_adapter.model import MAX_EPOCH_MS, ContactField, FieldValue, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_standard_webhook
from webhook_adapter.sources.base import (
    JsonSource,
    WebhookRequest,
    field_map_or,
    first_unusable,
    over_cap,
    parse_json,
)

__all__ = ["DEFAULT_FIELD_MAP", "GenericConfig", "GenericSource", "build"]

NAME = "generic"
_MAX_ID_LENGTH = 256
_EPOCH_SECONDS_LIMIT = 10**11
"""Numbers below this are epoch seconds, above it epoch milliseconds (10**11 s is the year 5138)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIMESTAMP_DIGITS = 12
"""``webhook-timestamp`` is epoch seconds: 12 digits reach the year 33658, past ``MAX_EPOCH_MS``."""

DEFAULT_FIELD_MAP: dict[ContactField, str] = {
    ContactField.CUSTOMER_ID: "sphereCustomerId",
    ContactField.EMAIL: "email",
    ContactField.PHONE: "phone",
    ContactField.MOBILE_PHONE: "mobilePhone",
    ContactField.LINE1: "address.line1",
    ContactField.LINE2: "address.line2",
    ContactField.CITY: "address.city",
    ContactField.STATE: "address.state",
    ContactField.POSTAL_CODE: "address.postalCode",
    ContactField.COUNTRY: "address.country",
}
"""Contact field to dotted path in the body; override with ``GENERIC_FIELD_MAP`` (JSON)."""


class GenericConfig(BaseModel):
    """``GENERIC_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    contact_id_path: Annotated[str, Field(min_length=1)] = "id"
    occurred_at_path: Annotated[str, Field(min_length=1)] = "updatedAt"
    field_map: Annotated[dict[ContactField, str], BeforeValidator(field_map_or(DEFAULT_FIELD_MAP))] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_MAP)
    )


def _epoch_ms(value: Any, where: str) -> int:
    problem = f"{where} must be epoch seconds or milliseconds, or an ISO 8601 time with a zone, after 1970"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value < MAX_EPOCH_MS:
            raise InvalidPayload(problem)
        return round(value * 1000) if value < _EPOCH_SECONDS_LIMIT else round(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None and moment >= _EPOCH:
            epoch_ms = (moment - _EPOCH) // timedelta(milliseconds=1)
            if epoch_ms < MAX_EPOCH_MS:
                return epoch_ms
    raise InvalidPayload(problem)


def _webhook_time_ms(timestamp: str | None) -> int:
    """``webhook-timestamp`` (epoch seconds, checked by verification) in epoch milliseconds.

    Raises:
        InvalidPayload: it is not epoch seconds (only when parsing a request verification did not check).
    """
    digits = timestamp or ""
    if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_TIMESTAMP_DIGITS:
        moment = int(digits) * 1000
        if moment < MAX_EPOCH_MS:
            return moment
    raise InvalidPayload("webhook-timestamp must be epoch seconds when the body has no change time")


def _is_id(value: str) -> bool:
    """Printable text of 1 to ``_MAX_ID_LENGTH`` characters: ids become keys, queue groups and log fields."""
    return 0 < len(value) <= _MAX_ID_LENGTH and value.isprintable()


class GenericSource(JsonSource):
    """Verifies Standard Webhooks signatures and reads one contact per request."""

    name = NAME

    def __init__(self, config: GenericConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check ``webhook-signature`` against every configured secret.

        Raises:
            SignatureError: headers missing, malformed or stale, or no signature matches.
        """
        verify_standard_webhook(
            secrets=secrets,
            msg_id=request.header("webhook-id"),
            timestamp=request.header("webhook-timestamp"),
            signature_header=request.header("webhook-signature"),
            body=request.body,
            now=request.received_at,
        )

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The request's one event.

        The body is the contact's document: a value in it that cannot be carried on (see
        ``parse_json``) makes the whole request invalid, wherever it sits.

        Raises:
            InvalidPayload: not a JSON object, an unusable value, no contact id, a field that is not
                text, or a bad time.
        """
        payload = parse_json(request.body)
        if not isinstance(payload, dict):
            raise InvalidPayload("generic webhook body must be a JSON object")
        if (unusable := first_unusable(payload)) is not None:
            raise InvalidPayload(f"request body holds {unusable.problem}")
        event_id = (request.header("webhook-id") or "").strip()
        if not _is_id(event_id):
            raise InvalidPayload(f"webhook-id must be 1 to {_MAX_ID_LENGTH} printable characters")
        contact_id = lookup(payload, self.config.contact_id_path)
        if isinstance(contact_id, int) and not isinstance(contact_id, bool):
            contact_id = str(contact_id)
        if not isinstance(contact_id, str) or not _is_id(contact_id.strip()):
            raise InvalidPayload(
                f"{self.config.contact_id_path} must be the contact's id"
                f" (1 to {_MAX_ID_LENGTH} printable characters, or a number)"
            )
        occurred = lookup(payload, self.config.occurred_at_path)
        occurred_at = (
            _webhook_time_ms(request.header("webhook-timestamp"))
            if occurred is MISSING or occurred is None
            else _epoch_ms(occurred, self.config.occurred_at_path)
        )
        changes, refused = self._changes(payload)
        common = {
            "key": event_id,
            "event_id": event_id,
            "contact_id": contact_id.strip(),
            "occurred_at": occurred_at,
            "kind": "contact",
            "refused": refused,
        }
        refusals = "; ".join(refused.values()) or None
        if changes:
            return [SourceEvent(**common, changes=changes, reason=refusals)]
        if refused:
            return [SourceEvent(**common, settled=Status.REJECTED, reason=refusals)]
        return [SourceEvent(**common, settled=Status.IGNORED, reason="no mapped field in the body")]

    def _changes(self, payload: dict[str, Any]) -> tuple[dict[ContactField, FieldValue], dict[ContactField, str]]:
        """The mapped fields the body holds, and those refused for their value (with why).

        Raises:
            InvalidPayload: a mapped field holds something else than text, a number or null.
        """
        changes: dict[ContactField, FieldValue] = {}
        refused: dict[ContactField, str] = {}
        for field, path in self.config.field_map.items():
            value = lookup(payload, path)
            if value is MISSING:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if value is not None and not isinstance(value, str):
                raise InvalidPayload(f"{path} must be text, a number or null")
            text = value.strip() if value is not None else ""
            if problem := over_cap(text, path):
                refused[field] = problem
            else:
                changes[field] = text or None
        return changes, refused


def build() -> GenericSource:
    """The generic source from ``GENERIC_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return GenericSource(load_prefixed(GenericConfig, NAME))
