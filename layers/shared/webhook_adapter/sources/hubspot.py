"""HubSpot app webhooks (v3 subscriptions): a signed JSON array of up to 100 contact events.

HubSpot sends one changed property per event. Property changes of mapped properties become field
changes; everything else valid (other properties, creations, merges, deletions) is acknowledged and
recorded as ``ignored``. HubSpot retries a whole batch on any 4xx, so only a body that is not a
batch at all is answered 4xx: a malformed event in a batch is acknowledged and recorded as
``refused`` on its own, and the batch's other events go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from webhook_adapter.errors import InvalidPayload, SignatureError
from webhook_adapter.hubspot_properties import DEFAULT_FIELD_MAP
from webhook_adapter.model import MAX_EPOCH_MS, ContactField, ReadCause, ReadMode, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_hubspot_legacy, verify_hubspot_v3, verify_with_any
from webhook_adapter.sources.base import (
    JsonSource,
    PayloadModel,
    WebhookRequest,
    canonical_json,
    describe_validation_error,
    field_map_or,
    over_cap,
    parse_json,
)

__all__ = ["DEFAULT_FIELD_MAP", "UNKNOWN_CONTACT", "HubSpotConfig", "HubSpotEvent", "HubSpotSource", "build"]

NAME = "hubspot"
MAX_BATCH = 100
REDACTED = "REDACTED"
UNKNOWN_CONTACT = "unknown"
"""The contact of a refused event whose portal or object id cannot be read."""
_RETRY_COUNTER = "attemptNumber"
"""The one key HubSpot changes when it resends an event: left out of a refused event's identity."""
CONTACT_OBJECT_TYPE = "0-1"
PROPERTY_CHANGE_TYPES = frozenset({"contact.propertyChange", "object.propertyChange"})
MERGE_TYPE = "contact.merge"
"""Two or more contacts became one: ``primaryObjectId`` survives (``newObjectId`` when HubSpot made a new record)."""


class HubSpotConfig(BaseModel):
    """``HUBSPOT_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    legacy_signatures: bool = False
    """Also accept v1/v2 signatures (no timestamp, so no replay protection)."""
    read_mode: ReadMode = ReadMode.PAYLOAD
    """Whether deliver reads the contact from HubSpot (then a redacted value is read instead of left incomplete)."""
    customer_id_property: Annotated[str, Field(min_length=1)] = "sphere_customer_id"
    field_map: Annotated[dict[str, ContactField], BeforeValidator(field_map_or(DEFAULT_FIELD_MAP))] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_MAP)
    )


def _as_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


type _Id = Annotated[str, BeforeValidator(_as_str), Field(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
"""HubSpot's ids are numbers; text is accepted, but only visible ASCII: ids become keys and queue groups."""
type _EpochMs = Annotated[int, Field(ge=0, lt=MAX_EPOCH_MS, strict=True)]
type _Kind = Annotated[str, Field(max_length=128)]


class HubSpotEvent(PayloadModel):
    """One event of the batch: what the adapter reads of it (other keys are allowed and left alone)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    event_id: Annotated[_Id, Field(alias="eventId")]
    portal_id: Annotated[_Id, Field(alias="portalId")]
    object_id: Annotated[_Id, Field(alias="objectId")]
    occurred_at: Annotated[_EpochMs, Field(alias="occurredAt")]
    subscription_type: Annotated[_Kind | None, Field(alias="subscriptionType")] = None
    event_type: Annotated[_Kind | None, Field(alias="eventType")] = None
    object_type_id: Annotated[str | None, Field(alias="objectTypeId", max_length=32)] = None
    property_name: Annotated[str | None, Field(alias="propertyName", max_length=256)] = None
    property_value: Annotated[str | None, Field(alias="propertyValue")] = None
    primary_object_id: Annotated[_Id | None, Field(alias="primaryObjectId")] = None
    new_object_id: Annotated[_Id | None, Field(alias="newObjectId")] = None

    @field_validator("property_value", mode="before")
    @classmethod
    def _scalar_value(cls, value: Any) -> Any:
        if isinstance(value, (bool, dict, list)):
            raise ValueError("must be a string")  # noqa: TRY004 - pydantic turns ValueError into a field error
        return str(value) if isinstance(value, (int, float)) else value

    @property
    def kind(self) -> str:
        """``subscriptionType``, or the ``eventType`` an old docs example uses."""
        return self.subscription_type or self.event_type or ""


_ID: TypeAdapter[str] = TypeAdapter(_Id)
_EPOCH_MS: TypeAdapter[int] = TypeAdapter(_EpochMs)
_KIND: TypeAdapter[str] = TypeAdapter(_Kind)


def _readable[T](adapter: TypeAdapter[T], value: Any) -> T | None:
    """``value`` as a valid event's field of this type would read it, or ``None``."""
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _refused(index: int, element: Any, reason: str, *, received_ms: int) -> SourceEvent:
    """A malformed element of a batch as an event settled ``refused``, keeping what of its identity is readable.

    Its dedup key is a digest of the element without ``attemptNumber``, so HubSpot's retries of the
    batch find it known; its name in the answer is its ``eventId`` when readable, else its position.
    """
    fields: dict[str, Any] = element if isinstance(element, dict) else {}
    identity = {key: value for key, value in fields.items() if key != _RETRY_COUNTER} if fields else element
    portal_id, object_id = _readable(_ID, fields.get("portalId")), _readable(_ID, fields.get("objectId"))
    occurred_at = _readable(_EPOCH_MS, fields.get("occurredAt"))
    return SourceEvent(
        key="invalid:" + hashlib.sha256(canonical_json(identity).encode()).hexdigest(),
        event_id=_readable(_ID, fields.get("eventId")) or f"#{index}",
        contact_id=f"{portal_id}:{object_id}" if portal_id and object_id else UNKNOWN_CONTACT,
        occurred_at=received_ms if occurred_at is None else occurred_at,
        kind=_readable(_KIND, fields.get("subscriptionType") or fields.get("eventType")) or "",
        settled=Status.REFUSED,
        reason=reason,
    )


class HubSpotSource(JsonSource):
    """Verifies HubSpot's signature and turns a batch into events."""

    name = NAME

    def __init__(self, config: HubSpotConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id
        self._fields = {**config.field_map, config.customer_id_property: ContactField.CUSTOMER_ID}

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check ``X-HubSpot-Signature-v3`` (or v1/v2 when enabled) against each configured client secret.

        Raises:
            SignatureError: no secret matches, or headers are missing, malformed or stale.
        """
        verify_with_any(secrets, lambda secret: self._verify_one(request, secret))

    def _verify_one(self, request: WebhookRequest, secret: str) -> None:
        v3 = request.header("x-hubspot-signature-v3")
        legacy = request.header("x-hubspot-signature")
        if v3 is None and legacy is not None:
            if not self.config.legacy_signatures:
                raise SignatureError("v1/v2 HubSpot signatures are not accepted; use signature v3")
            verify_hubspot_legacy(
                secret=secret,
                version=request.header("x-hubspot-signature-version"),
                method=request.method,
                uri=request.url,
                body=request.body,
                signature=legacy,
            )
            return
        verify_hubspot_v3(
            secret=secret,
            method=request.method,
            uri=request.url,
            body=request.body,
            signature=v3,
            timestamp=request.header("x-hubspot-request-timestamp"),
            now=request.received_at,
        )

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The batch's events, one per element; property changes of mapped properties carry their field.

        A malformed element becomes an event settled ``refused`` (see ``_refused``), not an error.

        Raises:
            InvalidPayload: the body is not a JSON array of 1 to 100 elements (or not JSON at all).
        """
        payload = parse_json(request.body)
        if not isinstance(payload, list):
            raise InvalidPayload("HubSpot webhook body must be a JSON array of events")
        if not 1 <= len(payload) <= MAX_BATCH:
            raise InvalidPayload(f"HubSpot webhook batch must hold 1 to {MAX_BATCH} events, got {len(payload)}")
        received_ms = int(request.received_at * 1000)
        return [self._read(index, element, received_ms=received_ms) for index, element in enumerate(payload)]

    def _read(self, index: int, element: Any, *, received_ms: int) -> SourceEvent:
        if not isinstance(element, dict):
            return _refused(index, element, "a HubSpot event must be a JSON object", received_ms=received_ms)
        try:
            event = HubSpotEvent.model_validate(element)
        except ValidationError as exc:
            # The reason names fields and problems only: pydantic's own message holds the payload's values (PII).
            reason = f"invalid HubSpot event: {describe_validation_error(exc)}"
            return _refused(index, element, reason, received_ms=received_ms)
        return self._to_event(event)

    def _to_event(self, event: HubSpotEvent) -> SourceEvent:
        key = ":".join(
            (event.portal_id, event.object_id, event.property_name or "-", str(event.occurred_at), event.event_id)
        )
        common = {
            "key": key,
            "event_id": event.event_id,
            "contact_id": f"{event.portal_id}:{event.object_id}",
            "occurred_at": event.occurred_at,
            "kind": event.kind,
        }
        is_contact = event.kind.startswith("contact.") or event.object_type_id == CONTACT_OBJECT_TYPE
        if event.kind == MERGE_TYPE and self.config.read_mode is not ReadMode.PAYLOAD:
            # The survivor holds the merged values now (the Sphere customer id among them): deliver reads it.
            survivor = event.new_object_id or event.primary_object_id or event.object_id
            return SourceEvent(**{**common, "contact_id": f"{event.portal_id}:{survivor}"}, read=ReadCause.MERGE)
        if event.kind not in PROPERTY_CHANGE_TYPES or not is_contact:
            return SourceEvent(
                **common, settled=Status.IGNORED, reason=f"{event.kind or 'untyped'} events carry no fields"
            )
        field = self._fields.get(event.property_name or "")
        if field is None:
            return SourceEvent(**common, settled=Status.IGNORED, reason=f"property {event.property_name} is not mapped")
        if event.property_value == REDACTED:
            if self.config.read_mode is not ReadMode.PAYLOAD:  # deliver reads the value from HubSpot
                return SourceEvent(**common, read=ReadCause.REDACTED)
            return SourceEvent(
                **common,
                settled=Status.INCOMPLETE,
                reason=f"HubSpot redacted the sensitive property {event.property_name}",
            )
        value = event.property_value.strip() if event.property_value else None
        if value and (problem := over_cap(value, event.property_name or "")):
            return SourceEvent(**common, settled=Status.REJECTED, reason=problem, refused={field: problem})
        return SourceEvent(**common, changes={field: value or None})


def build() -> HubSpotSource:
    """The HubSpot source from ``HUBSPOT_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return HubSpotSource(load_prefixed(HubSpotConfig, NAME))
