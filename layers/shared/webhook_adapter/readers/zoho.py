"""Zoho CRM's REST API, contact read: Zoho's Notification API names the records only, so every one is read.

Zoho gives no long-lived API token: a *self client* (api-console.zoho.com) grants a refresh token once, and the
access token it buys lasts an hour. The credentials secret holds ``{"client_id", "client_secret",
"refresh_token"}`` (scopes ``ZohoCRM.modules.contacts.READ`` and ``ZohoCRM.notifications.ALL``);
``POST {accounts}/oauth/v2/token`` with ``grant_type=refresh_token`` answers the access token, sent as
``Authorization: Zoho-oauthtoken <token>``. Zoho hosts each account in one data centre: the API and accounts
URLs are settings (``.eu``, ``.in``, ``.com.au``, ``.jp``, ``.ca`` and ``.sa`` beside ``.com``).

``GET /crm/{version}/{module}/{id}`` answers ``{"data": [record]}`` with the fields by API name; an unknown id
answers ``204 No Content``. ``Modified_Time`` (ISO 8601 with an offset) dates every value. Zoho has no standard
second address line: the street is line 1.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from webhook_adapter.errors import CrmUnavailable
from webhook_adapter.model import ContactField, FieldValue, ReadMode
from webhook_adapter.readers.api import ApiReader, CrmApi, iso_epoch_ms, read_values
from webhook_adapter.readers.oauth import OAuthGrant, OAuthReadConfig, oauth_api
from webhook_adapter.records import CrmRecord, Reading
from webhook_adapter.settings import DeliverSettings, load_prefixed
from webhook_adapter.zoho_fields import CUSTOMER_ID_FIELD, FIELDS

__all__ = ["GRANT", "TOKEN_PATH", "ZohoApiConfig", "ZohoReadConfig", "ZohoReader", "build", "zoho_api"]

NAME = "zoho"
TOKEN_PATH = "/oauth/v2/token"  # nosec B105 # the OAuth token endpoint's path, not a secret
GRANT = OAuthGrant(
    crm="Zoho", grant_type="refresh_token", credential_keys=("client_id", "client_secret", "refresh_token")
)


class ZohoApiConfig(BaseModel):
    """``ZOHO_*`` settings of Zoho's API, shared by the reader and the channel renewal."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    api_url: HttpUrl = HttpUrl("https://www.zohoapis.com")
    accounts_url: HttpUrl = HttpUrl("https://accounts.zoho.com")
    api_version: Annotated[str, Field(pattern=r"^v[1-9][0-9]?$")] = "v8"
    credentials_secret_id: str = ""
    module: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,99}$")] = "Contacts"
    """The module (API name) whose records are contacts."""


class ZohoReadConfig(OAuthReadConfig, ZohoApiConfig):
    """``ZOHO_*`` settings of the deliver function (notifications need a read: on with the credentials)."""

    CREDENTIALS_PARAMETER = "ZohoCredentialsSecretArn"

    customer_id_field: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,99}$")] = CUSTOMER_ID_FIELD


def zoho_api(
    config: ZohoApiConfig, *, secret_max_age: int, connect_timeout: float, timeout: float, connections: int
) -> CrmApi:
    """Zoho's API with an access token of the self client's refresh grant."""
    return oauth_api(
        "Zoho",
        str(config.api_url),
        token_url=str(config.accounts_url).rstrip("/") + TOKEN_PATH,
        grant=GRANT,
        credentials_secret_id=config.credentials_secret_id,
        secret_max_age=secret_max_age,
        connect_timeout=connect_timeout,
        timeout=timeout,
        connections=connections,
        scheme="Zoho-oauthtoken",
    )


class ZohoReader(ApiReader[ZohoReadConfig]):
    """Reads a Zoho CRM contact (its record id, as the Zoho source names it) into the mapped fields."""

    CRM = "Zoho"

    def read(self, contact_id: str) -> CrmRecord | None:
        """The contact's mapped fields as of its last modification, or ``None`` when Zoho has it no more.

        Raises:
            CrmUnavailable: Zoho could not answer now, or answered something that is not a record.
            SecretUnavailable: the credentials could not be read.
        """
        document = self._api.get_json(f"/crm/{self.config.api_version}/{self.config.module}/{contact_id}")
        if document is None:
            return None
        data = document.get("data") if isinstance(document, dict) else None
        record = data[0] if isinstance(data, list) and data else None
        if not isinstance(record, dict):
            raise CrmUnavailable("Zoho answered a record read with something that is not a record")
        modified = iso_epoch_ms(record.get("Modified_Time"))
        if modified is None:
            raise CrmUnavailable("Zoho's record carries no modification time (Modified_Time)")
        names = {**FIELDS, self.config.customer_id_field: ContactField.CUSTOMER_ID}
        values: dict[ContactField, FieldValue] = read_values(
            {field: record[name] for name, field in names.items() if name in record}
        )
        return CrmRecord(contact_id=contact_id, values=values, modified_at=modified)


def build(settings: DeliverSettings) -> Reading:
    """Zoho's read mode and reader from ``ZOHO_*`` settings (no reader in ``payload`` mode).

    Raises:
        pydantic.ValidationError: a setting is invalid, or a read mode is set without credentials.
    """
    config = load_prefixed(ZohoReadConfig, NAME)
    if config.mode is ReadMode.PAYLOAD:
        return Reading(config.mode, None)
    api = zoho_api(
        config,
        secret_max_age=settings.secret_max_age_seconds,
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
        connections=settings.deliver_threads,  # one per thread: reads wait for the CRM together
    )
    return Reading(config.mode, ZohoReader(config, api))
