"""Pipedrive source: HTTP Basic checks, the company allow-list, and v1/v2 person events read into field changes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from devstack.vendors.pipedrive import CUSTOMER_ID_FIELD, basic_auth, load_jsonc, v2_event
from webhook_adapter.errors import CredentialsError, ForbiddenSender, InvalidPayload, UnsupportedMediaType
from webhook_adapter.model import ContactField, SourceEvent, Status
from webhook_adapter.sources.base import MAX_VALUE_CHARS, WebhookRequest
from webhook_adapter.sources.pipedrive import PipedriveConfig, PipedriveSource, build

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipedrive"
NOW = 1_700_000_000.0
COMPANY = 1234567890
"""The company of Pipedrive's v1 sample (anonymised by Pipedream)."""
OTHER_COMPANY = 5550001
CREDENTIALS = "sphere:pipedrive-test-password-4f1a"
ROTATED = "sphere:pipedrive-rotated-password-8c2d"
EVENT_ID = "6f1a3d2e-58c4-4b7e-9a10-2f3c4d5e6f70"
PLANTED = "planted-9d3e1-value"
"""A recognisable value that must never come back in an error message."""
CUSTOMER = "customer_0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def source(**config: Any) -> PipedriveSource:
    settings = {"secret_id": "x", "company_ids": f"{COMPANY},{OTHER_COMPANY}", "customer_id_field": CUSTOMER_ID_FIELD}
    return PipedriveSource(PipedriveConfig(**(settings | config)))


def v1_sample() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "v1-updated-person.json").read_text(encoding="utf-8"))
    return document


def request(
    body: bytes | dict[str, Any] | list[Any],
    *,
    authorization: str | None = None,
    content_type: str | None = "application/json",
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {} if content_type is None else {"content-type": content_type}
    if authorization is not None:
        headers["authorization"] = authorization
    return WebhookRequest(source="pipedrive", method="POST", url="u", headers=headers, body=raw, received_at=NOW)


def person_change(data: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """A v2 ``change.person`` event of the sample's company about person 11."""
    arguments: dict[str, Any] = {
        "entity_id": 11,
        "event_id": EVENT_ID,
        "timestamp": "2025-03-17T10:00:00.000Z",
        "data": {"id": 11, **data},
        "previous": {},
        "company_id": COMPANY,
    }
    return v2_event(**(arguments | meta))


def parse_one(document: dict[str, Any], **config: Any) -> SourceEvent:
    [event] = source(**config).parse(request(document))
    return event


def assert_invalid(body: bytes | dict[str, Any] | list[Any], *, names: str | None = None) -> None:
    with pytest.raises(InvalidPayload) as caught:
        source().parse(request(body))
    assert PLANTED not in str(caught.value)
    if names is not None:
        assert names in caught.value.message


# --- vendor samples ----------------------------------------------------------------------------


def test_v1_updated_person_sample_clears_the_empty_email_phone_and_address() -> None:
    # Given Pipedrive's v1 "updated.person" sample: empty primary email and phone, every address part null
    body = (FIXTURES / "v1-updated-person.json").read_bytes()

    # When parsed
    [event] = source().parse(request(body))

    # Then it is the company's person 11 at the event's time, each mapped field it holds cleared, none other
    assert event.contact_id == f"{COMPANY}:11"
    assert event.kind == "updated.person"
    assert event.occurred_at == 1739827618595  # timestamp_micro: finer than timestamp's 1739827618 s
    assert event.changes == {
        ContactField.EMAIL: None,
        ContactField.PHONE: None,
        ContactField.LINE1: None,
        ContactField.LINE2: None,
        ContactField.CITY: None,
        ContactField.STATE: None,
        ContactField.POSTAL_CODE: None,
        ContactField.COUNTRY: None,
    }
    assert event.settled is None
    assert event.key.startswith("v1:")
    assert event.event_id == event.key


def test_v2_format_doc_sample_is_read_after_its_comments_and_placeholders_are_stripped() -> None:
    # Given Pipedrive's v2 format example as documented (a comment, prose placeholders, a deal, text ids)
    text = (FIXTURES / "v2-format-doc.jsonc").read_text(encoding="utf-8")
    assert "//" in text
    document = load_jsonc(text)
    document["meta"].update(company_id=str(COMPANY), entity_id="77")

    # When parsed
    [event] = source().parse(request(document))

    # Then the deal creation is acknowledged and ignored, named by its event id, timed by its ISO timestamp
    assert event.settled is Status.IGNORED
    assert event.key == event.event_id == "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    assert event.contact_id == f"{COMPANY}:77"
    assert event.kind == "create.deal"
    assert event.occurred_at == 1_672_531_200_000
    assert event.changes == {}


def test_v2_format_doc_sample_of_a_person_is_read_from_data() -> None:
    # Given the v2 example's meta about a person change, data in v2's person shape
    document = person_change(
        {
            "emails": [{"value": "old@example.com", "primary": False}, {"value": " ada@example.com ", "primary": True}],
            "phones": [{"value": "+1 312 555 0142", "primary": False, "label": "mobile"}],
            "custom_fields": {CUSTOMER_ID_FIELD: CUSTOMER},
            "postal_address_street_number": "233",
            "postal_address_route": "S Wacker Dr",
            "postal_address_subpremise": None,
            "postal_address_locality": "Chicago",
            "postal_address_admin_area_level_1": "IL",
            "postal_address_postal_code": "60606",
            "postal_address_country": "United States",
        }
    )

    # When parsed
    event = parse_one(document)

    # Then the primary email (else the first phone), the customer id and the address parts are its changes
    assert event.key == EVENT_ID
    assert event.kind == "change.person"
    assert event.changes == {
        ContactField.EMAIL: "ada@example.com",
        ContactField.PHONE: "+1 312 555 0142",
        ContactField.CUSTOMER_ID: CUSTOMER,
        ContactField.LINE1: "233 S Wacker Dr",
        ContactField.LINE2: None,
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60606",
        ContactField.COUNTRY: "United States",
    }


# --- fields: present, absent, cleared ----------------------------------------------------------


def test_a_field_absent_from_the_person_is_not_a_change() -> None:
    # Given a person holding only an email
    event = parse_one(person_change({"emails": [{"value": "ada@example.com", "primary": True}]}))

    # Then only the email changes
    assert event.changes == {ContactField.EMAIL: "ada@example.com"}


@pytest.mark.parametrize("emails", [[], None, [{"value": "", "primary": True}], [{"value": "  ", "primary": True}]])
def test_an_empty_list_or_value_means_the_field_was_cleared(emails: Any) -> None:
    # Given a person whose emails were removed
    event = parse_one(person_change({"emails": emails}))

    # Then the email is cleared
    assert event.changes == {ContactField.EMAIL: None}


def test_v1_lists_are_read_from_email_and_phone_and_the_customer_id_from_the_top_level() -> None:
    # Given the v1 sample with an email, two phones (the second primary) and the customer id field set
    document = v1_sample()
    document["current"].update(
        email=[{"value": "ada@example.com", "primary": True, "label": "work"}],
        phone=[{"value": "111", "primary": False}, {"value": 3125550142, "primary": True}],
        **{CUSTOMER_ID_FIELD: CUSTOMER},
    )

    # When parsed
    event = parse_one(document)

    # Then the primary values and the customer id are read (a number as text)
    assert event.changes[ContactField.EMAIL] == "ada@example.com"
    assert event.changes[ContactField.PHONE] == "3125550142"
    assert event.changes[ContactField.CUSTOMER_ID] == CUSTOMER


def test_a_v2_customer_id_may_sit_at_the_top_level_or_as_a_value_object() -> None:
    # Given two v2 persons: the custom field at the top level, and as {"value": ...} under custom_fields
    top = parse_one(person_change({CUSTOMER_ID_FIELD: CUSTOMER}))
    nested = parse_one(person_change({"custom_fields": {CUSTOMER_ID_FIELD: {"value": CUSTOMER}}}))

    # Then both are read
    assert top.changes == nested.changes == {ContactField.CUSTOMER_ID: CUSTOMER}


def test_another_custom_field_is_not_the_customer_id() -> None:
    # Given a person with another custom field only
    event = parse_one(person_change({"custom_fields": {"0" * 40: CUSTOMER}, "name": "Ada"}))

    # Then nothing is mapped: acknowledged and ignored
    assert event.settled is Status.IGNORED
    assert event.reason == "no mapped field in the person"


def test_street_number_and_route_join_into_line1_and_either_alone_is_line1() -> None:
    # Given persons with both parts, the route alone, the number alone
    both = parse_one(person_change({"postal_address_street_number": 10, "postal_address_route": "Downing Street"}))
    route = parse_one(person_change({"postal_address_route": "Downing Street"}))
    number = parse_one(person_change({"postal_address_street_number": "10", "postal_address_route": None}))

    # Then line1 is what is known
    assert both.changes == {ContactField.LINE1: "10 Downing Street"}
    assert route.changes == {ContactField.LINE1: "Downing Street"}
    assert number.changes == {ContactField.LINE1: "10"}


def test_the_whole_address_is_line1_only_when_no_component_has_a_value_and_the_reason_says_so() -> None:
    # Given the v1 sample where Google found no components but the address text is set
    document = v1_sample()
    document["current"]["postal_address"] = "Somewhere unmapped 5"
    document["current"]["postal_address_formatted_address"] = "Somewhere unmapped 5, Narnia"

    # When parsed
    event = parse_one(document)

    # Then the formatted address is line1, the empty components stay cleared, and the reason notes the fallback
    assert event.changes[ContactField.LINE1] == "Somewhere unmapped 5, Narnia"
    assert event.changes[ContactField.CITY] is None
    assert event.reason is not None
    assert "no components" in event.reason
    assert "postal_address_formatted_address" in event.reason
    assert "Narnia" not in event.reason


def test_the_address_text_itself_is_the_fallback_without_a_formatted_address() -> None:
    # Given a person with only the address text
    event = parse_one(person_change({"postal_address": " 1 Main St "}))

    # Then it is line1, and the reason names where it came from
    assert event.changes == {ContactField.LINE1: "1 Main St"}
    assert event.reason == "the address has no components: line1 is Pipedrive's whole address (postal_address)"


def test_components_win_over_the_whole_address() -> None:
    # Given the address text and one component
    event = parse_one(
        person_change({"postal_address": "1 Main St, Springfield", "postal_address_locality": "Springfield"})
    )

    # Then only the component is read, and there is no note
    assert event.changes == {ContactField.CITY: "Springfield"}
    assert event.reason is None


def test_a_postal_address_object_is_read_by_its_components() -> None:
    # Given a v2 person whose postal_address is an object of components (the v2 API's shape; unconfirmed in webhooks)
    address = {"value": "1 Main St, Springfield", "route": "Main St", "street_number": "1", "locality": "Springfield"}
    event = parse_one(person_change({"postal_address": address}))

    # Then its components are read
    assert event.changes == {ContactField.LINE1: "1 Main St", ContactField.CITY: "Springfield"}


def test_a_cleared_address_clears_its_present_parts() -> None:
    # Given a person whose address was removed (text and components null)
    event = parse_one(person_change({"postal_address": None, "postal_address_locality": None}))

    # Then the address parts present are cleared, without a note
    assert event.changes == {ContactField.LINE1: None, ContactField.CITY: None}
    assert event.reason is None


def test_a_value_over_the_cap_is_refused_for_its_field_and_the_others_go_on() -> None:
    # Given a person with an over-long city and a good email
    city = PLANTED + "x" * MAX_VALUE_CHARS
    event = parse_one(person_change({"postal_address_locality": city, "emails": [{"value": "a@example.com"}]}))

    # Then the city is refused (named as Pipedrive calls it, without its value) and the email goes on
    assert event.changes == {ContactField.EMAIL: "a@example.com"}
    assert event.refused == {ContactField.CITY: f"postal_address_locality is longer than {MAX_VALUE_CHARS} characters"}
    assert event.settled is None
    assert event.reason == event.refused[ContactField.CITY]


def test_a_person_whose_only_mapped_value_is_over_the_cap_is_rejected() -> None:
    # Given a person with only an over-long email
    event = parse_one(person_change({"emails": [{"value": PLANTED * 100, "primary": True}]}))

    # Then it is settled rejected and carries no change
    assert event.settled is Status.REJECTED
    assert event.changes == {}
    assert event.refused == {ContactField.EMAIL: f"emails is longer than {MAX_VALUE_CHARS} characters"}


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"emails": PLANTED}, "emails must be a list"),
        ({"phones": [PLANTED]}, "phones must be a list"),
        ({"emails": [{"value": {"x": PLANTED}}]}, "emails.value must be text"),
        ({"postal_address_locality": [PLANTED]}, "postal_address_locality must be text"),
        ({"custom_fields": {CUSTOMER_ID_FIELD: [PLANTED]}}, f"custom_fields.{CUSTOMER_ID_FIELD} must be text"),
    ],
)
def test_a_mapped_field_of_the_wrong_type_is_invalid_without_its_value(data: dict[str, Any], names: str) -> None:
    # Given a person whose mapped field has the wrong type, When parsed, Then it is invalid, naming the field
    assert_invalid(person_change(data), names=names)


def test_an_unusable_value_in_a_mapped_field_is_invalid_and_elsewhere_left_alone() -> None:
    # Given a person with a repeated key in a field the adapter does not read, and one with it in the email
    elsewhere = json.dumps(person_change({"name": "Ada", "emails": []})).replace('"name": ', '"name": 1, "name": ')
    assert elsewhere.count('"name"') == 2
    body = json.dumps(person_change({"emails": [{"value": "a@example.com"}]})).replace(
        '"value": "a@example.com"', '"value": "a@example.com", "value": "b@example.com"'
    )

    # Then the first is read, the second is invalid, naming the field
    assert source().parse(request(elsewhere.encode()))[0].changes == {ContactField.EMAIL: None}
    assert_invalid(body.encode(), names="emails.value holds a key that appears twice")


# --- events, identity and time -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "action"),
    [("deal", "change"), ("organization", "create"), ("activity", "change"), ("person", "delete")],
)
def test_other_entities_and_deletions_are_ignored(entity: str, action: str) -> None:
    # Given an event about another entity, or a person's deletion (v2: data null, previous the last state)
    document = person_change({}, entity=entity, action=action)
    if action == "delete":
        document["data"], document["previous"] = None, {"id": 11, "emails": [{"value": "a@example.com"}]}

    # When parsed
    event = parse_one(document)

    # Then it is acknowledged and ignored, with why
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.reason == f"{action}.{entity} events carry no person to deliver"


@pytest.mark.parametrize("action", ["deleted", "merged"])
def test_v1_deletions_and_merges_are_ignored(action: str) -> None:
    # Given the v1 sample as a deletion or a merge
    document = v1_sample()
    document["meta"]["action"] = action

    # Then it is ignored
    assert parse_one(document).settled is Status.IGNORED


def test_v1_added_person_is_delivered() -> None:
    # Given the v1 sample as a creation
    document = v1_sample()
    document["meta"]["action"], document["event"] = "added", "added.person"

    # Then its fields are changes
    event = parse_one(document)
    assert event.settled is None
    assert event.kind == "added.person"


def test_an_ignored_event_without_a_readable_id_is_filed_under_an_unknown_entity() -> None:
    # Given a deal event without ids
    document = person_change({}, entity="deal", action="create")
    document["data"] = None
    del document["meta"]["entity_id"]

    # Then it is still acknowledged
    event = parse_one(document)
    assert event.contact_id == f"{COMPANY}:unknown"
    assert event.settled is Status.IGNORED


def test_a_person_event_without_an_id_is_invalid() -> None:
    # Given a person change naming no person
    document = person_change({})
    document["data"].pop("id")
    del document["meta"]["entity_id"]

    # Then it is invalid
    assert_invalid(document, names="no person id")


def test_a_v2_event_is_keyed_by_its_event_id_across_attempts() -> None:
    # Given the same v2 event on its first and second attempt
    first = person_change({"emails": []})
    second = json.loads(json.dumps(first))
    second["meta"]["attempt"] = 2

    # Then both have the event id as key
    assert parse_one(first).key == parse_one(second).key == EVENT_ID


def test_a_v1_retry_has_the_same_key_and_another_change_another_one() -> None:
    # Given the v1 sample, its retry (retry counter up, keys reordered), and a later change of the same person
    first = v1_sample()
    retry = dict(reversed(list({**first, "retry": 1}.items())))
    later = v1_sample()
    later["meta"]["timestamp_micro"] += 5_000_000

    # Then the retry is a duplicate of the first, the later change is new
    assert parse_one(first).key == parse_one(retry).key
    assert parse_one(later).key != parse_one(first).key


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1739827618, 1_739_827_618_000),
        ("1739827618", 1_739_827_618_000),
        (1739827618.25, 1_739_827_618_250),
        (1739827618123, 1_739_827_618_123),
        ("2025-02-17T21:26:58.123Z", 1_739_827_618_123),
        ("2025-02-17T22:26:58+01:00", 1_739_827_618_000),
    ],
)
def test_timestamps_in_epoch_seconds_or_iso_are_read_as_epoch_ms(timestamp: Any, expected: int) -> None:
    # Given a v2 event timed in any accepted form
    event = parse_one(person_change({}, timestamp=timestamp))

    # Then its time is epoch milliseconds
    assert event.occurred_at == expected


@pytest.mark.parametrize("timestamp", ["yesterday", "2025-02-17T21:26:58", -1, 10**15, True, None, "1e3"])
def test_a_timestamp_of_no_accepted_form_is_invalid(timestamp: Any) -> None:
    # Given a v2 event with a bad time, When parsed, Then it is invalid, naming meta.timestamp
    assert_invalid(person_change({}, timestamp=timestamp), names="timestamp")


def test_v1_timestamp_without_microseconds_is_seconds() -> None:
    # Given the v1 sample without timestamp_micro
    document = v1_sample()
    del document["meta"]["timestamp_micro"]

    # Then meta.timestamp (seconds) is the time
    assert parse_one(document).occurred_at == 1_739_827_618_000


# --- the company allow-list and malformed bodies -----------------------------------------------


@pytest.mark.parametrize("company", [OTHER_COMPANY, str(OTHER_COMPANY)])
def test_an_allowed_company_as_number_or_text_is_read(company: int | str) -> None:
    # Given the second allowed company, as v1 (a number) and v2's example (text) send it
    event = parse_one(person_change({}, company_id=company))

    # Then its person is filed under it
    assert event.contact_id == f"{OTHER_COMPANY}:11"


def test_a_foreign_company_is_forbidden_before_the_rest_of_the_body_is_read() -> None:
    # Given an event of a company not in the allow-list, with an otherwise broken meta
    document = person_change({}, company_id=42)
    document["meta"]["timestamp"] = PLANTED

    # When parsed, Then it is forbidden (403), not invalid
    with pytest.raises(ForbiddenSender) as caught:
        source().parse(request(document))
    assert PLANTED not in str(caught.value)


@pytest.mark.parametrize("company", [None, "", "12a", PLANTED, True, 1.5, [COMPANY]])
def test_a_missing_or_unreadable_company_is_invalid(company: Any) -> None:
    # Given an event whose company cannot be read
    document = person_change({})
    document["meta"]["company_id"] = company

    # Then it is invalid
    assert_invalid(document, names="meta.company_id")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[]", "must be a JSON object"),
        (b'{"data": {}}', "meta must be an object"),
        (json.dumps({"meta": PLANTED}).encode(), "meta must be an object"),
    ],
)
def test_a_body_that_is_no_pipedrive_event_is_invalid(body: bytes, names: str) -> None:
    # When parsed, Then it is invalid and says why
    assert_invalid(body, names=names)


def test_a_v2_event_without_its_id_or_action_is_invalid() -> None:
    # Given v2 events without meta.id, and without meta.action
    no_id, no_action = person_change({}), person_change({})
    del no_id["meta"]["id"], no_action["meta"]["action"]

    # Then each is invalid, naming what is missing
    assert_invalid(no_id, names="meta.id")
    assert_invalid(no_action, names="action")


@pytest.mark.parametrize("data", [None, [], PLANTED])
def test_a_person_change_whose_data_is_not_an_object_is_invalid(data: Any) -> None:
    # Given a person change whose data is not the person
    document = person_change({})
    document["data"] = data

    # Then it is invalid (a person id in meta is not enough to deliver anything)
    assert_invalid(document, names="data must be the person object")


# --- HTTP Basic authentication -----------------------------------------------------------------


def test_verify_accepts_the_configured_credentials() -> None:
    # Given a request with the webhook's HTTP Basic credentials, When verified, Then it passes
    source().verify(request(b"{}", authorization=basic_auth(CREDENTIALS)), [CREDENTIALS])


def test_verify_accepts_either_credential_during_a_rotation_and_a_lower_case_scheme() -> None:
    # Given both credentials configured, and a request with the rotated one
    header = "basic " + base64.b64encode(ROTATED.encode()).decode()

    # When verified, Then it passes
    source().verify(request(b"{}", authorization=header), [CREDENTIALS, ROTATED])


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "missing HTTP Basic user:password"),
        ("", "missing HTTP Basic user:password"),
        (basic_auth("sphere:wrong"), "HTTP Basic user:password does not match"),
        (basic_auth(CREDENTIALS + " "), "HTTP Basic user:password does not match"),
        (basic_auth(CREDENTIALS.split(":")[1]), "HTTP Basic user:password does not match"),
        ("Bearer " + CREDENTIALS, "Authorization must use the Basic scheme"),
        (CREDENTIALS, "Authorization must use the Basic scheme"),
        ("Basic not*base64", "not base64 of user:password"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "not base64 of user:password"),
    ],
)
def test_verify_refuses_missing_wrong_or_malformed_credentials(authorization: str | None, message: str) -> None:
    # When verified, Then it is refused (401) with a message naming the cause, never the credentials
    with pytest.raises(CredentialsError) as caught:
        source().verify(request(b"{}", authorization=authorization), [CREDENTIALS])
    assert message in caught.value.message
    assert "pipedrive-test-password" not in str(caught.value)


@pytest.mark.parametrize("secrets", [[], [""]])
def test_verify_fails_closed_without_configured_credentials(secrets: list[str]) -> None:
    # When no credential is configured, Then even a request without credentials is refused
    with pytest.raises(CredentialsError):
        source().verify(request(b"{}", authorization=basic_auth(":")), secrets)


# --- media type, answers, configuration --------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_only_json_is_accepted(content_type: str | None) -> None:
    # When checked, Then anything but JSON is refused (415)
    source().check_media_type(request(b"{}", content_type="application/json; charset=utf-8"))
    with pytest.raises(UnsupportedMediaType):
        source().check_media_type(request(b"{}", content_type=content_type))


def test_a_401_answer_asks_for_basic_credentials_and_others_are_plain_json() -> None:
    # When answers are rendered
    refused = source().answer(401, {"error": {"code": "invalid_credentials", "message": "m"}})
    accepted = source().answer(202, {"accepted": ["e"], "duplicates": []})

    # Then both are JSON; the 401 carries the challenge
    assert refused.headers == {"WWW-Authenticate": 'Basic realm="pipedrive"'}
    assert json.loads(refused.body) == {"error": {"code": "invalid_credentials", "message": "m"}}
    assert accepted.headers == {}
    assert accepted.content_type == "application/json"
    assert json.loads(accepted.body) == {"accepted": ["e"], "duplicates": []}


def test_config_reads_company_ids_and_the_customer_id_field() -> None:
    # Given the settings as the template passes them
    config = PipedriveConfig(secret_id="arn", company_ids=" 12, 34 ", customer_id_field=CUSTOMER_ID_FIELD)

    # Then the companies are numbers
    assert config.company_ids == frozenset({12, 34})


@pytest.mark.parametrize(
    "settings",
    [
        {"company_ids": ""},
        {"company_ids": "12,abc"},
        {"company_ids": "12,,34"},
        {"customer_id_field": ""},
        {"customer_id_field": "sphere_customer_id"},
        {"customer_id_field": CUSTOMER_ID_FIELD.upper()},
        {"secret_id": ""},
    ],
)
def test_config_refuses_missing_or_malformed_settings(settings: dict[str, str]) -> None:
    # Given a setting missing or malformed, When the config is built, Then it is refused
    values = {"secret_id": "arn", "company_ids": "12", "customer_id_field": CUSTOMER_ID_FIELD} | settings
    with pytest.raises(ValidationError):
        PipedriveConfig(**values)


def test_build_reads_the_pipedrive_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the receive function's PIPEDRIVE_* variables
    monkeypatch.setenv("PIPEDRIVE_SECRET_ID", "arn:secret")
    monkeypatch.setenv("PIPEDRIVE_COMPANY_IDS", "12")
    monkeypatch.setenv("PIPEDRIVE_CUSTOMER_ID_FIELD", CUSTOMER_ID_FIELD)

    # When built, Then the source reads them

    built = build()
    assert built.secret_id == "arn:secret"
    assert built.config.company_ids == frozenset({12})
