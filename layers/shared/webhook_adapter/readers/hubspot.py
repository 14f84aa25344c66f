"""HubSpot's CRM objects API, contact read: the record a redacted value, a merge or an incomplete address needs.

``GET /crm/objects/{version}/contacts/{id}?properties=...`` with a private app's token. HubSpot's APIs are
date-versioned (``2026-03``, ``2026-09``, ...) and the numbered ``/crm/v3/`` paths lose support in September
2027, so the version is a setting (``HUBSPOT_API_VERSION``; ``v3`` still reads the legacy path). The answer is
``{"id", "properties": {...}, "updatedAt", ...}``: the requested properties (``null`` when empty) and the
record's last modification, which dates every value read.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, ValidationError, model_validator

from webhook_adapter.errors import CrmUnavailable
from webhook_adapter.hubspot_properties import DEFAULT_FIELD_MAP
from webhook_adapter.model import ContactField, ReadMode
from webhook_adapter.readers.api import (
    ApiReader,
    iso_epoch_ms,
    read_values,
    token_reading,
)
from webhook_adapter.records import CrmRecord, Reading
from webhook_adapter.settings import DeliverSettings, field_map_or, load_prefixed

__all__ = ["HubSpotReadConfig", "HubSpotReader", "build", "contact_path"]

NAME = "hubspot"
LEGACY_VERSION = "v3"
_MODIFIED = "lastmodifieddate"


class HubSpotReadConfig(BaseModel):
    """``HUBSPOT_*`` settings of the deliver function: how to read contacts, and which properties map."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    read_mode: ReadMode = ReadMode.PAYLOAD
    api_url: HttpUrl = HttpUrl("https://api.hubapi.com")
    api_version: Annotated[str, Field(pattern=r"^(v3|20[0-9]{2}-(03|09))$")] = "2026-09"
    api_token_secret_id: str = ""
    """Secrets Manager id of the private app's access token (scope ``crm.objects.contacts.read``)."""
    customer_id_property: Annotated[str, Field(min_length=1)] = "sphere_customer_id"
    field_map: Annotated[dict[str, ContactField], BeforeValidator(field_map_or(DEFAULT_FIELD_MAP))] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_MAP)
    )

    @model_validator(mode="after")
    def _token_when_reading(self) -> HubSpotReadConfig:
        if self.read_mode is not ReadMode.PAYLOAD and not self.api_token_secret_id:
            raise ValueError(f"read mode {self.read_mode} needs api_token_secret_id (HubSpotApiTokenSecretArn)")
        return self


class _Contact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    properties: dict[str, Any]
    updated_at: Annotated[str | None, Field(alias="updatedAt")] = None


def contact_path(version: str, object_id: str) -> str:
    """The contact's path in the configured API version (date-versioned, or the legacy ``v3``)."""
    if version == LEGACY_VERSION:
        return f"/crm/v3/objects/contacts/{object_id}"
    return f"/crm/objects/{version}/contacts/{object_id}"


class HubSpotReader(ApiReader[HubSpotReadConfig]):
    """Reads a HubSpot contact (``{portalId}:{objectId}``, as the sources name it) into the mapped fields."""

    CRM = "HubSpot"

    @cached_property
    def _properties(self) -> dict[str, ContactField]:
        """The properties read, by name: the field map's and the customer id's."""
        return {**self.config.field_map, self.config.customer_id_property: ContactField.CUSTOMER_ID}

    def read(self, contact_id: str) -> CrmRecord | None:
        """The contact's mapped properties as of its last modification, or ``None`` when HubSpot has it no more.

        Raises:
            CrmUnavailable: HubSpot could not answer now, or answered something that is not a contact.
            SecretUnavailable: the token could not be read.
        """
        object_id = contact_id.rsplit(":", 1)[-1]
        names = ",".join(sorted({*self._properties, _MODIFIED}))
        document = self._api.get_json(contact_path(self.config.api_version, object_id), {"properties": names})
        if document is None:
            return None
        try:
            contact = _Contact.model_validate(document)
        except ValidationError as exc:
            raise CrmUnavailable("HubSpot answered a contact read with something that is not a contact") from exc
        modified = iso_epoch_ms(contact.updated_at) or iso_epoch_ms(contact.properties.get(_MODIFIED))
        if modified is None:
            raise CrmUnavailable("HubSpot's contact carries no modification time (updatedAt)")
        raw = {
            field: contact.properties[name] for name, field in self._properties.items() if name in contact.properties
        }
        return CrmRecord(contact_id=contact_id, values=read_values(raw), modified_at=modified)


def build(settings: DeliverSettings) -> Reading:
    """HubSpot's read mode and reader from ``HUBSPOT_*`` settings (no reader in ``payload`` mode).

    Raises:
        pydantic.ValidationError: a setting is invalid, or a read mode is set without a token secret.
    """
    return token_reading(settings, load_prefixed(HubSpotReadConfig, NAME), HubSpotReader)
