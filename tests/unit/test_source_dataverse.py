"""Dataverse source: the key (header or ``?code=``), the media type, and reading a ``RemoteExecutionContext``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from webhook_adapter.errors import CredentialsError, InvalidPayload, UnsupportedMediaType
from webhook_adapter.model import ContactField, SourceEvent, Status
from webhook_adapter.sources.base import MAX_VALUE_CHARS, WebhookRequest
from webhook_adapter.sources.dataverse import DataverseConfig, DataverseSource, build, wcf_date_ms

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dataverse"
URL = "https://hooks.example.test/webhooks/dataverse"
NOW = 1_700_000_000.0
KEY = "dataverse-test-webhook-key-3f9a"
OTHER_KEY = "dataverse-rotated-webhook-key-7c21"
COLUMN = "cr123_spherecustomerid"
ORGANIZATION = "4ef5b371-e89e-e711-8122-000d3aa2331c"
CONTACT = "6d81597f-0f9f-e711-8122-000d3aa2331c"
CORRELATION = "b374239d-4233-41a9-8b17-a86cb4f737b5"
OPERATION = "4af10637-4ea2-e711-8122-000d3aa2331c"
REQUEST = "9a7f1c2e-5b3d-4e6f-8a9b-0c1d2e3f4a5b"
CREATED_ON_MS = 1_506_409_448_000
PLANTED = "planted-5d2e9-value"
"""A recognisable value that must never come back in an error message."""


def load_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def source(column: str = COLUMN) -> DataverseSource:
    return DataverseSource(DataverseConfig(secret_id="x", customer_id_column=column))


def entity(attributes: dict[str, Any], logical_name: str | None = "contact") -> dict[str, Any]:
    return {
        "Attributes": [{"key": key, "value": value} for key, value in attributes.items()],
        "Id": CONTACT,
        "LogicalName": logical_name,
    }


def context(
    written: dict[str, Any] | None = None, *, image: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """A contact Update of an asynchronous step, as Microsoft's sample shapes it, with test values."""
    document: dict[str, Any] = {
        "CorrelationId": CORRELATION,
        "InputParameters": [{"key": "Target", "value": entity(written or {})}],
        "MessageName": "Update",
        "Mode": 1,
        "OperationCreatedOn": f"/Date({CREATED_ON_MS}-0700)/",
        "OperationId": OPERATION,
        "OrganizationId": ORGANIZATION,
        "PostEntityImages": [] if image is None else [{"key": "PostImage", "value": entity(image)}],
        "PrimaryEntityId": CONTACT,
        "PrimaryEntityName": "contact",
        "RequestId": None,
        "Stage": 40,
    }
    document.update(overrides)
    return document


def request(
    body: bytes | dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    query: str = "",
    content_type: str | None = "application/json",
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {} if content_type is None else {"content-type": content_type}
    all_headers.update(headers or {})
    url = URL + (f"?{query}" if query else "")
    return WebhookRequest(source="dataverse", method="POST", url=url, headers=all_headers, body=raw, received_at=NOW)


def parse_one(body: bytes | dict[str, Any], *, headers: dict[str, str] | None = None) -> SourceEvent:
    events = source().parse(request(body, headers=headers))
    assert len(events) == 1
    return events[0]


def assert_invalid(body: bytes | dict[str, Any], *, names: str | None = None) -> InvalidPayload:
    with pytest.raises(InvalidPayload) as caught:
        source().parse(request(body))
    assert PLANTED not in caught.value.message
    assert PLANTED not in str(caught.value)
    assert caught.value.status_code == 400
    if names is not None:
        assert names in caught.value.message
    return caught.value


# --- vendor samples ----------------------------------------------------------------------------


def test_the_documented_sample_updates_no_mapped_column_and_is_ignored() -> None:
    # Given Microsoft's documented sample: an Update of firstname (Target) with the automatic primary-name image
    body = load_fixture("contact-update.json")

    # When parsed
    event = parse_one(body)

    # Then it is one event about the contact, keyed by the system job, settled ignored with nothing to deliver
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.reason == "no mapped column in the Target or post-image"
    assert event.kind == "contact.Update"
    assert event.contact_id == f"{ORGANIZATION}:{CONTACT}"
    assert event.event_id == OPERATION
    assert event.key == f"{CORRELATION}:Update:{CONTACT}:{OPERATION}"
    assert event.occurred_at == CREATED_ON_MS


def test_the_sample_with_its_post_image_carries_every_mapped_column() -> None:
    # Given the documented sample with the mapped columns written and the registered post-image
    body = load_fixture("contact-update-address.json")

    # When parsed
    event = parse_one(body)

    # Then the image gives the full values, the Target's written null clears the mobile phone
    assert event.settled is None
    assert event.changes == {
        ContactField.LINE1: "233 S Wacker Dr",
        ContactField.LINE2: "Suite 3100",
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60606",
        ContactField.COUNTRY: "United States",
        ContactField.PHONE: "+1 312 555 0142",
        ContactField.MOBILE_PHONE: None,
        ContactField.EMAIL: "james.glynn@example.com",
        ContactField.CUSTOMER_ID: "customer_5a3c0e0d1f2b4c6d8e9f0a1b2c3d4e5f",
    }
    assert event.refused == {}
    assert event.reason is None
    assert event.event_id == OPERATION
    assert event.occurred_at == CREATED_ON_MS


# --- Target and post-image ------------------------------------------------------------------------


def test_target_values_win_over_the_post_image() -> None:
    # Given a post-image and a Target that disagree on the city
    event = parse_one(context({"address1_city": "Evanston"}, image={"address1_city": "Chicago", "telephone1": "1"}))

    # Then the written value wins, the image fills what was not written
    assert event.changes == {ContactField.CITY: "Evanston", ContactField.PHONE: "1"}


def test_a_column_written_null_is_cleared_and_an_absent_one_is_unknown() -> None:
    # Given a Target that clears the email, an image without it, and no other mapped column anywhere
    event = parse_one(context({"emailaddress1": None, "firstname": "Ada"}, image={"fullname": "Ada Lovelace"}))

    # Then the email is cleared and nothing else is claimed
    assert event.changes == {ContactField.EMAIL: None}
    assert event.settled is None


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_column_is_cleared(value: str) -> None:
    assert parse_one(context({"address1_postalcode": value})).changes == {ContactField.POSTAL_CODE: None}


def test_values_are_trimmed() -> None:
    assert parse_one(context({"address1_city": "  Chicago \n"})).changes == {ContactField.CITY: "Chicago"}


def test_an_update_without_a_post_image_carries_only_the_written_columns() -> None:
    event = parse_one(context({"telephone1": "+1 312 555 0100"}))
    assert event.changes == {ContactField.PHONE: "+1 312 555 0100"}


@pytest.mark.parametrize(
    ("columns", "line2"),
    [
        ({"address1_line2": "Suite 3100", "address1_line3": "Floor 31"}, "Suite 3100, Floor 31"),
        ({"address1_line2": "Suite 3100"}, "Suite 3100"),
        ({"address1_line3": "Floor 31"}, "Floor 31"),
        ({"address1_line2": None, "address1_line3": "Floor 31"}, "Floor 31"),
        ({"address1_line2": " ", "address1_line3": None}, None),
        ({"address1_line2": None, "address1_line3": None}, None),
    ],
)
def test_address_lines_2_and_3_make_line2(columns: dict[str, Any], line2: str | None) -> None:
    # Given lines 2 and 3 as Dataverse has them
    event = parse_one(context(columns))

    # Then line2 is the non-empty ones joined with ", ", or cleared when both are empty
    assert event.changes == {ContactField.LINE2: line2}


def test_neither_line_2_nor_3_leaves_line2_unknown() -> None:
    assert ContactField.LINE2 not in parse_one(context({"address1_line1": "1 Main St"})).changes


def test_line_3_in_the_target_joins_line_2_from_the_image() -> None:
    event = parse_one(context({"address1_line3": "Floor 31"}, image={"address1_line2": "Suite 3100"}))
    assert event.changes == {ContactField.LINE2: "Suite 3100, Floor 31"}


def test_the_customer_id_column_is_configurable() -> None:
    # Given the Sphere id in another custom column, and a value in the default one
    body = context({"new_sphereid": "customer_abc123", COLUMN: "customer_def456"})

    # When parsed with that column configured
    [event] = source("new_sphereid").parse(request(body))

    # Then that column is the customer id and the other is not mapped
    assert event.changes == {ContactField.CUSTOMER_ID: "customer_abc123"}


def test_images_of_another_entity_are_left_alone() -> None:
    # Given an image of another entity (a related record registered by mistake) beside the contact's
    document = context({"address1_city": "Chicago"})
    document["PostEntityImages"] = [{"key": "Account", "value": entity({"telephone1": "1"}, "account")}]

    # Then only the contact's columns count
    assert parse_one(document).changes == {ContactField.CITY: "Chicago"}


def test_a_create_is_read_like_an_update() -> None:
    event = parse_one(context({"emailaddress1": "ada@example.com"}, MessageName="Create"))
    assert event.changes == {ContactField.EMAIL: "ada@example.com"}
    assert event.kind == "contact.Create"


# --- typed values and the length cap --------------------------------------------------------------


TYPED = "an object (an OptionSetValue, EntityReference or other typed value)"


@pytest.mark.parametrize(
    ("value", "described"),
    [
        ({"__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts", "Value": 1}, TYPED),
        ({"__type": "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts", "Id": CONTACT}, TYPED),
        (60606, "a number"),
        (True, "a boolean"),
        ([PLANTED], "a list"),
    ],
    ids=["OptionSetValue", "EntityReference", "number", "boolean", "list"],
)
def test_a_mapped_column_that_is_not_text_is_refused_for_its_field(value: Any, described: str) -> None:
    # Given a typed value in a mapped column beside a good one
    event = parse_one(context({"address1_country": value, "address1_city": "Chicago"}))

    # Then that field is refused, saying what it was but not what it held, and the other field goes on
    assert event.settled is None
    assert event.changes == {ContactField.CITY: "Chicago"}
    assert event.refused == {ContactField.COUNTRY: f"address1_country is not text: Dataverse sent {described}"}
    assert event.reason == event.refused[ContactField.COUNTRY]
    assert PLANTED not in event.reason


def test_an_event_whose_only_mapped_column_is_refused_is_rejected() -> None:
    value = {"__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts", "Value": 1}
    event = parse_one(context({"address1_stateorprovince": value}))
    assert event.settled is Status.REJECTED
    assert event.changes == {}
    assert set(event.refused) == {ContactField.STATE}


def test_a_value_over_the_cap_is_refused_for_its_field() -> None:
    # Given a 1,025-character city and a 1,024-character postal code
    one_over = PLANTED + "x" * (MAX_VALUE_CHARS - len(PLANTED) + 1)
    event = parse_one(context({"address1_city": one_over, "address1_postalcode": "9" * MAX_VALUE_CHARS}))

    # Then the city is refused without its value and the postal code goes on
    assert event.refused == {ContactField.CITY: f"address1_city is longer than {MAX_VALUE_CHARS} characters"}
    assert event.changes == {ContactField.POSTAL_CODE: "9" * MAX_VALUE_CHARS}


def test_line2_over_the_cap_names_both_columns() -> None:
    half = "x" * (MAX_VALUE_CHARS // 2)
    event = parse_one(context({"address1_line2": half, "address1_line3": half}))
    assert event.settled is Status.REJECTED
    assert event.refused == {
        ContactField.LINE2: f"address1_line2 + address1_line3 is longer than {MAX_VALUE_CHARS} characters"
    }


def test_an_unusable_value_in_a_mapped_column_is_refused_for_its_field() -> None:
    # Given an email holding a lone surrogate (JSON can write it, nothing downstream can carry it)
    body = json.dumps(context({"emailaddress1": "__raw__", "address1_city": "Chicago"}))
    body = body.replace('"__raw__"', f'"{PLANTED}\\ud800"')

    # Then the email is refused for it and the city goes on
    event = parse_one(body.encode())
    assert event.changes == {ContactField.CITY: "Chicago"}
    assert event.refused[ContactField.EMAIL].startswith("emailaddress1 is not text: Dataverse sent text with a lone")


def test_an_unusable_value_in_a_column_the_adapter_does_not_read_is_left_alone() -> None:
    body = json.dumps(context({"description": "__raw__", "address1_city": "Chicago"}))
    event = parse_one(body.replace('"__raw__"', "1e400").encode())
    assert event.changes == {ContactField.CITY: "Chicago"}


# --- other messages and entities ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "entity_name"),
    [("Delete", "contact"), ("Assign", "contact"), ("SetState", "contact"), ("Update", "account"), ("Create", "lead")],
)
def test_other_messages_and_entities_are_ignored(message: str, entity_name: str) -> None:
    # Given a step on another message or entity (a Delete's Target is an EntityReference, not an entity)
    document = context(MessageName=message, PrimaryEntityName=entity_name)
    document["InputParameters"] = [{"key": "Target", "value": {"Id": CONTACT, "LogicalName": entity_name}}]

    # Then it is acknowledged and ignored, naming what it was
    event = parse_one(document)
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.kind == f"{entity_name}.{message}"
    assert event.reason == f"{entity_name}.{message} carries no contact fields"


def test_a_context_over_the_size_limit_is_incomplete() -> None:
    # Given a contact Update that Dataverse stripped of its Target and images (over 256 KB)
    document = context(InputParameters=[], PostEntityImages=[])

    # When parsed with Dataverse's header
    event = parse_one(document, headers={"x-ms-dynamics-msg-size-exceeded": "true"})

    # Then it is recorded incomplete, with why, and nothing to deliver
    assert event.settled is Status.INCOMPLETE
    assert event.changes == {}
    assert event.reason is not None
    assert "256 KB" in event.reason


@pytest.mark.parametrize("stripped", [None, "absent"])
def test_a_context_stripped_to_null_or_without_the_lists_is_still_read(stripped: str | None) -> None:
    # Given a stripped context whose InputParameters and images are null, or left out
    document = context()
    for key in ("InputParameters", "PostEntityImages"):
        if stripped is None:
            document[key] = None
        else:
            del document[key]

    # Then with the size header it is incomplete, and without it a contact Update missing its Target is invalid
    event = parse_one(document, headers={"x-ms-dynamics-msg-size-exceeded": "true"})
    assert event.settled is Status.INCOMPLETE
    assert_invalid(document, names="one Target entity")


def test_the_longest_message_and_entity_names_fit_the_kind() -> None:
    event = parse_one(context(MessageName="M" * 63, PrimaryEntityName="e" * 63))
    assert event.kind == f"{'e' * 63}.{'M' * 63}"
    assert_invalid(context(MessageName="M" * 64), names="MessageName")


def test_the_size_header_on_another_entity_is_still_only_ignored() -> None:
    event = parse_one(context(PrimaryEntityName="account"), headers={"x-ms-dynamics-msg-size-exceeded": "true"})
    assert event.settled is Status.IGNORED


# --- identity and time ----------------------------------------------------------------------------


def test_a_request_id_is_the_event_id_and_the_key() -> None:
    # Given a context with a RequestId (synchronous steps carry one)
    event = parse_one(context({"address1_city": "Chicago"}, RequestId=REQUEST))

    # Then it names the event and, with the message and record, keys it
    assert event.event_id == REQUEST
    assert event.key == f"{REQUEST}:Update:{CONTACT}"


def test_a_retry_of_the_same_delivery_has_the_same_key() -> None:
    # Given a delivery and Dataverse's retry of it (same context, keys reordered, another body)
    first = context({"address1_city": "Chicago"})
    retry = dict(reversed(list(first.items())))

    # Then both have one key
    assert parse_one(first).key == parse_one(retry).key


def test_two_operations_of_one_correlation_have_two_keys() -> None:
    # Given two system jobs of one user action (a plug-in updating the contact again): one CorrelationId
    first = parse_one(context({"address1_city": "Chicago"}))
    second = parse_one(context({"address1_city": "Evanston"}, OperationId="5bf10637-4ea2-e711-8122-000d3aa2331c"))

    # Then they are two events
    assert first.key != second.key
    assert second.event_id == "5bf10637-4ea2-e711-8122-000d3aa2331c"


def test_without_an_operation_id_the_correlation_id_names_the_event() -> None:
    event = parse_one(context({"address1_city": "Chicago"}, OperationId=None))
    assert event.event_id == CORRELATION
    assert event.key == f"{CORRELATION}:Update:{CONTACT}"


def test_ids_are_read_in_lower_case() -> None:
    event = parse_one(context(PrimaryEntityId=CONTACT.upper(), OrganizationId=ORGANIZATION.upper()))
    assert event.contact_id == f"{ORGANIZATION}:{CONTACT}"


@pytest.mark.parametrize(
    ("created_on", "epoch_ms"),
    [
        ("/Date(1506409448000)/", 1_506_409_448_000),
        ("/Date(1506409448000-0700)/", 1_506_409_448_000),
        ("/Date(1506409448000+0000)/", 1_506_409_448_000),
        ("/Date(1506409448000+0530)/", 1_506_409_448_000),
        ("/Date(0)/", 0),
    ],
)
def test_operation_created_on_is_read_in_utc_milliseconds_whatever_the_offset(created_on: str, epoch_ms: int) -> None:
    # Given OperationCreatedOn as WCF writes it (the offset names the sender's zone; the number is UTC)
    # Then occurred_at is that number
    assert parse_one(context(OperationCreatedOn=created_on)).occurred_at == epoch_ms
    assert wcf_date_ms(created_on) == epoch_ms


def test_escaped_slashes_of_the_wcf_date_are_read() -> None:
    body = json.dumps(context()).replace(f"/Date({CREATED_ON_MS}-0700)/", f"\\/Date({CREATED_ON_MS}-0700)\\/")
    assert "\\/Date" in body
    assert parse_one(body.encode()).occurred_at == CREATED_ON_MS


@pytest.mark.parametrize(
    "created_on",
    [
        "2017-09-26T06:04:08Z",
        1_506_409_448_000,
        "/Date(-1000)/",
        "/Date(100000000000000)/",
        "/Date(1506409448000-07)/",
        f"/Date({PLANTED})/",
        "Date(1506409448000)",
        None,
    ],
)
def test_another_operation_created_on_is_invalid(created_on: Any) -> None:
    assert_invalid(context(OperationCreatedOn=created_on), names="OperationCreatedOn")


def test_a_missing_operation_created_on_is_invalid() -> None:
    document = context()
    del document["OperationCreatedOn"]
    assert_invalid(document, names="OperationCreatedOn: Field required")


# --- invalid payloads ---------------------------------------------------------------------------


def without(document: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in document.items() if name != key}


INVALID: dict[str, tuple[bytes | dict[str, Any], str]] = {
    "not JSON": (b'{"MessageName": "Update", "PrimaryEntityId": "' + PLANTED.encode(), "not valid JSON"),
    "a JSON array": (json.dumps([context()]).encode(), "JSON object"),
    "empty": (b"", "empty"),
    "no MessageName": (without(context(), "MessageName"), "MessageName"),
    "MessageName not a name": (context(MessageName=f"Update {PLANTED}"), "MessageName"),
    "PrimaryEntityId not a GUID": (context(PrimaryEntityId=PLANTED), "PrimaryEntityId: Value error, must be a GUID"),
    "OrganizationId missing": (without(context(), "OrganizationId"), "OrganizationId"),
    "RequestId not a GUID": (context(RequestId=PLANTED), "RequestId"),
    "neither RequestId nor CorrelationId": (context(CorrelationId=None), "RequestId or CorrelationId"),
    "no Target": (context(InputParameters=[]), "one Target entity"),
    "two Targets": (
        context(InputParameters=[{"key": "Target", "value": entity({})}, {"key": "Target", "value": entity({})}]),
        "one Target entity",
    ),
    "InputParameters not a list": (context(InputParameters={"Target": PLANTED}), "InputParameters"),
    "Target without Attributes": (
        context(InputParameters=[{"key": "Target", "value": {"LogicalName": "contact"}}]),
        "InputParameters.Target: Attributes: Field required",
    ),
    "Target of another entity": (
        context(InputParameters=[{"key": "Target", "value": entity({}, "account")}]),
        "not a contact",
    ),
    "a column twice in the Target": (
        context(
            InputParameters=[
                {
                    "key": "Target",
                    "value": {
                        "Attributes": [
                            {"key": "address1_city", "value": "Chicago"},
                            {"key": "address1_city", "value": PLANTED},
                        ]
                    },
                }
            ]
        ),
        "holds a column twice",
    ),
    "an image that is not an entity": (
        context(PostEntityImages=[{"key": "PostImage", "value": PLANTED}]),
        "PostEntity",
    ),
    "an attribute without a key": (
        context(InputParameters=[{"key": "Target", "value": {"Attributes": [{"value": PLANTED}]}}]),
        "key: Field required",
    ),
}


@pytest.mark.parametrize(("body", "names"), INVALID.values(), ids=INVALID.keys())
def test_a_body_that_is_not_a_usable_context_is_invalid(body: bytes | dict[str, Any], names: str) -> None:
    assert_invalid(body, names=names)


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("MessageName", '"Update\\ud800"'),
        ("PrimaryEntityId", "1" * 100),
        ("OperationCreatedOn", '"/Date(1)/\\uffff"'),
        ("PrimaryEntityName", '"contact\\ud800"'),
    ],
)
def test_an_unusable_value_in_a_field_the_adapter_reads_is_invalid(field: str, raw: str) -> None:
    # Given a context field holding what JSON can write but nothing downstream can carry
    overrides: dict[str, Any] = {field: "__raw__"}
    body = json.dumps(context(**overrides)).replace('"__raw__"', raw).encode()

    # Then the request is refused naming the field and the problem
    error = assert_invalid(body, names=field)
    assert "surrogate" in error.message or "digits" in error.message or "noncharacter" in error.message


def test_deeply_nested_body_is_invalid() -> None:
    nested: Any = PLANTED
    for _ in range(40):
        nested = [nested]
    assert_invalid(context(SharedVariables=nested), names="nested deeper than 32")


# --- verify -------------------------------------------------------------------------------------


def verify(*, headers: dict[str, str] | None = None, query: str = "", secrets: list[str] | None = None) -> None:
    source().verify(request(context(), headers=headers, query=query), [KEY] if secrets is None else secrets)


def test_the_key_in_the_x_api_key_header_is_accepted() -> None:
    verify(headers={"x-api-key": KEY})


def test_the_key_in_the_code_query_parameter_is_accepted() -> None:
    verify(query=f"code={KEY}")


def test_a_percent_encoded_code_is_decoded_and_a_plus_stays_a_plus() -> None:
    # Given keys with characters a URL may encode: "/" and "=" escaped, "+" sent as is
    verify(query="code=a%2Fb%3Dc", secrets=["a/b=c"])
    verify(query="other=1&code=a+b", secrets=["a+b"])


def test_either_configured_key_is_accepted() -> None:
    verify(headers={"x-api-key": OTHER_KEY}, secrets=[KEY, OTHER_KEY])
    verify(query=f"code={OTHER_KEY}", secrets=[KEY, OTHER_KEY])


def test_blanks_around_the_header_key_are_ignored() -> None:
    verify(headers={"x-api-key": f" {KEY} "})


REFUSED: dict[str, tuple[dict[str, str], str, str]] = {
    "wrong header key": ({"x-api-key": "not-the-key"}, "", "x-api-key header does not match"),
    "wrong code": ({}, "code=not-the-key", "code query parameter does not match"),
    "no key": ({}, "", "missing x-api-key header or code query parameter"),
    "empty header": ({"x-api-key": ""}, "", "missing x-api-key header"),
    "empty code": ({}, "code=", "missing code query parameter"),
    "the key under another header": ({"x-functions-key": KEY}, "", "missing x-api-key header or code"),
    "the key in another query parameter": ({}, f"key={KEY}", "missing x-api-key header or code"),
    "code twice": ({}, f"code={KEY}&code=other", "code query parameter is given more than once"),
    "a wrong header beside a right code": ({"x-api-key": "not-the-key"}, f"code={KEY}", "x-api-key header does not"),
}


@pytest.mark.parametrize(("headers", "query", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_a_request_without_the_key_is_refused(headers: dict[str, str], query: str, message: str) -> None:
    # Given a request whose header or query does not carry a configured key
    # When verified, Then it is refused as not authentic (401), never repeating a key
    with pytest.raises(CredentialsError) as caught:
        verify(headers=headers, query=query)
    assert caught.value.status_code == 401
    assert caught.value.message.startswith(message)
    assert KEY not in caught.value.message


@pytest.mark.parametrize("secrets", [[], [""]])
def test_verify_fails_closed_without_a_configured_key(secrets: list[str]) -> None:
    with pytest.raises(CredentialsError, match="no credential is configured"):
        verify(headers={"x-api-key": ""}, query="code=", secrets=secrets)


# --- media type and answers -----------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_is_accepted(content_type: str) -> None:
    source().check_media_type(request(b"{}", content_type=content_type))


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "", None])
def test_another_or_no_content_type_is_refused(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        source().check_media_type(request(b"{}", content_type=content_type))
    assert caught.value.status_code == 415


def test_answers_are_json() -> None:
    # Given a receipt and an error
    receipt = source().answer(202, {"accepted": [OPERATION], "duplicates": []})
    error = source().answer(401, {"error": {"code": "invalid_credentials", "message": "missing x-api-key header"}})

    # Then both are JSON with their status (Dataverse reads any 2xx as delivered)
    assert (receipt.status, receipt.content_type, json.loads(receipt.body)["accepted"]) == (
        202,
        "application/json",
        [OPERATION],
    )
    assert (error.status, json.loads(error.body)["error"]["code"]) == (401, "invalid_credentials")


# --- configuration ------------------------------------------------------------------------------


def test_build_reads_the_dataverse_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the template's variables
    monkeypatch.setenv("DATAVERSE_SECRET_ID", "arn:aws:secretsmanager:us-east-1:123456789012:secret:dv-AbCdEf")
    monkeypatch.setenv("DATAVERSE_CUSTOMER_ID_COLUMN", "new_sphereid")

    # Then the source reads them
    built = build()
    assert built.secret_id == "arn:aws:secretsmanager:us-east-1:123456789012:secret:dv-AbCdEf"
    assert built.config.customer_id_column == "new_sphereid"
    assert built.name == "dataverse"


@pytest.mark.parametrize(
    "column", ["", "spherecustomerid", "cr123_Sphere", "cr123_sphere id", "address1_line1", "address1_line3"]
)
def test_the_customer_id_column_must_be_a_custom_column_of_its_own(column: str) -> None:
    with pytest.raises(ValidationError, match="customer_id_column"):
        DataverseConfig(secret_id="x", customer_id_column=column)


def test_the_customer_id_column_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAVERSE_SECRET_ID", "x")
    monkeypatch.delenv("DATAVERSE_CUSTOMER_ID_COLUMN", raising=False)
    with pytest.raises(ValidationError, match="customer_id_column"):
        build()
