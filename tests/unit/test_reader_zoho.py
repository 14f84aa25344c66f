"""Zoho CRM's contact reader against the CRM stand-in: the self client's refresh grant, the record, its time."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from devstack.crm_standin import ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN, CrmStandIn
from webhook_adapter.errors import CrmUnavailable, SecretUnavailable
from webhook_adapter.model import ContactField, ReadMode
from webhook_adapter.readers import READER_MODULES
from webhook_adapter.readers.api import CrmApi
from webhook_adapter.readers.oauth import EXPIRY_MARGIN_SECONDS, OAuthToken
from webhook_adapter.readers.zoho import GRANT, TOKEN_PATH, ZohoReadConfig, ZohoReader

CONTACT = "4876876000000624001"
T0 = 1_795_000_000_000
CREDENTIALS = json.dumps(
    {"client_id": ZOHO_CLIENT_ID, "client_secret": ZOHO_CLIENT_SECRET, "refresh_token": ZOHO_REFRESH_TOKEN}
)
VALUES = {
    "customer_id": "customer_abc123",
    "email": "Ada@Example.com",
    "phone": "+1 312 555 0142",
    "mobile_phone": None,
    "line1": "233 S Wacker Dr",
    "city": "Chicago",
    "state": "IL",
    "postal_code": "60606",
    "country": "United States",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def crm() -> Iterator[CrmStandIn]:
    with CrmStandIn(port=0) as standin:
        yield standin


def zoho(crm: CrmStandIn, credentials: str = CREDENTIALS, clock: Clock | None = None) -> ZohoReader:
    config = ZohoReadConfig(api_url=crm.base_url, accounts_url=crm.base_url, credentials_secret_id="x")
    token = OAuthToken(
        crm.base_url + TOKEN_PATH,
        GRANT,
        lambda _refresh: credentials,
        connect_timeout=1,
        timeout=2,
        clock=clock or Clock(),
    )
    api = CrmApi(
        "Zoho",
        crm.base_url,
        token,
        connect_timeout=1,
        timeout=2,
        authorization=lambda access: {"Authorization": f"Zoho-oauthtoken {access}"},
    )
    return ZohoReader(config, api)


def token_requests(crm: CrmStandIn) -> int:
    return sum(1 for request in crm.requests if request.path == TOKEN_PATH)


def test_zoho_is_a_source_that_reads_its_records() -> None:
    assert READER_MODULES["zoho"] == "webhook_adapter.readers.zoho"


def test_a_contact_is_read_with_a_token_of_the_refresh_grant(crm: CrmStandIn) -> None:
    # Given a Zoho contact with the mapped fields
    crm.put_record("zoho", CONTACT, VALUES, modified_at_ms=T0)

    # When it is read twice
    contacts = zoho(crm)
    record = contacts.read(CONTACT)
    again = contacts.read(CONTACT)

    # Then the fields come back by their Zoho names, dated by Modified_Time; one access token served both reads
    assert record is not None
    assert again == record
    assert record.modified_at == T0
    assert dict(record.values) == {
        ContactField.CUSTOMER_ID: "customer_abc123",
        ContactField.EMAIL: "Ada@Example.com",
        ContactField.PHONE: "+1 312 555 0142",
        ContactField.MOBILE_PHONE: None,
        ContactField.LINE1: "233 S Wacker Dr",
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60606",
        ContactField.COUNTRY: "United States",
    }
    assert token_requests(crm) == 1
    [read, _] = crm.records_read("zoho")
    assert read.path == f"/crm/v8/Contacts/{CONTACT}"
    assert read.headers["authorization"].startswith("Zoho-oauthtoken ")


def test_a_token_is_fetched_again_before_it_expires(crm: CrmStandIn) -> None:
    # Given a reader whose token Zoho said lasts an hour
    crm.put_record("zoho", CONTACT, VALUES, modified_at_ms=T0)
    clock = Clock()
    contacts = zoho(crm, clock=clock)
    contacts.read(CONTACT)

    # When nearly an hour has passed, and then the last minute of it
    clock.now += 3600 - EXPIRY_MARGIN_SECONDS - 1
    contacts.read(CONTACT)
    clock.now += 1
    contacts.read(CONTACT)

    # Then the token was kept until its last minute, then fetched again without a refused call
    assert token_requests(crm) == 2
    assert all(request.status == 200 for request in crm.requests)


def test_a_refused_token_is_fetched_again_once(crm: CrmStandIn) -> None:
    # Given a reader holding a token, then Zoho revoking it (its accounts server now issues another)
    crm.put_record("zoho", CONTACT, VALUES, modified_at_ms=T0)
    contacts = zoho(crm)
    contacts.read(CONTACT)
    crm.rotate_token("zoho", "1000.rotated-zoho-token")

    # When it reads again
    record = contacts.read(CONTACT)

    # Then the 401 bought a new token and the read succeeded with it
    assert record is not None
    assert token_requests(crm) == 2
    assert crm.records_read("zoho")[-1].headers["authorization"] == "Zoho-oauthtoken 1000.rotated-zoho-token"


def test_an_unknown_contact_is_gone_and_zohos_failures_are_transient(crm: CrmStandIn) -> None:
    # Given a contact Zoho does not have (it answers 204 No Content)
    contacts = zoho(crm)

    # Then it reads as gone
    assert contacts.read("4876876000000000404") is None

    # And a 429 with Retry-After, or a 5xx, is unavailable for now
    crm.fail_next(1, 429, retry_after=7, crm="zoho")
    with pytest.raises(CrmUnavailable) as limited:
        contacts.read(CONTACT)
    assert limited.value.retry_after == 7
    crm.fail_next(1, 502, crm="zoho")
    with pytest.raises(CrmUnavailable, match="502"):
        contacts.read(CONTACT)


@pytest.mark.parametrize(
    ("credentials", "error", "match"),
    [
        (
            json.dumps({"client_id": ZOHO_CLIENT_ID, "client_secret": ZOHO_CLIENT_SECRET, "refresh_token": "1000.old"}),
            CrmUnavailable,
            r"refused the credentials \(200, invalid_code\)",
        ),
        (
            json.dumps({"client_id": ZOHO_CLIENT_ID, "client_secret": "wrong", "refresh_token": ZOHO_REFRESH_TOKEN}),
            CrmUnavailable,
            r"refused the credentials \(200, invalid_client\)",
        ),
        (
            json.dumps({"client_id": ZOHO_CLIENT_ID, "client_secret": ZOHO_CLIENT_SECRET}),
            SecretUnavailable,
            "client_id, client_secret, refresh_token",
        ),
        ("1000.just-an-access-token", SecretUnavailable, "refresh_token"),
    ],
    ids=["revoked-refresh-token", "wrong-client-secret", "no-refresh-token", "not-json"],
)
def test_credentials_zoho_refuses_or_that_are_incomplete_make_the_read_unavailable(
    crm: CrmStandIn, credentials: str, error: type[Exception], match: str
) -> None:
    # Given credentials Zoho refuses (with 200 and an error code, as it does) or a secret missing a key
    crm.put_record("zoho", CONTACT, VALUES, modified_at_ms=T0)

    # Then the read fails for now, naming no credential
    with pytest.raises(error, match=match) as raised:
        zoho(crm, credentials=credentials).read(CONTACT)
    assert "wrong" not in str(raised.value)
    assert "1000.old" not in str(raised.value)


def test_a_record_without_a_modification_time_or_not_a_record_is_unavailable(crm: CrmStandIn) -> None:
    # Given answers that are no Zoho record
    crm.put_raw("zoho", "1", {"data": [{"id": "1", "Email": "a@example.com"}]})
    crm.put_raw("zoho", "2", {"data": []})
    crm.put_raw("zoho", "3", ["not", "a", "record"])

    # Then each read is unavailable
    with pytest.raises(CrmUnavailable, match="Modified_Time"):
        zoho(crm).read("1")
    for record_id in ("2", "3"):
        with pytest.raises(CrmUnavailable, match="not a record"):
            zoho(crm).read(record_id)


def test_the_customer_id_field_and_module_are_settings_and_a_read_mode_needs_credentials() -> None:
    # Then credentials read when incomplete, none read nothing, a read mode without credentials is refused
    assert ZohoReadConfig(credentials_secret_id="arn").mode is ReadMode.WHEN_INCOMPLETE
    assert ZohoReadConfig(read_mode="").mode is ReadMode.PAYLOAD
    with pytest.raises(ValidationError, match="ZohoCredentialsSecretArn"):
        ZohoReadConfig(read_mode=ReadMode.ALWAYS)
    for bad in ({"api_version": "8"}, {"module": "Contacts/../x"}, {"customer_id_field": "a b"}):
        with pytest.raises(ValidationError):
            ZohoReadConfig.model_validate({"credentials_secret_id": "arn", **bad})
