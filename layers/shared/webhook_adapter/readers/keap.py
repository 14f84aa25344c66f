"""Keap's REST API, contact read: Keap's REST hooks name the contact only, so every delivery reads it.

``GET /crm/rest/v1/contacts/{id}?optional_properties=custom_fields`` with a bearer token (a personal access
token or service account key). A contact holds up to three ``email_addresses`` (``{email, field}``: the
``EMAIL1`` one is the email), up to five ``phone_numbers`` (``{number, field, type}``: ``PHONE1`` is the phone,
the first other number typed ``Mobile`` the mobile phone) and ``addresses`` (``{field, line1, line2, locality,
region, postal_code, country_code}``: the ``BILLING`` one is the address). The Sphere customer id is the
``content`` of a custom field by id (``KEAP_CUSTOMER_ID_FIELD_ID``; unset: not read). ``last_updated`` dates
the values. A list entry absent from the contact reads as a cleared field: the read is the whole contact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator

from webhook_adapter.errors import CrmUnavailable
from webhook_adapter.model import ContactField, FieldValue, ReadMode
from webhook_adapter.readers.api import (
    ApiReader,
    iso_epoch_ms,
    read_values,
    token_reading,
)
from webhook_adapter.records import CrmRecord, Reading
from webhook_adapter.settings import DeliverSettings, load_prefixed

__all__ = ["KeapReadConfig", "KeapReader", "build"]

NAME = "keap"
EMAIL_FIELD = "EMAIL1"
PHONE_FIELD = "PHONE1"
MOBILE_TYPE = "mobile"
ADDRESS_FIELD = "BILLING"
_ADDRESS: dict[str, ContactField] = {
    "line1": ContactField.LINE1,
    "line2": ContactField.LINE2,
    "locality": ContactField.CITY,
    "region": ContactField.STATE,
    "postal_code": ContactField.POSTAL_CODE,
    "country_code": ContactField.COUNTRY,
}


class KeapReadConfig(BaseModel):
    """``KEAP_*`` settings of the deliver function."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    read_mode: ReadMode = ReadMode.WHEN_INCOMPLETE
    """Keap's events always ask for a read; ``always-fetch`` reads before every call too."""
    api_url: HttpUrl = HttpUrl("https://api.infusionsoft.com")
    api_token_secret_id: str = ""
    customer_id_field_id: Annotated[str, Field(pattern=r"^([1-9][0-9]{0,18})?$")] = ""
    """Id of the contact custom field holding the Sphere customer id (empty: the customer id is not read)."""

    @model_validator(mode="after")
    def _token_when_reading(self) -> KeapReadConfig:
        if self.read_mode is not ReadMode.PAYLOAD and not self.api_token_secret_id:
            raise ValueError(f"read mode {self.read_mode} needs api_token_secret_id (KeapApiTokenSecretArn)")
        return self


class _Contact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    last_updated: str
    email_addresses: list[Any] = Field(default_factory=list)
    phone_numbers: list[Any] = Field(default_factory=list)
    addresses: list[Any] = Field(default_factory=list)
    custom_fields: list[Any] = Field(default_factory=list)


def _entries(items: Sequence[Any]) -> list[Mapping[str, Any]]:
    return [item for item in items if isinstance(item, Mapping)]


def _by_field(items: Sequence[Any], name: str) -> Mapping[str, Any]:
    """The entry of ``items`` whose ``field`` is ``name`` (none: an empty one)."""
    return next((entry for entry in _entries(items) if entry.get("field") == name), {})


class KeapReader(ApiReader[KeapReadConfig]):
    """Reads a Keap contact (its id, as the source names it) into the mapped fields."""

    CRM = "Keap"

    def read(self, contact_id: str) -> CrmRecord | None:
        """The contact's current values, or ``None`` when Keap has the contact no more.

        Raises:
            CrmUnavailable: Keap could not answer now, or answered something that is not a contact.
            SecretUnavailable: the token could not be read.
        """
        document = self._api.get_json(
            f"/crm/rest/v1/contacts/{contact_id}", params={"optional_properties": "custom_fields"}
        )
        if document is None:
            return None
        try:
            contact = _Contact.model_validate(document)
        except ValidationError as exc:
            raise CrmUnavailable("Keap answered a contact read with something that is not a contact") from exc
        modified = iso_epoch_ms(contact.last_updated)
        if modified is None:
            raise CrmUnavailable("Keap's contact carries no time to date its values (last_updated)")
        return CrmRecord(contact_id=contact_id, values=self._values(contact), modified_at=modified)

    def _values(self, contact: _Contact) -> dict[ContactField, FieldValue]:
        """The mapped fields as Keap holds them (absent: ``None``); unreadable ones are left out."""
        address = _by_field(contact.addresses, ADDRESS_FIELD)
        mobile = next(
            (
                entry
                for entry in _entries(contact.phone_numbers)
                if entry.get("field") != PHONE_FIELD
                and isinstance(kind := entry.get("type"), str)
                and kind.strip().lower() == MOBILE_TYPE
            ),
            {},
        )
        raw: dict[ContactField, Any] = {
            ContactField.EMAIL: _by_field(contact.email_addresses, EMAIL_FIELD).get("email"),
            ContactField.PHONE: _by_field(contact.phone_numbers, PHONE_FIELD).get("number"),
            ContactField.MOBILE_PHONE: mobile.get("number"),
            **{field: address.get(part) for part, field in _ADDRESS.items()},
        }
        if self.config.customer_id_field_id:
            wanted = int(self.config.customer_id_field_id)
            custom = next((entry for entry in _entries(contact.custom_fields) if entry.get("id") == wanted), {})
            raw[ContactField.CUSTOMER_ID] = custom.get("content")
        return read_values(raw)


def build(settings: DeliverSettings) -> Reading:
    """Keap's read mode and reader from ``KEAP_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is invalid, or a read mode is set without a token secret.
    """
    return token_reading(settings, load_prefixed(KeapReadConfig, NAME), KeapReader)
