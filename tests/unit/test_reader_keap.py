"""Keap's contact reader against the CRM stand-in: the v1 contact shape in, the mapped fields and time out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from devstack.crm_shapes import KEAP_CUSTOMER_ID_FIELD_ID, Crm
from devstack.crm_standin import DEFAULT_TOKENS, CrmStandIn
from webhook_adapter.errors import CrmUnavailable
from webhook_adapter.model import MAX_VALUE_CHARS, ContactField, ReadMode
from webhook_adapter.readers import READER_MODULES
from webhook_adapter.readers.keap import KeapReadConfig, KeapReader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keap"
T0 = 1_795_000_000_000
VALUES = {
    "customer_id": "customer_abc123",
    "email": "Ada@Example.com",
    "phone": "+1 312 555 0142",
    "mobile_phone": "+1 312 555 0199",
    "line1": "233 S Wacker Dr",
    "line2": "Suite 4400",
    "city": "Chicago",
    "state": "IL",
    "postal_code": "60606",
    "country": "USA",
}


@pytest.fixture
def crm() -> Iterator[CrmStandIn]:
    with CrmStandIn(port=0) as standin:
        yield standin


def keap(crm: CrmStandIn, field_id: str = str(KEAP_CUSTOMER_ID_FIELD_ID)) -> KeapReader:
    settings = KeapReadConfig(api_url=crm.base_url, api_token_secret_id="x", customer_id_field_id=field_id)
    return KeapReader.with_token(settings, lambda _refresh: DEFAULT_TOKENS[Crm.KEAP], connect_timeout=1, timeout=2)


def fixture_contact() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "contact.json").read_text(encoding="utf-8"))
    return document


def test_keap_is_a_source_that_reads_its_records() -> None:
    assert READER_MODULES["keap"] == "webhook_adapter.readers.keap"


def test_a_contact_is_read_into_its_mapped_fields_dated_by_last_updated(crm: CrmStandIn) -> None:
    # Given a Keap contact with every mapped field
    crm.put_record("keap", "12345", VALUES, modified_at_ms=T0)

    # When it is read
    record = keap(crm).read("12345")

    # Then EMAIL1, PHONE1, the Mobile number, the BILLING address and the custom field are the fields, as of
    # last_updated, read from the v1 path with the custom fields asked for
    assert record is not None
    assert record.modified_at == T0
    assert record.contact_id == "12345"
    assert {field.value: value for field, value in record.values.items()} == VALUES
    [read] = crm.records_read("keap")
    assert read.path == "/crm/rest/v1/contacts/12345"
    assert dict(read.query) == {"optional_properties": "custom_fields"}


def test_the_documented_contact_shape_is_read(crm: CrmStandIn) -> None:
    # Given Keap's contact as its reference shows it (tests/fixtures/keap/contact.json)
    crm.put_raw("keap", "12345", fixture_contact())

    # When it is read
    record = keap(crm).read("12345")

    # Then the fields are its EMAIL1, PHONE1, Mobile PHONE2, BILLING address and custom field 12
    assert record is not None
    assert record.modified_at == 1_795_668_870_000
    assert record.values == {
        ContactField.EMAIL: "ada.lovelace@example.com",
        ContactField.PHONE: "+1 312 555 0142",
        ContactField.MOBILE_PHONE: "+1 312 555 0199",
        ContactField.LINE1: "233 S Wacker Dr",
        ContactField.LINE2: "Suite 4400",
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60606",
        ContactField.COUNTRY: "USA",
        ContactField.CUSTOMER_ID: "cust-000001",
    }


def test_entries_of_other_fields_are_not_read_and_missing_ones_read_as_cleared(crm: CrmStandIn) -> None:
    # Given a contact whose only email is EMAIL2, whose PHONE1 is typed Mobile, with a SHIPPING address only
    document = fixture_contact() | {
        "email_addresses": [{"email": "other@example.com", "field": "EMAIL2"}],
        "phone_numbers": [{"number": "+1 312 555 0100", "field": "PHONE1", "type": "Mobile"}],
        "addresses": [{"field": "SHIPPING", "line1": "1 Dock St", "locality": "Chicago"}],
    }
    crm.put_raw("keap", "12345", document)

    # When it is read
    record = keap(crm).read("12345")

    # Then the email and the address are cleared, PHONE1 is the phone (not also the mobile phone)
    assert record is not None
    assert record.values[ContactField.EMAIL] is None
    assert record.values[ContactField.LINE1] is None
    assert record.values[ContactField.CITY] is None
    assert record.values[ContactField.PHONE] == "+1 312 555 0100"
    assert record.values[ContactField.MOBILE_PHONE] is None


def test_without_a_customer_id_field_the_customer_id_is_not_read(crm: CrmStandIn) -> None:
    crm.put_raw("keap", "12345", fixture_contact())
    record = keap(crm, field_id="").read("12345")
    assert record is not None
    assert ContactField.CUSTOMER_ID not in record.values


def test_values_that_cannot_be_carried_are_left_out(crm: CrmStandIn) -> None:
    # Given a number where the email belongs and an overlong city
    document = fixture_contact()
    document["email_addresses"][0]["email"] = 42
    document["addresses"][0]["locality"] = "x" * (MAX_VALUE_CHARS + 1)
    crm.put_raw("keap", "12345", document)

    # Then both are left as the events had them (absent), the rest is read
    record = keap(crm).read("12345")
    assert record is not None
    assert ContactField.EMAIL not in record.values
    assert ContactField.CITY not in record.values
    assert record.values[ContactField.LINE1] == "233 S Wacker Dr"


def test_a_contact_keap_no_longer_has_reads_as_none(crm: CrmStandIn) -> None:
    assert keap(crm).read("404") is None


@pytest.mark.parametrize(
    "document",
    [[], {"id": 12345}, fixture_contact() | {"last_updated": "yesterday"}, fixture_contact() | {"addresses": {}}],
    ids=["array", "no last_updated", "no time", "addresses not a list"],
)
def test_an_answer_that_is_no_contact_is_unavailable(crm: CrmStandIn, document: Any) -> None:
    crm.put_raw("keap", "12345", document)
    with pytest.raises(CrmUnavailable, match="Keap"):
        keap(crm).read("12345")


def test_a_transient_failure_is_unavailable_with_its_retry_after(crm: CrmStandIn) -> None:
    crm.put_record("keap", "12345", VALUES, modified_at_ms=T0)
    crm.fail_next(1, 429, retry_after=5, crm="keap")
    with pytest.raises(CrmUnavailable) as raised:
        keap(crm).read("12345")
    assert raised.value.retry_after == 5


def test_a_rotated_token_is_read_again_once_and_a_token_refused_twice_is_unavailable(crm: CrmStandIn) -> None:
    # Given Keap accepting a new token, which the secret holds only after the first read
    crm.put_record("keap", "12345", VALUES, modified_at_ms=T0)
    crm.rotate_token("keap", "rotated-keap-token")
    asked: list[bool] = []

    def token(refresh: bool) -> str:
        asked.append(refresh)
        return "rotated-keap-token" if refresh else DEFAULT_TOKENS[Crm.KEAP]

    settings = KeapReadConfig(api_url=crm.base_url, api_token_secret_id="x")

    # Then the read succeeds with the token read again
    assert KeapReader.with_token(settings, token, connect_timeout=1, timeout=2).read("12345") is not None
    assert asked == [False, True]

    # And a token refused twice is unavailable
    stale = KeapReader.with_token(settings, lambda _refresh: "stale", connect_timeout=1, timeout=2)
    with pytest.raises(CrmUnavailable, match="refused the API token"):
        stale.read("12345")


def test_a_read_mode_without_a_token_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="KeapApiTokenSecretArn"):
        KeapReadConfig()
    assert KeapReadConfig(read_mode=ReadMode.PAYLOAD).api_token_secret_id == ""


@pytest.mark.parametrize("field_id", ["0", "abc", "-1", "1" * 20])
def test_the_customer_id_field_id_must_be_a_positive_number(field_id: str) -> None:
    with pytest.raises(ValidationError):
        KeapReadConfig(api_token_secret_id="x", customer_id_field_id=field_id)
