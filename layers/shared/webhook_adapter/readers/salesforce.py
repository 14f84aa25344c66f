"""Salesforce's REST API, Contact read: what a Change Data Capture gap event (or an incomplete address) needs.

A connected app with the OAuth 2.0 client credentials flow (a run-as user, scope ``api``): its consumer key
and secret are one Secrets Manager secret holding ``{"client_id": ..., "client_secret": ...}``. The access
token from ``POST /services/oauth2/token`` is kept in memory until Salesforce answers 401, then fetched once
again (``CrmApi``'s retry). ``GET /services/data/v{version}/sobjects/Contact/{id}`` answers the whole record
(no ``fields`` list: ``MailingStateCode`` exists only in orgs with state and country picklists, and naming a
field the org lacks is a 400); ``LastModifiedDate`` (else ``SystemModstamp``) dates every value read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, ValidationError, model_validator

from webhook_adapter.errors import CrmUnavailable, SecretUnavailable
from webhook_adapter.model import ContactField, FieldValue, ReadMode
from webhook_adapter.readers.api import CrmApi, iso_epoch_ms, read_text
from webhook_adapter.records import CrmRecord, Reading
from webhook_adapter.runtime import on_reset
from webhook_adapter.salesforce_fields import CDC_NAME, split_street
from webhook_adapter.secrets import read_secret
from webhook_adapter.settings import DeliverSettings, load_prefixed

__all__ = ["ClientCredentials", "SalesforceReadConfig", "SalesforceReader", "SalesforceToken", "build"]

TOKEN_PATH = "/services/oauth2/token"  # nosec B105 # the OAuth token endpoint's path, not a secret
_FIELDS: dict[str, ContactField] = {
    "Email": ContactField.EMAIL,
    "Phone": ContactField.PHONE,
    "MobilePhone": ContactField.MOBILE_PHONE,
    "MailingCity": ContactField.CITY,
    "MailingPostalCode": ContactField.POSTAL_CODE,
}
_PREFERRED: dict[ContactField, tuple[str, str]] = {
    ContactField.STATE: ("MailingStateCode", "MailingState"),
    ContactField.COUNTRY: ("MailingCountryCode", "MailingCountry"),
}
_OK = 200
_SERVER_ERROR = 500


def _none_if_empty(value: Any) -> Any:
    return None if value == "" else value


class SalesforceReadConfig(BaseModel):
    """``SALESFORCE_CDC_*`` settings of the deliver function."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    read_mode: Annotated[ReadMode | None, BeforeValidator(_none_if_empty)] = None
    """Unset: ``fetch-when-incomplete`` when the credentials are given (gap events need a read), else ``payload``."""
    instance_url: Annotated[HttpUrl | None, BeforeValidator(_none_if_empty)] = None
    """The org's My Domain URL (``https://<domain>.my.salesforce.com``): the API and, by default, the token."""
    login_url: Annotated[HttpUrl | None, BeforeValidator(_none_if_empty)] = None
    """Where the token is asked for, when not the instance URL."""
    api_version: Annotated[str, Field(pattern=r"^[1-9][0-9]\.0$")] = "62.0"
    credentials_secret_id: str = ""
    customer_id_field: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")] = "Sphere_Customer_Id__c"

    @property
    def mode(self) -> ReadMode:
        """The read mode in effect."""
        if self.read_mode is not None:
            return self.read_mode
        return ReadMode.WHEN_INCOMPLETE if self.credentials_secret_id else ReadMode.PAYLOAD

    @model_validator(mode="after")
    def _credentials_when_reading(self) -> SalesforceReadConfig:
        if self.mode is not ReadMode.PAYLOAD and not (self.credentials_secret_id and self.instance_url):
            raise ValueError(
                f"read mode {self.mode} needs credentials_secret_id (SalesforceCdcCredentialsSecretArn) and "
                "instance_url (SalesforceInstanceUrl)"
            )
        return self


class ClientCredentials(BaseModel):
    """The connected app's consumer key and secret, as the credentials secret holds them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_id: Annotated[str, Field(min_length=1)]
    client_secret: Annotated[str, Field(min_length=1)]


class _TokenAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    access_token: Annotated[str, Field(min_length=1)]


class SalesforceToken:
    """The access token of the client credentials flow, fetched on first use and again when refused (``refresh``)."""

    def __init__(
        self, token_url: str, credentials: Callable[[bool], str], *, connect_timeout: float, timeout: float
    ) -> None:
        self._credentials = credentials
        """Reads the credentials secret's text; called with ``True`` to bypass its cache."""
        self._token_url = token_url
        self._token: str | None = None
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __call__(self, refresh: bool) -> str:
        """The access token; a new one when ``refresh`` (the last one was refused).

        Raises:
            CrmUnavailable: the token endpoint refused the credentials or could not answer.
            SecretUnavailable: the credentials secret could not be read or is not the expected JSON.
        """
        with self._lock:
            if self._token is None or refresh:
                self._token = self._fetch(refresh=refresh)
            return self._token

    def _fetch(self, *, refresh: bool) -> str:
        credentials = self._read_credentials(refresh=refresh)
        form = {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        }
        try:
            response = self._http.post(self._token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TimeoutException as exc:
            raise CrmUnavailable("Salesforce's token endpoint did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"could not reach Salesforce's token endpoint ({type(exc).__name__})") from exc
        if response.status_code != _OK:
            why = "refused the connected app's credentials" if response.status_code < _SERVER_ERROR else "failed"
            raise CrmUnavailable(f"Salesforce's token endpoint {why} ({response.status_code})")
        try:
            return _TokenAnswer.model_validate_json(response.content).access_token
        except ValidationError as exc:
            raise CrmUnavailable("Salesforce's token endpoint answered without an access token") from exc

    def _read_credentials(self, *, refresh: bool) -> ClientCredentials:
        text = self._credentials(refresh)
        try:
            return ClientCredentials.model_validate(json.loads(text))
        except (ValueError, ValidationError) as exc:
            raise SecretUnavailable('the credentials secret must be JSON {"client_id", "client_secret"}') from exc


class SalesforceReader:
    """Reads a Salesforce Contact (its record id, as the Change Data Capture source names it) into the mapped fields."""

    def __init__(self, config: SalesforceReadConfig, api: CrmApi) -> None:
        self.config = config
        self._api = api

    def close(self) -> None:
        """Close the connection pool."""
        self._api.close()

    def read(self, contact_id: str) -> CrmRecord | None:
        """The Contact's mapped fields as of its last modification, or ``None`` when Salesforce has it no more.

        Raises:
            CrmUnavailable: Salesforce could not answer now, or answered something that is not a Contact.
            SecretUnavailable: the credentials could not be read.
        """
        path = f"/services/data/v{self.config.api_version}/sobjects/Contact/{contact_id}"
        document = self._api.get_json(path)
        if document is None:
            return None
        if not isinstance(document, dict):
            raise CrmUnavailable("Salesforce answered a Contact read with something that is not a record")
        modified = iso_epoch_ms(document.get("LastModifiedDate")) or iso_epoch_ms(document.get("SystemModstamp"))
        if modified is None:
            raise CrmUnavailable("Salesforce's Contact carries no modification time (LastModifiedDate)")
        return CrmRecord(contact_id=contact_id, values=self._values(document), modified_at=modified)

    def _values(self, document: dict[str, Any]) -> dict[ContactField, FieldValue]:
        """The mapped fields as the record holds them (empty: ``None``); unreadable ones are left out."""
        values: dict[ContactField, FieldValue] = {}
        for name, field in {**_FIELDS, self.config.customer_id_field: ContactField.CUSTOMER_ID}.items():
            if name in document:
                try:
                    values[field] = read_text(document[name])
                except ValueError:
                    continue
        for field, preferred in _PREFERRED.items():
            try:
                read = [read_text(document[name]) for name in preferred if name in document]
            except ValueError:
                continue
            if read:
                values[field] = next((value for value in read if value), None)
        if "MailingStreet" in document:
            try:
                street = read_text(document["MailingStreet"])
            except ValueError:
                return values
            values[ContactField.LINE1], values[ContactField.LINE2] = split_street(street)
        return values


def build(settings: DeliverSettings) -> Reading:
    """Salesforce's read mode and reader from ``SALESFORCE_CDC_*`` settings (no reader in ``payload`` mode).

    Raises:
        pydantic.ValidationError: a setting is invalid, or a read mode is set without credentials or instance URL.
    """
    config = load_prefixed(SalesforceReadConfig, CDC_NAME)
    if config.mode is ReadMode.PAYLOAD or config.instance_url is None:
        return Reading(config.mode, None)
    base = str(config.instance_url).rstrip("/")
    token = SalesforceToken(
        str(config.login_url or config.instance_url).rstrip("/") + TOKEN_PATH,
        lambda refresh: read_secret(
            config.credentials_secret_id, max_age=settings.secret_max_age_seconds, refresh=refresh
        ),
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
    )
    api = CrmApi(
        "Salesforce",
        base,
        token,
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
        connections=settings.deliver_threads,  # one per thread: reads wait for the CRM together
    )
    reader = SalesforceReader(config, api)
    on_reset(reader.close)
    on_reset(token.close)
    return Reading(config.mode, reader)
