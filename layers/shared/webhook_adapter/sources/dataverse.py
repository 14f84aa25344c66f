"""Microsoft Dataverse (Dynamics 365) webhooks: one ``RemoteExecutionContext`` per request, keyed by a shared key.

Dataverse posts the execution context of a registered step (Create or Update of a contact): the
``Target`` entity in ``InputParameters`` holds only the columns written, a registered post-image
holds the record's values after the change. The adapter reads the image with the Target on top
(what was written wins). Any other message or entity is acknowledged and recorded as ``ignored``.
Dataverse retries an asynchronous step on failure, so only a body that is not a context at all
is answered 4xx; a mapped column holding something else than text is refused for its field only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from webhook_adapter.errors import CredentialsError, InvalidPayload
from webhook_adapter.model import MAX_EPOCH_MS, ContactField, FieldValue, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import verify_credential
from webhook_adapter.sources.base import (
    JsonSource,
    Unusable,
    WebhookRequest,
    describe_validation_error,
    over_cap,
    parse_json,
)

__all__ = [
    "API_KEY_HEADER",
    "COLUMNS",
    "SIZE_EXCEEDED_HEADER",
    "WEBHOOK_KEY_PARAMETER",
    "DataverseConfig",
    "DataverseContext",
    "DataverseSource",
    "build",
    "wcf_date_ms",
]

NAME = "dataverse"
API_KEY_HEADER = "x-api-key"
"""The header of "HttpHeader" authentication: Dataverse lets the admin name it; the README says this one."""
WEBHOOK_KEY_PARAMETER = "code"
"""The query parameter of "WebhookKey" authentication (``?code=<key>``), named by Dataverse."""
SIZE_EXCEEDED_HEADER = "x-ms-dynamics-msg-size-exceeded"
"""Sent when the context was over 256 KB: Dataverse then strips InputParameters and the entity images."""
CONTACT_ENTITY = "contact"
DELIVERED_MESSAGES = frozenset({"Create", "Update"})
TARGET = "Target"
LINE2_SEPARATOR = ", "

COLUMNS: dict[str, ContactField] = {
    "address1_line1": ContactField.LINE1,
    "address1_city": ContactField.CITY,
    "address1_stateorprovince": ContactField.STATE,
    "address1_postalcode": ContactField.POSTAL_CODE,
    "address1_country": ContactField.COUNTRY,
    "telephone1": ContactField.PHONE,
    "mobilephone": ContactField.MOBILE_PHONE,
    "emailaddress1": ContactField.EMAIL,
}
"""Contact columns (logical names) read one to one; ``address1_line2`` and ``address1_line3`` make ``line2``."""
LINE2_COLUMNS = ("address1_line2", "address1_line3")

_COLUMN_NAME = r"^[a-z0-9]+_[a-z0-9_]+$"
"""A custom column's logical name: the publisher prefix, ``_``, the name (lower case, as Dataverse stores it)."""
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_WCF_DATE = re.compile(r"^/Date\((\d{1,15})(?:[+-]\d{4})?\)/$")
"""WCF's JSON date: epoch milliseconds (UTC), then an optional offset that only names the sender's zone."""


class DataverseConfig(BaseModel):
    """``DATAVERSE_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    secret_id: Annotated[str, Field(min_length=1)]
    customer_id_column: Annotated[str, Field(pattern=_COLUMN_NAME, max_length=128)]
    """Logical name of the contact column that holds the Sphere customer id (``cr123_spherecustomerid``)."""

    @field_validator("customer_id_column")
    @classmethod
    def _not_a_mapped_column(cls, value: str) -> str:
        if value in COLUMNS or value in LINE2_COLUMNS:
            raise ValueError("must be a column of its own, not one the adapter maps to another field")
        return value


def wcf_date_ms(value: str) -> int:
    """Epoch milliseconds of a WCF JSON date (``/Date(1506409448000)/``, ``/Date(1506409448000-0700)/``).

    The offset is not applied: WCF writes the instant in UTC milliseconds and the offset beside it.

    Raises:
        ValueError: not such a date, or later than ``MAX_EPOCH_MS``.
    """
    match = _WCF_DATE.match(value)
    if match is None or int(match.group(1)) >= MAX_EPOCH_MS:
        raise ValueError("must be a WCF date /Date(epoch ms)/ after 1970 and before the year 5138")
    return int(match.group(1))


def _usable(value: Any) -> Any:
    if isinstance(value, Unusable):
        raise ValueError(value.problem)  # noqa: TRY004 - pydantic turns ValueError into a field error
    return value


def _guid(value: Any) -> Any:
    """A GUID in Dataverse's lower-case form; anything else fails (ids become keys and queue groups)."""
    value = _usable(value)
    if isinstance(value, str) and _GUID.match(value.lower()):
        return value.lower()
    raise ValueError("must be a GUID")


type _Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
"""A message or entity name: an identifier (they end up in the kind and reasons of recorded events; two of them and
a dot fit the 128 characters of a kind)."""


class _Pair(BaseModel):
    """One entry of Dataverse's key/value lists (``ParameterCollection``, ``AttributeCollection``, images)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: Annotated[str, Field(max_length=256)]
    value: Any = None

    @field_validator("key", mode="before")
    @classmethod
    def _usable_key(cls, value: Any) -> Any:
        return _usable(value)


class _Entity(BaseModel):
    """An ``Entity`` (the Target or an image): its logical name and its attributes."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    logical_name: Annotated[str | None, Field(alias="LogicalName", max_length=64)] = None
    attributes: Annotated[list[_Pair], Field(alias="Attributes")]

    @field_validator("logical_name", mode="before")
    @classmethod
    def _usable_name(cls, value: Any) -> Any:
        return _usable(value)

    def values(self, where: str) -> dict[str, Any]:
        """The attributes by column name.

        Raises:
            InvalidPayload: a column appears twice (which value counts is anyone's guess).
        """
        found: dict[str, Any] = {}
        for pair in self.attributes:
            if pair.key in found:
                raise InvalidPayload(f"{where}.Attributes holds a column twice")
            found[pair.key] = pair.value
        return found


class DataverseContext(BaseModel):
    """What the adapter reads of a ``RemoteExecutionContext`` (other keys are allowed and left alone)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    message_name: Annotated[_Name, Field(alias="MessageName")]
    primary_entity_name: Annotated[_Name, Field(alias="PrimaryEntityName")]
    primary_entity_id: Annotated[str, Field(alias="PrimaryEntityId")]
    organization_id: Annotated[str, Field(alias="OrganizationId")]
    request_id: Annotated[str | None, Field(alias="RequestId")] = None
    correlation_id: Annotated[str | None, Field(alias="CorrelationId")] = None
    operation_id: Annotated[str | None, Field(alias="OperationId")] = None
    operation_created_on: Annotated[int, Field(alias="OperationCreatedOn")]
    input_parameters: Annotated[list[_Pair], Field(alias="InputParameters")] = Field(default_factory=list)
    post_entity_images: Annotated[list[_Pair], Field(alias="PostEntityImages")] = Field(default_factory=list)

    @field_validator("message_name", "primary_entity_name", mode="before")
    @classmethod
    def _usable_value(cls, value: Any) -> Any:
        return _usable(value)

    @field_validator("input_parameters", "post_entity_images", mode="before")
    @classmethod
    def _stripped_is_empty(cls, value: Any) -> Any:
        """``null`` reads as an empty list: how a context stripped for size sends them is not documented."""
        return [] if value is None else _usable(value)

    @field_validator("primary_entity_id", "organization_id", mode="before")
    @classmethod
    def _required_guid(cls, value: Any) -> Any:
        return _guid(value)

    @field_validator("request_id", "correlation_id", "operation_id", mode="before")
    @classmethod
    def _optional_guid(cls, value: Any) -> Any:
        return None if value is None else _guid(value)

    @field_validator("operation_created_on", mode="before")
    @classmethod
    def _wcf_date(cls, value: Any) -> Any:
        if not isinstance(_usable(value), str):
            raise ValueError("must be a WCF date /Date(epoch ms)/")  # noqa: TRY004 - pydantic makes it a field error
        return wcf_date_ms(value)

    @property
    def kind(self) -> str:
        """``contact.Update``: the entity and the message."""
        return f"{self.primary_entity_name}.{self.message_name}"


def _query_values(url: str, name: str) -> list[str]:
    """Every value of query parameter ``name`` in ``url``, percent-decoded.

    ``+`` stays ``+``: a key never holds a space (secrets are space-separated), so reading ``+`` as
    one could only make a key with a ``+`` fail.
    """
    values = []
    for part in urlsplit(url).query.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name:
            values.append(unquote(value))
    return values


def _not_text(value: Any) -> str:
    """What a non-text value is, never what it holds: Dataverse's typed values are objects with a ``__type``."""
    if isinstance(value, Unusable):
        return value.problem
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "an object (an OptionSetValue, EntityReference or other typed value)"


class DataverseSource(JsonSource):
    """Checks Dataverse's key and reads the contact's columns from a ``RemoteExecutionContext``."""

    name = NAME

    def __init__(self, config: DataverseConfig) -> None:
        self.config = config
        self.secret_id = config.secret_id
        self._columns = {**COLUMNS, config.customer_id_column: ContactField.CUSTOMER_ID}

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Check the key: the ``x-api-key`` header when sent ("HttpHeader"), else ``?code=`` ("WebhookKey").

        Raises:
            CredentialsError: no key is configured, none was sent, ``code`` was sent twice, or nothing matches.
            SignatureError: the key sent is not text (a lone surrogate has no bytes to compare).
        """
        header = request.header(API_KEY_HEADER)
        if header is not None:
            verify_credential(given=header.strip(), secrets=secrets, what=f"{API_KEY_HEADER} header")
            return
        codes = _query_values(request.url, WEBHOOK_KEY_PARAMETER)
        if len(codes) > 1:
            raise CredentialsError(f"{WEBHOOK_KEY_PARAMETER} query parameter is given more than once")
        what = f"{WEBHOOK_KEY_PARAMETER} query parameter"
        if not codes:
            what = f"{API_KEY_HEADER} header or {what}"
        verify_credential(given=codes[0] if codes else None, secrets=secrets, what=what)

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The context's one event: a contact's Create or Update carries its mapped columns, the rest is ignored.

        Raises:
            InvalidPayload: not JSON, not a context (a field the adapter reads is missing or malformed), or a
                contact Create/Update without its Target entity.
        """
        payload = parse_json(request.body)
        if not isinstance(payload, dict):
            raise InvalidPayload("Dataverse webhook body must be a JSON object (a RemoteExecutionContext)")
        try:
            context = DataverseContext.model_validate(payload)
        except ValidationError as exc:
            # The message names fields and problems only: pydantic's own message holds the payload's values (PII).
            raise InvalidPayload(f"invalid Dataverse context: {describe_validation_error(exc)}") from exc
        identity = context.request_id or context.correlation_id
        if identity is None:
            raise InvalidPayload("invalid Dataverse context: RequestId or CorrelationId must be a GUID")
        key = f"{identity}:{context.message_name}:{context.primary_entity_id}"
        if context.request_id is None and context.operation_id is not None:
            # Without a RequestId (asynchronous steps), the correlation spans every operation of one user action:
            # the system job's OperationId, repeated on Dataverse's retries, tells two updates of it apart.
            key += f":{context.operation_id}"
        common = {
            "key": key,
            "event_id": context.request_id or context.operation_id or identity,
            "contact_id": f"{context.organization_id}:{context.primary_entity_id}",
            "occurred_at": context.operation_created_on,
            "kind": context.kind,
        }
        if context.primary_entity_name != CONTACT_ENTITY or context.message_name not in DELIVERED_MESSAGES:
            return [SourceEvent(**common, settled=Status.IGNORED, reason=f"{context.kind} carries no contact fields")]
        if request.header(SIZE_EXCEEDED_HEADER) is not None:
            reason = "Dataverse left out the Target and images: the context was over its 256 KB limit"
            return [SourceEvent(**common, settled=Status.INCOMPLETE, reason=reason)]
        changes, refused = self._fields(self._columns_of(context))
        refusals = "; ".join(refused.values()) or None
        if changes:
            return [SourceEvent(**common, changes=changes, refused=refused, reason=refusals)]
        if refused:
            return [SourceEvent(**common, settled=Status.REJECTED, refused=refused, reason=refusals)]
        return [SourceEvent(**common, settled=Status.IGNORED, reason="no mapped column in the Target or post-image")]

    def _columns_of(self, context: DataverseContext) -> dict[str, Any]:
        """The record's columns: every contact post-image, then the Target's written columns on top.

        Raises:
            InvalidPayload: no Target entity of the contact, or an image or the Target is not an entity.
        """
        targets = [pair.value for pair in context.input_parameters if pair.key == TARGET]
        if len(targets) != 1:
            raise InvalidPayload("invalid Dataverse context: InputParameters must hold one Target entity")
        columns: dict[str, Any] = {}
        for index, image in enumerate(context.post_entity_images):
            entity = _entity(image.value, f"PostEntityImages.{index}.value")
            if entity.logical_name in {None, CONTACT_ENTITY}:
                columns.update(entity.values(f"PostEntityImages.{index}.value"))
        target = _entity(targets[0], "InputParameters.Target")
        if target.logical_name not in {None, CONTACT_ENTITY}:
            raise InvalidPayload("invalid Dataverse context: the Target is not a contact")
        columns.update(target.values("InputParameters.Target"))
        return columns

    def _fields(self, columns: Mapping[str, Any]) -> tuple[dict[ContactField, FieldValue], dict[ContactField, str]]:
        """The mapped fields the columns hold (``None``: cleared), and those refused, with why."""
        changes: dict[ContactField, FieldValue] = {}
        refused: dict[ContactField, str] = {}
        for column, field in self._columns.items():
            if column in columns:
                _read(field, column, [columns[column]], changes, refused)
        line2 = [column for column in LINE2_COLUMNS if column in columns]
        if line2:
            _read(ContactField.LINE2, " + ".join(line2), [columns[column] for column in line2], changes, refused)
        return changes, refused


def _read(
    field: ContactField,
    name: str,
    values: Sequence[Any],
    changes: dict[ContactField, FieldValue],
    refused: dict[ContactField, str],
) -> None:
    """Put ``field`` in ``changes`` (its text parts joined, ``None`` when all are null or blank) or in ``refused``."""
    parts = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            refused[field] = f"{name} is not text: Dataverse sent {_not_text(value)}"
            return
        if value.strip():
            parts.append(value.strip())
    text = LINE2_SEPARATOR.join(parts)
    if problem := over_cap(text, name):
        refused[field] = problem
    else:
        changes[field] = text or None


def _entity(value: Any, where: str) -> _Entity:
    """An entity of the context (the Target or an image).

    Raises:
        InvalidPayload: it is not an object with an ``Attributes`` list of key/value pairs.
    """
    try:
        return _Entity.model_validate(value)
    except ValidationError as exc:
        raise InvalidPayload(f"invalid Dataverse context: {where}: {describe_validation_error(exc)}") from exc


def build() -> DataverseSource:
    """The Dataverse source from ``DATAVERSE_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
    """
    return DataverseSource(load_prefixed(DataverseConfig, NAME))
