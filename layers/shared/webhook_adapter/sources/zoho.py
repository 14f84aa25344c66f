"""Zoho CRM: Notification API callbacks (ids only) and workflow rule webhooks (an admin-defined record body).

Zoho calls out two ways, and both reach ``/webhooks/zoho``:

- **Notification API** (``POST {api-domain}/crm/{version}/actions/watch`` enables a channel): a JSON object
  ``{server_time, module, resource_uri, ids, affected_fields, operation, channel_id, token, ...}`` naming the
  changed records only. Zoho signs nothing; the channel is enabled with a ``token`` of at most 50 characters that
  every callback echoes in its body, so that echo, compared with the secret's values, is the trust. A callback of
  another channel than ``ZOHO_CHANNEL_ID`` (when set) is a foreign sender. An ``insert`` or ``update`` of the
  configured module (``Contacts``) becomes one event per id that asks deliver to read the record
  (``ReadCause.THIN``); its dedup key is channel, operation, id and ``server_time`` (the change's time).
- **Workflow rule webhooks** (Setup > Automation > Actions > Webhooks): the admin writes the body, a flat object
  of Zoho field API names filled with merge fields, as JSON ("Raw") or as form parameters. It carries the record's
  current values, so a mapped key present with ``""`` or ``null`` clears the field and an absent one is left
  alone. Trust is an endpoint token in the webhook URL (``?token=``), or in an ``X-Zoho-Webhook-Token`` header
  the admin adds (custom headers on Zoho webhooks: unconfirmed). The body carries no event id: a resent body is
  the same body, so the dedup key is a digest of the canonical body. How a merge field renders a date-time is
  unconfirmed: a ``Modified_Time`` that cannot be read orders the change by its arrival instead of refusing it,
  since a refused webhook is lost.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from webhook_adapter.errors import CredentialsError, ForbiddenSender, InvalidPayload, UnsupportedMediaType
from webhook_adapter.model import (
    MAX_EPOCH_MS,
    UNCARRIABLE_TEXT,
    ContactField,
    FieldValue,
    ReadCause,
    SourceEvent,
    Status,
)
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_credential
from webhook_adapter.sources.base import (
    JSON_MEDIA_TYPE,
    FieldChanges,
    JsonSource,
    PayloadModel,
    Unusable,
    WebhookRequest,
    canonical_json,
    describe_validation_error,
    field_map_or,
    field_text,
    parse_json,
)
from webhook_adapter.zoho_fields import CUSTOMER_ID_FIELD, FIELDS

__all__ = [
    "DEFAULT_FIELD_MAP",
    "FORM_MEDIA_TYPE",
    "MAX_IDS",
    "TOKEN_HEADER",
    "TOKEN_PARAMETER",
    "ZohoConfig",
    "ZohoSource",
    "build",
]

NAME = "zoho"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_IDS = 1000
"""Most record ids one notification may hold: more is refused whole (400)."""
MAX_TOKEN_CHARS = 50
"""Longest ``token`` Zoho lets a channel be enabled with: a longer echo cannot be one."""
TOKEN_PARAMETER = "token"  # nosec B105
"""The query parameter of the workflow webhook's URL that carries the endpoint token (its name, not a token)."""
TOKEN_HEADER = "X-Zoho-Webhook-Token"  # nosec B105
"""The custom header a workflow webhook may carry the endpoint token in instead (a header's name, not a token)."""
READ_OPERATIONS = frozenset({"insert", "update"})
"""Notification operations after which the record holds values to send (read from Zoho)."""
WORKFLOW_KIND = "Contacts.workflow"
RECORD_ID_KEY = "id"
TIME_KEY = "Modified_Time"
UNKNOWN_CONTACT = "unknown"
"""The contact id of a refused notification element whose id is unreadable."""
_MAX_ID_DIGITS = 19
_ID_PREFIX = "zcrm_"
"""Zoho's record and channel ids are 64-bit numbers (19 digits)."""
_EPOCH_SECONDS_LIMIT = 10**11
"""Numbers below this are epoch seconds, above it epoch milliseconds (10**11 s is the year 5138)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ARRIVAL_NOTE = f"{TIME_KEY} absent or unreadable: the change is ordered by its arrival"

DEFAULT_FIELD_MAP: dict[str, ContactField] = dict(FIELDS)
"""Workflow body key (a Zoho field API name) to contact field; override with ``ZOHO_FIELD_MAP`` (JSON)."""


class ZohoConfig(BaseModel):
    """``ZOHO_*`` settings (``customer_id_field`` is shared with the deliver side's Zoho reader)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    """The secret holding the token(s): the workflow URL's ``?token=`` and the channel's echoed ``token``."""
    channel_id: Annotated[str, Field(pattern=r"^([0-9]{1,19})?$")] = ""
    """The Notification API channel served; empty: any channel whose echoed token matches."""
    module: Annotated[str, Field(min_length=1, max_length=100)] = "Contacts"
    """The module whose notifications are contacts; the ids of any other are ignored."""
    customer_id_field: Annotated[str, Field(min_length=1)] = CUSTOMER_ID_FIELD
    field_map: Annotated[dict[str, ContactField], BeforeValidator(field_map_or(DEFAULT_FIELD_MAP))] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_MAP)
    )


def _digits(value: Any) -> str | None:
    """A Zoho id (a positive number, or its digits as text) as text, else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value) if value > 0 else ""
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if 0 < len(text) <= _MAX_ID_DIGITS and text.isascii() and text.isdigit() and int(text) > 0:
        return text
    return None


def _workflow_record_id(value: Any) -> str | None:
    """The workflow body's record id: its digits, also when the merge field renders it ``zcrm_<digits>``.

    Zoho renders a record's id merge field with a ``zcrm_`` prefix in some places (unconfirmed for webhooks):
    refusing it would lose every webhook, and the digits name the same record a notification names.
    """
    if isinstance(value, str) and value.strip().lower().startswith(_ID_PREFIX):
        value = value.strip()[len(_ID_PREFIX) :]
    return _digits(value)


def _channel_text(value: Any) -> Any:
    text = _digits(value)
    if text is None:
        raise ValueError("must be a channel id: a number or its digits")
    return text


class _Notification(PayloadModel):
    """A Notification API callback: what the adapter reads of it (``affected_fields`` and others left alone)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    server_time: Annotated[int, Field(ge=0, lt=MAX_EPOCH_MS, strict=True)]
    module: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[!-~]+$")]
    operation: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
    channel_id: Annotated[str, BeforeValidator(_channel_text)]
    ids: Annotated[list[Any], Field(min_length=1, max_length=MAX_IDS)]


def _notification_body(request: WebhookRequest) -> dict[str, Any] | None:
    """The body as a Notification API callback (a JSON object with ``channel_id`` and ``ids``), else ``None``.

    A body that is not JSON is not one either: it is then read as a workflow webhook (and refused there).
    """
    if _media_type(request) != JSON_MEDIA_TYPE:
        return None
    try:
        document = parse_json(request.body)
    except InvalidPayload:
        return None
    if isinstance(document, dict) and "channel_id" in document and "ids" in document:
        return document
    return None


def _media_type(request: WebhookRequest) -> str:
    return (request.header("content-type") or "").split(";", 1)[0].strip().lower()


def _form(body: bytes) -> dict[str, Any]:
    """Form parameters as a flat object; a repeated key or uncarriable text becomes an ``Unusable`` marker.

    Raises:
        InvalidPayload: the body is empty, not UTF-8, or not form parameters.
    """
    if not body.strip():
        raise InvalidPayload("request body is empty")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except UnicodeDecodeError as exc:
        raise InvalidPayload("request body is not valid UTF-8") from exc
    except ValueError as exc:
        raise InvalidPayload("request body is not form parameters") from exc
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            document[key] = Unusable("a key that appears twice in the form")
        elif UNCARRIABLE_TEXT.search(value):
            document[key] = Unusable("text with a lone surrogate or a noncharacter (U+FFFE, U+FFFF)")
        else:
            document[key] = value
    return document


def _epoch_ms(value: Any) -> int | None:
    """``Modified_Time`` as epoch ms: ISO 8601 with a zone, or epoch seconds or milliseconds; else ``None``."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        text = value.strip()
        value = int(text) if len(text) <= len(str(MAX_EPOCH_MS)) else -1
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value < MAX_EPOCH_MS:
            return None
        return round(value * 1000) if value < _EPOCH_SECONDS_LIMIT else round(value)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None or moment < _EPOCH:
        return None
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    return ms if ms < MAX_EPOCH_MS else None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ZohoSource(JsonSource):
    """Verifies the echoed channel token or the endpoint token; reads notifications' ids and workflow records."""

    name = NAME

    def __init__(self, config: ZohoConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id
        self._fields = {**config.field_map, config.customer_id_field: ContactField.CUSTOMER_ID}

    def check_media_type(self, request: WebhookRequest) -> None:
        """Zoho posts JSON (notifications, a "Raw" workflow body) or form parameters (a workflow's parameters).

        Raises:
            UnsupportedMediaType: another content type (the answer does not repeat it).
        """
        given = _media_type(request)
        if given not in (JSON_MEDIA_TYPE, FORM_MEDIA_TYPE):
            raise UnsupportedMediaType(
                f"content type must be {JSON_MEDIA_TYPE} or {FORM_MEDIA_TYPE}, got {'another' if given else 'none'}"
            )

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """A notification: its echoed ``token`` and channel; a workflow webhook: the endpoint token.

        Raises:
            CredentialsError: the token is missing, not text, given twice as a query parameter, or matches none.
            ForbiddenSender: an authentic notification of another channel than the configured one.
        """
        notification = _notification_body(request)
        if notification is None:
            verify_credential(given=self._endpoint_token(request), secrets=secrets, what="endpoint token")
            return
        token = notification.get("token")
        given = token if isinstance(token, str) and len(token) <= MAX_TOKEN_CHARS else None
        verify_credential(given=given, secrets=secrets, what="notification token")
        channel = _digits(notification.get("channel_id"))
        if self.config.channel_id and channel is not None and channel != self.config.channel_id:
            raise ForbiddenSender("the notification is of another channel than the configured one")

    @staticmethod
    def _endpoint_token(request: WebhookRequest) -> str | None:
        """The ``X-Zoho-Webhook-Token`` header, or failing that the ``?token=`` of the webhook URL.

        Raises:
            CredentialsError: the query parameter is given more than once (which one counts would be a guess).
        """
        tokens = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(TOKEN_PARAMETER, [])
        if len(tokens) > 1:
            raise CredentialsError(f"the {TOKEN_PARAMETER} query parameter must be given once")
        return request.header(TOKEN_HEADER) or (tokens[0] if tokens else None)

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """A notification's events (one per id), or a workflow webhook's one event.

        Raises:
            InvalidPayload: a notification of the wrong shape or with more than ``MAX_IDS`` ids; a workflow body
                that is not a flat object with a record id, or a mapped value that is not text.
        """
        notification = _notification_body(request)
        if notification is not None:
            return self._notification(notification, received_ms=int(request.received_at * 1000))
        return [self._workflow(request)]

    def _notification(self, payload: dict[str, Any], *, received_ms: int) -> list[SourceEvent]:
        try:
            notification = _Notification.model_validate(payload)
        except ValidationError as exc:
            # The message names fields and problems only: pydantic's own message holds the payload's values (PII).
            raise InvalidPayload(f"invalid Zoho notification: {describe_validation_error(exc)}") from exc
        return [self._notified(notification, index, element) for index, element in enumerate(notification.ids)]

    def _notified(self, notification: _Notification, index: int, element: Any) -> SourceEvent:
        """One id of a notification: read when an insert or update of the contacts' module, else settled."""
        kind = f"{notification.module}.{notification.operation}"
        prefix = f"{notification.channel_id}:{notification.operation}"
        record_id = _digits(element)
        if record_id is None:
            key = f"{prefix}:refused:{index}:{notification.server_time}"
            return SourceEvent(
                key=key,
                event_id=key,
                contact_id=UNKNOWN_CONTACT,
                occurred_at=notification.server_time,
                kind=kind,
                settled=Status.REFUSED,
                reason=f"invalid Zoho notification: ids.{index} is not a record id",
            )
        event_id = f"{prefix}:{record_id}:{notification.server_time}"
        common = {
            "key": event_id,
            "event_id": event_id,
            "contact_id": record_id,
            "occurred_at": notification.server_time,
            "kind": kind,
        }
        if notification.module != self.config.module:
            return SourceEvent(
                **common, settled=Status.IGNORED, reason=f"{notification.module} records are not contacts"
            )
        if notification.operation not in READ_OPERATIONS:
            return SourceEvent(
                **common, settled=Status.IGNORED, reason=f"{notification.operation} notifications carry no values"
            )
        return SourceEvent(**common, read=ReadCause.THIN)

    def _workflow(self, request: WebhookRequest) -> SourceEvent:
        """A workflow webhook's record: its mapped keys as field changes, ordered by ``Modified_Time`` if readable.

        Raises:
            InvalidPayload: not a JSON object or form parameters, no readable record id, or a mapped value that is
                not text, a number or null.
        """
        if _media_type(request) == FORM_MEDIA_TYPE:
            document = _form(request.body)
        else:
            document = parse_json(request.body)
            if not isinstance(document, dict):
                raise InvalidPayload("Zoho workflow webhook body must be a JSON object (one record)")
        record_id = _workflow_record_id(document.get(RECORD_ID_KEY))
        if record_id is None:
            raise InvalidPayload(f"Zoho workflow webhook body has no record id ({RECORD_ID_KEY}: the record's digits)")
        digest = hashlib.sha256(canonical_json(document).encode()).hexdigest()
        occurred_at = _epoch_ms(document.get(TIME_KEY))
        notes = [] if occurred_at is not None else [_ARRIVAL_NOTE]
        common = {
            "key": f"{record_id}:{digest}",
            "event_id": f"{record_id}@{_iso(occurred_at) if occurred_at is not None else digest[:16]}",
            "contact_id": record_id,
            "occurred_at": int(request.received_at * 1000) if occurred_at is None else occurred_at,
            "kind": WORKFLOW_KIND,
        }
        changes, refused = self._changes(document)
        reason = "; ".join([*refused.values(), *notes]) or None
        if changes:
            return SourceEvent(**common, changes=changes, refused=refused, reason=reason)
        if refused:
            return SourceEvent(**common, settled=Status.REJECTED, refused=refused, reason=reason)
        return SourceEvent(**common, settled=Status.IGNORED, reason="no mapped field in the webhook body")

    def _changes(self, document: Mapping[str, Any]) -> tuple[dict[ContactField, FieldValue], dict[ContactField, str]]:
        """The mapped keys the body holds (null or blank: cleared), and those refused for their length.

        Raises:
            InvalidPayload: a mapped key holds something else than text, a number or null.
        """
        found = FieldChanges()
        for name, field in self._fields.items():
            if name in document:
                found.put(field, field_text(document[name], name) or None, name)
        return found.changes, found.refused


def build() -> ZohoSource:
    """The Zoho CRM source from ``ZOHO_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return ZohoSource(load_prefixed(ZohoConfig, NAME))
