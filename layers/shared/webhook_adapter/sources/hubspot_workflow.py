"""HubSpot workflow "Send a webhook" actions: one contact record per request, as the CRM objects API returns it.

A contact-based workflow posts the enrolled record with the properties the admin chose (the exact
shape is unconfirmed: the objects-API form ``{"id", "properties": {...}, "updatedAt", ...}`` is
read, and the older contact form with ``{"value": ...}`` property objects and ``vid``/``portal-id``
too). Every property the request carries is the record's current value, so a mapped property
present with ``null`` or ``""`` is cleared and an absent one is left alone.

Trust comes from the app's v3 request signature (the same headers as app webhooks) or from an
API key the admin named ``X-Api-Key``, sent as a header or a query parameter. HubSpot retries a
workflow webhook only on 429 and 5xx, never on another 4xx: a request answered 4xx is lost, so
only what cannot be read at all is refused.

The body carries no event id: a retry resends the same body, so the dedup key is a digest of the
canonical body. A value that cannot be carried on (see ``parse_json``) refuses the request only where
it is read: with "include all properties", an odd unrelated property must not lose the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from webhook_adapter.dotted import MISSING
from webhook_adapter.errors import CredentialsError, InvalidPayload
from webhook_adapter.hubspot_properties import DEFAULT_FIELD_MAP
from webhook_adapter.model import MAX_EPOCH_MS, ContactField, FieldValue, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_credential, verify_hubspot_v3, verify_with_any
from webhook_adapter.sources.base import (
    FieldChanges,
    JsonSource,
    PayloadModel,
    WebhookRequest,
    canonical_json,
    describe_validation_error,
    field_map_or,
    field_text,
    parse_json,
)

__all__ = ["API_KEY_NAME", "HubSpotWorkflowConfig", "HubSpotWorkflowSource", "WorkflowRecord", "build"]

NAME = "hubspot-workflow"
API_KEY_NAME = "X-Api-Key"
"""The key name the admin gives the workflow action's API key: the header, or else the query parameter, read."""
KIND = "contact"
TIME_PROPERTIES = ("lastmodifieddate", "hs_lastmodifieddate")
"""Properties holding the record's last change time, read in this order before ``updatedAt``."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HubSpotWorkflowConfig(BaseModel):
    """``HUBSPOT_WORKFLOW_*`` settings (the customer id property and field map are HubSpot's own)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    auth: Literal["signature", "api_key"] = "signature"
    """``signature``: the app's client secret(s) are the secret; ``api_key``: the workflow action's API key(s)."""
    customer_id_property: Annotated[str, Field(min_length=1)] = "sphere_customer_id"
    field_map: Annotated[dict[str, ContactField], BeforeValidator(field_map_or(DEFAULT_FIELD_MAP))] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_MAP)
    )


def _as_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


type _Id = Annotated[str, BeforeValidator(_as_str), Field(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
"""HubSpot's ids are numbers; text is accepted, but only visible ASCII: ids become keys and queue groups."""


class WorkflowRecord(PayloadModel):
    """The record a workflow posts: what the adapter reads of it (other keys are allowed and left alone)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    id: _Id | None = None
    object_id: Annotated[_Id | None, Field(alias="objectId")] = None
    vid: _Id | None = None
    """The older contact shape's record id."""
    portal_id: Annotated[_Id | None, Field(alias="portalId")] = None
    legacy_portal_id: Annotated[_Id | None, Field(alias="portal-id")] = None
    properties: dict[str, Any]
    updated_at: Annotated[Any, Field(alias="updatedAt")] = None
    archived: Annotated[bool, Field(strict=True)] = False

    @property
    def record_id(self) -> str | None:
        """``id`` (objects API), or ``objectId`` / ``vid`` of the older shapes."""
        return self.id or self.object_id or self.vid

    @property
    def portal(self) -> str | None:
        """The portal (account) id, when the body carries one: the objects-API shape does not."""
        return self.portal_id or self.legacy_portal_id


def _property(properties: Mapping[str, Any], name: str) -> Any:
    """A property's value: plain, or inside the older shape's ``{"value": ...}``; ``MISSING`` when absent.

    Raises:
        InvalidPayload: a ``{...}`` property without ``value``.
    """
    if name not in properties:
        return MISSING
    value = properties[name]
    if isinstance(value, dict):
        if "value" not in value:
            raise InvalidPayload(f"properties.{name} must be a value or an object with a value")
        return value["value"]
    return value


def _epoch_ms(value: Any, where: str) -> int:
    """A HubSpot time in epoch milliseconds: a number or digit string of milliseconds, or ISO 8601 with a zone.

    Raises:
        InvalidPayload: any other value, or a time before 1970 or after ``MAX_EPOCH_MS``.
    """
    problem = f"{where} must be epoch milliseconds or an ISO 8601 time with a zone, after 1970"
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()) if len(value.strip()) <= len(str(MAX_EPOCH_MS)) else -1
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value < MAX_EPOCH_MS:  # NaN fails this too
            raise InvalidPayload(problem)
        return round(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None and moment >= _EPOCH:
            ms = (moment - _EPOCH) // timedelta(milliseconds=1)
            if ms < MAX_EPOCH_MS:
                return ms
    raise InvalidPayload(problem)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HubSpotWorkflowSource(JsonSource):
    """Verifies the app signature or the API key and reads the one record a workflow posts."""

    name = NAME

    def __init__(self, config: HubSpotWorkflowConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id
        self._fields = {**config.field_map, config.customer_id_property: ContactField.CUSTOMER_ID}

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check the app's v3 signature against each client secret, or the API key against each configured key.

        Raises:
            SignatureError: (``signature``) no secret matches, or headers are missing, malformed or stale.
            CredentialsError: (``api_key``) the key is missing, sent twice as a query parameter, or wrong.
        """
        if self.config.auth == "api_key":
            verify_credential(given=self._api_key(request), secrets=secrets, what=f"{API_KEY_NAME} API key")
            return
        verify_with_any(
            secrets,
            lambda secret: verify_hubspot_v3(
                secret=secret,
                method=request.method,
                uri=request.url,
                body=request.body,
                signature=request.header("x-hubspot-signature-v3"),
                timestamp=request.header("x-hubspot-request-timestamp"),
                now=request.received_at,
            ),
        )

    @staticmethod
    def _api_key(request: WebhookRequest) -> str | None:
        """The ``X-Api-Key`` header, or failing that the ``X-Api-Key`` query parameter.

        Raises:
            CredentialsError: the query parameter is given more than once (which one counts would be a guess).
        """
        header = request.header(API_KEY_NAME)
        if header:
            return header
        values = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(API_KEY_NAME, [])
        if len(values) > 1:
            raise CredentialsError(f"the {API_KEY_NAME} query parameter is given more than once")
        return values[0] if values else None

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The request's one event: the record's mapped properties as field changes.

        Raises:
            InvalidPayload: not a JSON object with a record id and a ``properties`` object, a value read that
                cannot be carried on, a mapped property that is not text, or a bad change time.
        """
        payload = parse_json(request.body)
        if not isinstance(payload, dict):
            raise InvalidPayload("HubSpot workflow webhook body must be a JSON object (one record)")
        try:
            record = WorkflowRecord.model_validate(payload)
        except ValidationError as exc:
            # The message names fields and problems only: pydantic's own message holds the payload's values (PII).
            raise InvalidPayload(f"invalid HubSpot workflow record: {describe_validation_error(exc)}") from exc
        record_id = record.record_id
        if record_id is None:
            raise InvalidPayload("HubSpot workflow record has no id (id, objectId or vid)")
        digest = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        occurred_at = self._occurred_at(record)
        common = {
            "key": f"{record_id}:{digest}",
            "event_id": f"{record_id}@{_iso(occurred_at) if occurred_at is not None else digest[:16]}",
            "contact_id": f"{record.portal}:{record_id}" if record.portal else record_id,
            "occurred_at": int(request.received_at * 1000) if occurred_at is None else occurred_at,
            "kind": KIND,
        }
        if record.archived:
            return [SourceEvent(**common, settled=Status.IGNORED, reason="the record is archived")]
        changes, refused = self._changes(record.properties)
        refusals = "; ".join(refused.values()) or None
        if changes:
            return [SourceEvent(**common, changes=changes, refused=refused, reason=refusals)]
        if refused:
            return [SourceEvent(**common, settled=Status.REJECTED, refused=refused, reason=refusals)]
        return [SourceEvent(**common, settled=Status.IGNORED, reason="no mapped property in the record")]

    @staticmethod
    def _occurred_at(record: WorkflowRecord) -> int | None:
        """The record's last change time: ``lastmodifieddate``, ``hs_lastmodifieddate``, ``updatedAt``; else ``None``.

        Raises:
            InvalidPayload: the first of them present is not a time.
        """
        for name in TIME_PROPERTIES:
            value = _property(record.properties, name)
            if value is not MISSING and value not in (None, ""):
                return _epoch_ms(value, f"properties.{name}")
        if record.updated_at not in (None, ""):
            return _epoch_ms(record.updated_at, "updatedAt")
        return None

    def _changes(self, properties: Mapping[str, Any]) -> tuple[dict[ContactField, FieldValue], dict[ContactField, str]]:
        """The mapped properties the record holds (null or blank: cleared), and those refused for their length.

        Raises:
            InvalidPayload: a mapped property holds something else than text, a number or null.
        """
        found = FieldChanges()
        for name, field in self._fields.items():
            value = _property(properties, name)
            if value is not MISSING:
                found.put(field, field_text(value, f"properties.{name}") or None, name)
        return found.changes, found.refused


def build() -> HubSpotWorkflowSource:
    """The HubSpot workflow source from ``HUBSPOT_WORKFLOW_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return HubSpotWorkflowSource(load_prefixed(HubSpotWorkflowConfig, NAME))
