"""Attio's records API, person read: Attio's webhooks name the record only, so every delivery reads it.

``GET /v2/objects/people/records/{record_id}`` with an access token (scope ``record_permission:read``).
Each attribute is a list of value objects; the active ones (``active_until`` null) are the record's
current values: ``email_addresses`` (the first), ``phone_numbers`` (the first, as the phone: Attio gives
phone numbers no type), ``primary_location`` (its lines, locality, region, postcode and country code),
and the Sphere customer id in a text attribute (``ATTIO_CUSTOMER_ID_ATTRIBUTE``). Attio sends no record
modification time: the newest ``active_from`` among the values read (else ``created_at``) dates them.
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

__all__ = ["AttioReadConfig", "AttioReader", "build"]

NAME = "attio"
_LOCATION: dict[str, ContactField] = {
    "line_1": ContactField.LINE1,
    "locality": ContactField.CITY,
    "region": ContactField.STATE,
    "postcode": ContactField.POSTAL_CODE,
    "country_code": ContactField.COUNTRY,
}
_MORE_LINES = ("line_2", "line_3", "line_4")
"""Attio's further address lines: joined, they are the address's line 2."""


class AttioReadConfig(BaseModel):
    """``ATTIO_*`` settings of the deliver function."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    read_mode: ReadMode = ReadMode.WHEN_INCOMPLETE
    """Attio's events always ask for a read; ``always-fetch`` reads before every call too."""
    api_url: HttpUrl = HttpUrl("https://api.attio.com")
    api_token_secret_id: str = ""
    customer_id_attribute: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = "sphere_customer_id"

    @model_validator(mode="after")
    def _token_when_reading(self) -> AttioReadConfig:
        if self.read_mode is not ReadMode.PAYLOAD and not self.api_token_secret_id:
            raise ValueError(f"read mode {self.read_mode} needs api_token_secret_id (AttioApiTokenSecretArn)")
        return self


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    created_at: str | None = None
    values: dict[str, Any]


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    data: _Record


def _active(values: Mapping[str, Any], attribute: str) -> list[Mapping[str, Any]]:
    """The attribute's active value objects (a list that is not one reads as none)."""
    entries = values.get(attribute)
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, Mapping) and entry.get("active_until") is None]


def _pick(entries: Sequence[Mapping[str, Any]], *keys: str) -> Any:
    """The first entry's value under the first of ``keys`` it holds (``None``: no entry, the attribute is empty)."""
    if not entries:
        return None
    return next((entries[0][key] for key in keys if entries[0].get(key) is not None), None)


class AttioReader(ApiReader[AttioReadConfig]):
    """Reads an Attio person (``{workspace_id}:{record_id}``, as the source names it) into the mapped fields."""

    CRM = "Attio"

    def read(self, contact_id: str) -> CrmRecord | None:
        """The person's current values, or ``None`` when Attio has the record no more.

        Raises:
            CrmUnavailable: Attio could not answer now, or answered something that is not a record.
            SecretUnavailable: the token could not be read.
        """
        record_id = contact_id.rsplit(":", 1)[-1]
        document = self._api.get_json(f"/v2/objects/people/records/{record_id}")
        if document is None:
            return None
        try:
            record = _Answer.model_validate(document).data
        except ValidationError as exc:
            raise CrmUnavailable("Attio answered a record read with something that is not a record") from exc
        found = {
            "email_addresses": _active(record.values, "email_addresses"),
            "phone_numbers": _active(record.values, "phone_numbers"),
            "primary_location": _active(record.values, "primary_location"),
            self.config.customer_id_attribute: _active(record.values, self.config.customer_id_attribute),
        }
        values = self._values(found)
        times = [iso_epoch_ms(entry.get("active_from")) for entries in found.values() for entry in entries]
        modified = max((time for time in times if time is not None), default=None) or iso_epoch_ms(record.created_at)
        if modified is None:
            raise CrmUnavailable("Attio's record carries no time to date its values (active_from, created_at)")
        return CrmRecord(contact_id=contact_id, values=values, modified_at=modified)

    def _values(self, found: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[ContactField, FieldValue]:
        """The mapped fields as Attio holds them (an empty attribute: ``None``); unreadable ones are left out."""
        location = found["primary_location"][0] if found["primary_location"] else {}
        more = [line.strip() for name in _MORE_LINES if isinstance(line := location.get(name), str) and line.strip()]
        raw: dict[ContactField, Any] = {
            ContactField.EMAIL: _pick(found["email_addresses"], "original_email_address", "email_address"),
            ContactField.PHONE: _pick(found["phone_numbers"], "original_phone_number", "phone_number"),
            ContactField.CUSTOMER_ID: _pick(found[self.config.customer_id_attribute], "value"),
            **{field: location.get(part) for part, field in _LOCATION.items()},
            ContactField.LINE2: ", ".join(more) or None,
        }
        return read_values(raw)


def build(settings: DeliverSettings) -> Reading:
    """Attio's read mode and reader from ``ATTIO_*`` settings.

    Raises:
        pydantic.ValidationError: a setting is invalid, or a read mode is set without a token secret.
    """
    return token_reading(settings, load_prefixed(AttioReadConfig, NAME), AttioReader)
