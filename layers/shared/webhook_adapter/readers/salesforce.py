"""Salesforce's REST API, Contact read: what a Change Data Capture gap event (or an incomplete address) needs.

A connected app with the OAuth 2.0 client credentials flow (a run-as user, scope ``api``): its consumer key
and secret are one Secrets Manager secret holding ``{"client_id": ..., "client_secret": ...}``. The access
token from ``POST /services/oauth2/token`` is kept in memory until Salesforce answers 401, then fetched once
again (``CrmApi``'s retry). ``GET /services/data/v{version}/sobjects/Contact/{id}`` answers the whole record
(no ``fields`` list: ``MailingStateCode`` exists only in orgs with state and country picklists, and naming a
field the org lacks is a 400); ``LastModifiedDate`` (else ``SystemModstamp``) dates every value read.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, HttpUrl

from webhook_adapter.errors import CrmUnavailable
from webhook_adapter.model import ContactField, FieldValue, ReadMode
from webhook_adapter.readers.api import ApiReader, iso_epoch_ms, read_text
from webhook_adapter.readers.oauth import OAuthGrant, OAuthReadConfig, none_if_empty, oauth_api
from webhook_adapter.records import CrmRecord, Reading
from webhook_adapter.salesforce_fields import CDC_NAME, split_street
from webhook_adapter.settings import DeliverSettings, load_prefixed

__all__ = ["GRANT", "TOKEN_PATH", "SalesforceReadConfig", "SalesforceReader", "build"]

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


class SalesforceReadConfig(OAuthReadConfig):
    """``SALESFORCE_CDC_*`` settings of the deliver function (gap events need a read: on with the credentials)."""

    CREDENTIALS_PARAMETER = "SalesforceCdcCredentialsSecretArn"

    instance_url: Annotated[HttpUrl | None, BeforeValidator(none_if_empty)] = None
    """The org's My Domain URL (``https://<domain>.my.salesforce.com``): the API and, by default, the token."""
    login_url: Annotated[HttpUrl | None, BeforeValidator(none_if_empty)] = None
    """Where the token is asked for, when not the instance URL."""
    api_version: Annotated[str, Field(pattern=r"^[1-9][0-9]\.0$")] = "62.0"
    customer_id_field: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")] = "Sphere_Customer_Id__c"

    def missing_for_reading(self) -> list[str]:
        """The credentials, and the instance URL the API is reached at."""
        return super().missing_for_reading() + ([] if self.instance_url else ["instance_url (SalesforceInstanceUrl)"])


GRANT = OAuthGrant(crm="Salesforce", grant_type="client_credentials", credential_keys=("client_id", "client_secret"))
"""The connected app's consumer key and secret, as the credentials secret holds them."""


class SalesforceReader(ApiReader[SalesforceReadConfig]):
    """Reads a Salesforce Contact (its record id, as the Change Data Capture source names it) into the mapped fields."""

    CRM = "Salesforce"

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
    api = oauth_api(
        "Salesforce",
        base,
        token_url=str(config.login_url or config.instance_url).rstrip("/") + TOKEN_PATH,
        grant=GRANT,
        credentials_secret_id=config.credentials_secret_id,
        secret_max_age=settings.secret_max_age_seconds,
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
        connections=settings.deliver_threads,  # one per thread: reads wait for the CRM together
    )
    return Reading(config.mode, SalesforceReader(config, api))
