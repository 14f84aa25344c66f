"""Salesforce's Contact read against the CRM stand-in: client credentials, the token kept until refused, the fields."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from devstack.crm_standin import SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, CrmStandIn
from webhook_adapter.errors import CrmUnavailable, SecretUnavailable
from webhook_adapter.model import ContactField, ReadMode
from webhook_adapter.readers.api import CrmApi
from webhook_adapter.readers.oauth import OAuthToken
from webhook_adapter.readers.salesforce import GRANT, TOKEN_PATH, SalesforceReadConfig, SalesforceReader

T0 = 1_795_000_000_000
CONTACT = "0035e00000AbCdEAAV"
CREDENTIALS = json.dumps({"client_id": SALESFORCE_CLIENT_ID, "client_secret": SALESFORCE_CLIENT_SECRET})
VALUES = {
    "customer_id": "customer_abc123",
    "email": "Ada@Example.com",
    "phone": "+1 312 555 0142",
    "line1": "233 S Wacker Dr",
    "line2": "Suite 4400",
    "city": "Chicago",
    "state": "IL",
    "postal_code": "60606",
    "country": "US",
}


@pytest.fixture
def crm() -> Iterator[CrmStandIn]:
    with CrmStandIn(port=0) as standin:
        yield standin


def reader(crm: CrmStandIn, credentials: str = CREDENTIALS, secret_reads: list[bool] | None = None) -> SalesforceReader:
    config = SalesforceReadConfig(instance_url=crm.base_url, credentials_secret_id="x")

    def secret(refresh: bool) -> str:
        if secret_reads is not None:
            secret_reads.append(refresh)
        return credentials

    token = OAuthToken(crm.base_url + TOKEN_PATH, GRANT, secret, connect_timeout=1, timeout=2)
    return SalesforceReader(config, CrmApi("Salesforce", crm.base_url, token, connect_timeout=1, timeout=2))


def token_requests(crm: CrmStandIn) -> int:
    return sum(1 for request in crm.requests if request.path == TOKEN_PATH)


def test_a_contact_is_read_with_a_token_from_the_client_credentials_flow(crm: CrmStandIn) -> None:
    # Given a Salesforce Contact with a two-line street
    crm.put_record("salesforce", CONTACT, VALUES, modified_at_ms=T0)

    # When it is read twice
    contacts = reader(crm)
    record = contacts.read(CONTACT)
    again = contacts.read(CONTACT)

    # Then the mapped fields come back, the street split in two lines, dated by LastModifiedDate; one token served both
    assert record is not None
    assert again == record
    assert record.modified_at == T0
    assert dict(record.values) == {
        ContactField.CUSTOMER_ID: "customer_abc123",
        ContactField.EMAIL: "Ada@Example.com",
        ContactField.PHONE: "+1 312 555 0142",
        ContactField.MOBILE_PHONE: None,
        ContactField.LINE1: "233 S Wacker Dr",
        ContactField.LINE2: "Suite 4400",
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60606",
        ContactField.COUNTRY: "US",
    }
    assert token_requests(crm) == 1
    [first, _] = crm.records_read("salesforce")
    assert first.path == f"/services/data/v62.0/sobjects/Contact/{CONTACT}"


def test_a_refused_token_is_fetched_again_once(crm: CrmStandIn) -> None:
    # Given a reader holding a token, then Salesforce revoking it (the token endpoint now issues another)
    crm.put_record("salesforce", CONTACT, VALUES, modified_at_ms=T0)
    reads: list[bool] = []
    contacts = reader(crm, secret_reads=reads)
    assert contacts.read(CONTACT) is not None
    crm.rotate_token("salesforce", "00DLOCAL!rotated-token")

    # When the contact is read again
    record = contacts.read(CONTACT)

    # Then the 401 fetched a new token (the credentials read afresh) and the read succeeded with it
    assert record is not None
    assert token_requests(crm) == 2
    assert reads == [False, True]
    assert crm.records_read("salesforce")[-1].headers["authorization"] == "Bearer 00DLOCAL!rotated-token"


def test_picklist_codes_win_over_names_and_system_modstamp_dates_a_record_without_last_modified(
    crm: CrmStandIn,
) -> None:
    # Given an org with state and country picklists, whose record answer lacks LastModifiedDate
    crm.put_raw(
        "salesforce",
        CONTACT,
        {
            "Id": CONTACT,
            "MailingStreet": "1 Main St",
            "MailingState": "Illinois",
            "MailingStateCode": "IL",
            "MailingCountry": "United States",
            "MailingCountryCode": None,
            "SystemModstamp": "2026-11-26T04:54:30.000+0000",
        },
    )

    # When read
    record = reader(crm).read(CONTACT)

    # Then the code is taken when it has a value, else the name; a one-line street clears line 2
    assert record is not None
    assert record.modified_at == 1_795_668_870_000
    assert record.values[ContactField.STATE] == "IL"
    assert record.values[ContactField.COUNTRY] == "United States"
    assert (record.values[ContactField.LINE1], record.values[ContactField.LINE2]) == ("1 Main St", None)
    assert ContactField.EMAIL not in record.values


def test_a_contact_salesforce_no_longer_has_reads_as_none(crm: CrmStandIn) -> None:
    # Given no such Contact, When it is read, Then the reader says it is gone
    assert reader(crm).read(CONTACT) is None


def test_credentials_salesforce_refuses_make_the_read_unavailable(crm: CrmStandIn) -> None:
    # Given a secret with the wrong client secret
    wrong = json.dumps({"client_id": SALESFORCE_CLIENT_ID, "client_secret": "not-it"})

    # When a contact is read, Then it is unavailable (retried later), naming no credential
    with pytest.raises(CrmUnavailable, match=r"refused the credentials \(400, invalid_client\)") as raised:
        reader(crm, credentials=wrong).read(CONTACT)
    assert "not-it" not in raised.value.message


def test_a_secret_that_is_not_the_credentials_json_cannot_be_read(crm: CrmStandIn) -> None:
    # Given a secret holding a bare token instead of {"client_id", "client_secret"}
    with pytest.raises(SecretUnavailable, match="client_id"):
        reader(crm, credentials="just-a-token").read(CONTACT)


def test_a_record_without_a_modification_time_is_unavailable(crm: CrmStandIn) -> None:
    # Given an answer that is no Contact record
    crm.put_raw("salesforce", CONTACT, {"Id": CONTACT, "Email": "a@example.com"})

    # Then the read is unavailable
    with pytest.raises(CrmUnavailable, match="no modification time"):
        reader(crm).read(CONTACT)


def test_the_read_mode_follows_the_credentials_unless_set() -> None:
    # Then credentials and an instance URL read when incomplete, none read nothing, credentials without URL are refused
    with_url = SalesforceReadConfig(credentials_secret_id="arn", instance_url="https://acme.my.salesforce.com")
    assert with_url.mode is ReadMode.WHEN_INCOMPLETE
    assert SalesforceReadConfig(credentials_secret_id="", instance_url="").mode is ReadMode.PAYLOAD
    with pytest.raises(ValidationError, match="SalesforceInstanceUrl"):
        SalesforceReadConfig(credentials_secret_id="arn")
    with pytest.raises(ValidationError, match="SalesforceCdcCredentialsSecretArn"):
        SalesforceReadConfig(read_mode=ReadMode.ALWAYS)
    with pytest.raises(ValidationError):
        SalesforceReadConfig(api_version="v62")
