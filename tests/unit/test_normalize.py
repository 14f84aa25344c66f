"""Normalization of contact fields and the plan of Sphere's request body."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook_adapter.merge import FieldState, digest
from webhook_adapter.model import ContactField, FieldValue
from webhook_adapter.normalize import (
    Group,
    InvalidValue,
    Plan,
    Problem,
    group_of,
    normalize_country,
    normalize_email,
    normalize_phone,
    normalize_state,
    plan_request,
)

STATE_REQUIRED = frozenset({"USA", "CAN", "BRA", "AUS", "MEX"})
CUSTOMER_ID = "customer_abc123"
US_ADDRESS: dict[ContactField, FieldValue] = {
    ContactField.LINE1: "1 Main St",
    ContactField.LINE2: "Apt 2",
    ContactField.CITY: "Chicago",
    ContactField.STATE: "Illinois",
    ContactField.POSTAL_CODE: "60601",
    ContactField.COUNTRY: "United States",
}
DE_ADDRESS: dict[ContactField, FieldValue] = {
    ContactField.LINE1: "Unter den Linden 1",
    ContactField.CITY: "Berlin",
    ContactField.POSTAL_CODE: "10117",
    ContactField.COUNTRY: "DE",
}


def known(values: dict[ContactField, FieldValue]) -> dict[ContactField, FieldState]:
    """Merged fields as the deliver step holds them (time and key do not matter to the plan)."""
    return {name: FieldState(value=value, occurred_at=1, event=f"k-{name}") for name, value in values.items()}


def plan(values: dict[ContactField, FieldValue]) -> Plan:
    return plan_request(known(values), default_region="US", countries_requiring_state=STATE_REQUIRED)


# --- single fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("jane@example.com", "jane@example.com"), ("Jane.Doe@Example.COM", "Jane.Doe@example.com")],
)
def test_valid_email_is_normalized(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["jane", "jane@", "@example.com", "jane@@example.com", "jane doe@example.com", ""])
def test_invalid_email_is_refused_without_echoing_it(raw: str) -> None:
    with pytest.raises(InvalidValue, match="not a valid email address") as caught:
        normalize_email(raw)
    if raw:
        assert raw not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\uff41\uff44\uff41@example.com", "ada@example.com"),  # fullwidth "ada"
        ("ada@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "ada@example.com"),  # fullwidth domain
        ("\ufb01nance@example.com", "finance@example.com"),  # the ligature ﬁ
    ],
)
def test_compatibility_characters_become_ascii(raw: str, expected: str) -> None:
    # Given an address typed with fullwidth or ligature characters (NFKC folds them)
    # When normalized
    # Then Sphere gets the plain ASCII address it looks like
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ada@b\u00fccher.example", "ada@xn--bcher-kva.example"),  # bücher
        ("Ada@B\u00dcCHER.Example", "Ada@xn--bcher-kva.example"),  # upper case folds to the same domain
        ("ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"),  # already in ASCII form
        ("ivan@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "ivan@xn--e1afmkfd.xn--p1ai"),  # пример.рф
        ("taro@\u4f8b\u3048.jp", "taro@xn--r8jz45g.jp"),  # 例え.jp: Han with Hiragana is one writing system
    ],
)
def test_internationalized_domain_is_sent_in_ascii_form(raw: str, expected: str) -> None:
    # Given a legitimate internationalized domain, each label in one writing system
    # When normalized
    # Then the domain is its IDNA (punycode) form, what mail systems and KYC backends store
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "\u0430d\u0430@example.com",  # "ada": Cyrillic a around a Latin d
        "p\u03bfst@example.com",  # "post" with a Greek omicron
        "\uff41d\u0430@example.com",  # fullwidth a (Latin after NFKC) with a Cyrillic a
    ],
)
def test_local_part_mixing_scripts_is_refused(raw: str) -> None:
    # Given a local part that looks Latin but hides a Cyrillic or Greek letter (a homograph)
    # When normalized
    # Then it is refused, saying why without repeating the value
    with pytest.raises(InvalidValue, match="local part mixes scripts") as caught:
        normalize_email(raw)
    assert raw not in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        "ada@ex\u0430mple.com",  # "example" with a Cyrillic a
        "ada@g\u03bfogle.com",  # "google" with a Greek omicron
        "ada@xn--exmple-4nf.com",  # the Cyrillic homograph already in punycode
        "ada@mail.p\u0430ypal.com",  # one mixed label among plain ones
    ],
)
def test_domain_label_mixing_scripts_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue, match="domain mixes scripts") as caught:
        normalize_email(raw)
    assert raw not in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        "jos\u00e9@example.com",  # josé: Latin, but not ASCII
        "\u0438\u0432\u0430\u043d@example.com",  # иван: all Cyrillic
        "\u0430\u0440\u0435@example.com",  # all Cyrillic, looks like "ape"
        "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a",  # 用户@例子.广告
    ],
)
def test_non_ascii_local_part_is_refused(raw: str) -> None:
    # Given an internationalized (SMTPUTF8) local part, in a single script
    # When normalized
    # Then it is refused: Sphere documents no SMTPUTF8 support, and a whole-script look-alike cannot be told apart
    with pytest.raises(InvalidValue, match="local part is not ASCII") as caught:
        normalize_email(raw)
    assert raw not in str(caught.value)


_LOOKALIKES = "\u0430\u0435\u043e\u0440\u0441\u0445\u0456\u03bf\u03b1\uff41\uff45\uff10\ufb01\u00fc\u00e9\u4f8b\u3048"
"""Cyrillic and Greek look-alikes, fullwidth letters and digit, a ligature, accented Latin, Han and Hiragana."""
_EMAIL_CHARS = st.sampled_from("adeopxy019" + _LOOKALIKES)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """Address-shaped text whose local part and domain labels mix ASCII with look-alikes."""
    local = draw(st.text(_EMAIL_CHARS, min_size=1, max_size=8))
    labels = draw(st.lists(st.text(_EMAIL_CHARS, min_size=1, max_size=8), min_size=1, max_size=3))
    return f"{local}@{'.'.join(labels)}.com"


@given(addresses())
def test_normalized_email_is_ascii_and_stable(raw: str) -> None:
    # Given an address mixing ASCII with look-alike, compatibility and non-Latin characters
    # When normalized
    try:
        normalized = normalize_email(raw)
    except InvalidValue:
        return
    # Then what Sphere would get is ASCII, and normalizing it again changes nothing
    assert normalized.isascii()
    assert normalize_email(normalized) == normalized


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(312) 555-0123", "US", "+13125550123"),
        ("312.555.0123", "US", "+13125550123"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+1 415 555 0123", "GB", "+14155550123"),
    ],
)
def test_phone_is_normalized_to_e164(raw: str, region: str, expected: str) -> None:
    # Given a national number read in the default region, or an international one
    # Then it is E.164
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["12", "not a phone", "+1 000 000 0000", "", "+999 1234567"])
def test_invalid_phone_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue, match="phone"):
        normalize_phone(raw, "US")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("United States", "USA"),
        ("US", "USA"),
        ("USA", "USA"),
        (" usa ", "USA"),
        ("Brazil", "BRA"),
        ("DE", "DEU"),
        ("Germany", "DEU"),
    ],
)
def test_country_is_normalized_to_alpha3(raw: str, expected: str) -> None:
    assert normalize_country(raw) == expected


@pytest.mark.parametrize("raw", ["Narnia", "XX", ""])
def test_unknown_country_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue, match="country"):
        normalize_country(raw)


@pytest.mark.parametrize("raw", ["Illinois", "IL", "il", "US-IL", "us-il", " Illinois "])
def test_us_state_is_normalized_to_its_code(raw: str) -> None:
    assert normalize_state(raw, "USA") == "IL"


@pytest.mark.parametrize("raw", ["São Paulo", "SP", "BR-SP"])
def test_brazilian_state_is_normalized_to_its_code(raw: str) -> None:
    assert normalize_state(raw, "BRA") == "SP"


def test_brazilian_state_name_without_accents_is_normalized() -> None:
    # Given the state typed without its accent, as CRMs often hold it
    # Then it is still São Paulo
    assert normalize_state("Sao Paulo", "BRA") == "SP"


@pytest.mark.parametrize(("raw", "country"), [("Narnia", "USA"), ("IL", "BRA"), ("US-IL", "CAN")])
def test_unknown_state_is_refused(raw: str, country: str) -> None:
    with pytest.raises(InvalidValue, match=f"not a subdivision of {country}"):
        normalize_state(raw, country)


@pytest.mark.parametrize(
    ("name", "group"),
    [
        (ContactField.EMAIL, Group.EMAIL),
        (ContactField.PHONE, Group.PHONE),
        (ContactField.MOBILE_PHONE, Group.PHONE),
        (ContactField.LINE1, Group.ADDRESS),
        (ContactField.COUNTRY, Group.ADDRESS),
        (ContactField.CUSTOMER_ID, None),
    ],
)
def test_each_field_feeds_its_request_field(name: ContactField, group: Group | None) -> None:
    assert group_of(name) is group


# --- plan_request ------------------------------------------------------------------------------


def test_complete_us_address_is_sent_in_sphere_form() -> None:
    # Given a complete US address with the state and country as names
    # When planned
    result = plan({**US_ADDRESS, ContactField.CUSTOMER_ID: CUSTOMER_ID})

    # Then the address is one object, in Sphere's field order, with codes
    address = result.desired[Group.ADDRESS]
    assert address == {
        "line1": "1 Main St",
        "line2": "Apt 2",
        "city": "Chicago",
        "state": "IL",
        "postalCode": "60601",
        "country": "USA",
    }
    assert list(address) == ["line1", "line2", "city", "state", "postalCode", "country"]
    assert result.problems == {}
    assert result.customer_id == CUSTOMER_ID
    assert result.customer_id_problem is None


def test_address_without_a_postal_code_is_incomplete() -> None:
    # Given a US address without its postal code
    values: dict[ContactField, FieldValue] = {
        name: value for name, value in US_ADDRESS.items() if name is not ContactField.POSTAL_CODE
    }

    # When planned
    result = plan(values)

    # Then no address is sent, and the missing part is named
    assert Group.ADDRESS not in result.desired
    problem = result.problems[Group.ADDRESS]
    assert problem.missing == ("postalCode",)
    assert not problem.invalid


def test_cleared_postal_code_makes_the_address_incomplete() -> None:
    result = plan({**US_ADDRESS, ContactField.POSTAL_CODE: None})
    assert result.problems[Group.ADDRESS].missing == ("postalCode",)


def test_us_address_without_a_state_is_incomplete() -> None:
    values: dict[ContactField, FieldValue] = {
        name: value for name, value in US_ADDRESS.items() if name is not ContactField.STATE
    }
    result = plan(values)
    assert Group.ADDRESS not in result.desired
    assert result.problems[Group.ADDRESS] == Problem(
        reason="address is incomplete: missing state", invalid=False, missing=("state",)
    )


def test_german_address_without_a_state_is_complete() -> None:
    # Given a German address (no state required there)
    result = plan(DE_ADDRESS)

    # Then it is sent as is
    assert result.desired[Group.ADDRESS] == {
        "line1": "Unter den Linden 1",
        "city": "Berlin",
        "postalCode": "10117",
        "country": "DEU",
    }
    assert result.problems == {}


def test_unknown_state_for_usa_is_invalid() -> None:
    # Given a US address whose state is no US state
    result = plan({**US_ADDRESS, ContactField.STATE: "Narnia"})

    # Then the address is rejected as invalid and the state is blamed
    assert Group.ADDRESS not in result.desired
    assert result.problems[Group.ADDRESS].invalid
    assert ContactField.STATE in result.invalid_fields
    assert "Narnia" not in result.invalid_fields[ContactField.STATE]


def test_unknown_state_where_none_is_required_is_dropped() -> None:
    # Given a German address with a state pycountry does not know
    result = plan({**DE_ADDRESS, ContactField.STATE: "Narnia"})

    # Then the address is sent without the state
    assert "state" not in result.desired[Group.ADDRESS]
    assert result.invalid_fields == {}


def test_unknown_country_is_invalid() -> None:
    result = plan({**US_ADDRESS, ContactField.COUNTRY: "Narnia"})
    assert Group.ADDRESS not in result.desired
    assert result.problems[Group.ADDRESS].invalid
    assert ContactField.COUNTRY in result.invalid_fields


def test_address_part_alone_lists_every_missing_part() -> None:
    result = plan({ContactField.CITY: "Chicago"})
    assert result.problems[Group.ADDRESS].missing == ("line1", "postalCode", "country")


def test_mobile_phone_is_preferred_over_phone() -> None:
    result = plan({ContactField.PHONE: "(312) 555-0123", ContactField.MOBILE_PHONE: "(312) 555-0199"})
    assert result.desired[Group.PHONE] == "+13125550199"
    assert result.problems == {}


def test_invalid_mobile_falls_back_to_phone_and_is_reported() -> None:
    # Given an invalid mobile number next to a valid main number
    result = plan({ContactField.PHONE: "(312) 555-0123", ContactField.MOBILE_PHONE: "12"})

    # Then the main number is sent, and the mobile is reported invalid
    assert result.desired[Group.PHONE] == "+13125550123"
    assert ContactField.MOBILE_PHONE in result.invalid_fields
    assert Group.PHONE not in result.problems


def test_only_invalid_phones_are_an_invalid_problem() -> None:
    result = plan({ContactField.PHONE: "12"})
    assert Group.PHONE not in result.desired
    assert result.problems[Group.PHONE].invalid


def test_cleared_phones_are_missing() -> None:
    result = plan({ContactField.PHONE: None, ContactField.MOBILE_PHONE: None})
    assert result.problems[Group.PHONE].missing == ("phone",)


def test_cleared_email_is_missing_not_sent() -> None:
    # Given the email cleared in the CRM
    result = plan({ContactField.EMAIL: None})

    # Then nothing is sent for it, and it is reported missing (Sphere keeps its value)
    assert Group.EMAIL not in result.desired
    assert result.problems[Group.EMAIL].missing == ("email",)
    assert not result.problems[Group.EMAIL].invalid


def test_invalid_email_is_an_invalid_problem() -> None:
    result = plan({ContactField.EMAIL: "jane@"})
    assert result.problems[Group.EMAIL].invalid
    assert ContactField.EMAIL in result.invalid_fields


def test_email_is_normalized_in_the_plan() -> None:
    assert plan({ContactField.EMAIL: "Jane@Example.COM"}).desired[Group.EMAIL] == "Jane@example.com"


@pytest.mark.parametrize("raw", ["cus_123", "customer_ABC", "customer_", "customer_a-b"])
def test_invalid_customer_id_is_not_used(raw: str) -> None:
    # Given a customer id not of Sphere's form
    result = plan({ContactField.CUSTOMER_ID: raw, ContactField.EMAIL: "jane@example.com"})

    # Then there is no customer to update, and the id is the named problem
    assert result.customer_id is None
    assert result.customer_id_problem is not None
    assert "does not match" in result.customer_id_problem
    assert result.desired == {Group.EMAIL: "jane@example.com"}


def test_untouched_groups_have_neither_value_nor_problem() -> None:
    result = plan({ContactField.CUSTOMER_ID: CUSTOMER_ID})
    assert result.desired == {}
    assert result.problems == {}


# --- Plan.changes_since ------------------------------------------------------------------------


def snapshot(customer_id: str, **values: Any) -> dict[str, str]:
    """What the contact's state keeps of the values Sphere accepted: their digests, for one customer."""
    return {"customerId": customer_id, **{name: digest(value) for name, value in values.items()}}


def test_changes_since_sends_only_groups_that_differ() -> None:
    # Given a plan for email and phone, and Sphere already holding that email for this customer
    result = plan(
        {
            ContactField.CUSTOMER_ID: CUSTOMER_ID,
            ContactField.EMAIL: "jane@example.com",
            ContactField.PHONE: "(312) 555-0123",
        }
    )
    applied = snapshot(CUSTOMER_ID, email="jane@example.com", phone="+13125550000")

    # When the body is computed
    body = result.changes_since(applied)

    # Then only the phone goes
    assert body == {"phone": "+13125550123"}


def test_changes_since_sends_nothing_when_sphere_has_everything() -> None:
    result = plan({ContactField.CUSTOMER_ID: CUSTOMER_ID, ContactField.EMAIL: "jane@example.com"})
    assert result.changes_since(snapshot(CUSTOMER_ID, email="jane@example.com")) == {}


def test_changes_since_sends_everything_when_applied_was_for_another_customer() -> None:
    # Given what was applied belongs to another Sphere customer (the contact was re-linked)
    result = plan({ContactField.CUSTOMER_ID: CUSTOMER_ID, ContactField.EMAIL: "jane@example.com", **DE_ADDRESS})
    applied = snapshot("customer_other1", email="jane@example.com", address=result.desired[Group.ADDRESS])

    # Then everything desired is sent
    assert result.changes_since(applied) == {
        "email": "jane@example.com",
        "address": result.desired[Group.ADDRESS],
    }


def test_changes_since_compares_the_whole_address() -> None:
    result = plan({ContactField.CUSTOMER_ID: CUSTOMER_ID, **US_ADDRESS})
    old_address = {**result.desired[Group.ADDRESS], "line2": "Apt 3"}
    assert result.changes_since(snapshot(CUSTOMER_ID, address=old_address)) == {
        "address": result.desired[Group.ADDRESS]
    }
