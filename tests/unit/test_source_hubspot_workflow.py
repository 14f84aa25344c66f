"""HubSpot workflow source: the one record a "Send a webhook" action posts, its signature or API key, its answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from webhook_adapter.errors import CredentialsError, InvalidPayload, SignatureError, UnsupportedMediaType
from webhook_adapter.model import ContactField, SourceEvent, Status
from webhook_adapter.signatures import sign_hubspot_v3
from webhook_adapter.sources.base import MAX_VALUE_CHARS, WebhookRequest
from webhook_adapter.sources.hubspot_workflow import HubSpotWorkflowConfig, HubSpotWorkflowSource, build

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot-workflow"
NOW = 1_700_000_000.0
NOW_MS = 1_700_000_000_000
URL = "https://hooks.example.test/webhooks/hubspot-workflow"
SECRET = "hubspot-test-client-secret-5e1f"
OTHER_SECRET = "hubspot-rotated-client-secret-9b0c"
API_KEY = "workflow-api-key-0d7c"
PLANTED = "planted-8c1e5-value"
"""A recognisable value that must never come back in an error message."""


def load_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def source(**config: Any) -> HubSpotWorkflowSource:
    return HubSpotWorkflowSource(HubSpotWorkflowConfig(secret_id="x", **config))


def record(**properties: Any) -> dict[str, Any]:
    """A contact in the objects-API shape with the given properties."""
    return {
        "id": "51",
        "properties": {"hs_object_id": "51", "lastmodifieddate": "2023-11-14T22:13:10.000Z", **properties},
        "createdAt": "2023-01-02T03:04:05.000Z",
        "updatedAt": "2023-11-14T22:13:10.000Z",
        "archived": False,
    }


def request(
    body: bytes | dict[str, Any] | list[Any], *, headers: dict[str, str] | None = None, url: str = URL
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"content-type": "application/json", **(headers or {})}
    return WebhookRequest(
        source="hubspot-workflow", method="POST", url=url, headers=all_headers, body=raw, received_at=NOW
    )


def parse(body: bytes | dict[str, Any] | list[Any], **config: Any) -> SourceEvent:
    [event] = source(**config).parse(request(body))
    return event


def v3_headers(body: bytes, *, secret: str = SECRET, timestamp: str = str(NOW_MS), url: str = URL) -> dict[str, str]:
    signature = sign_hubspot_v3(secret=secret, method="POST", uri=url, body=body, timestamp=timestamp)
    return {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": timestamp}


def assert_invalid(body: bytes | dict[str, Any] | list[Any], *, names: str | None = None) -> None:
    with pytest.raises(InvalidPayload) as caught:
        source().parse(request(body))
    assert PLANTED not in str(caught.value)
    if names is not None:
        assert names in caught.value.message


# --- the sample built from the objects API's documented shape ---------------------------------


def test_objects_api_contact_sample_becomes_one_change_of_its_mapped_properties() -> None:
    # Given the contact as the CRM objects API documents it, posted by a workflow
    body = load_fixture("contact-objects-api.json")

    # When parsed
    [event] = source().parse(request(body))

    # Then its email, phone and address are changes; its id is the contact; lastmodifieddate orders it
    assert event.settled is None
    assert event.changes == {
        ContactField.EMAIL: "bcooper@biglytics.net",
        ContactField.PHONE: "(877) 929-0687",
        ContactField.LINE1: "25 First Street",
        ContactField.CITY: "Cambridge",
        ContactField.STATE: "MA",
        ContactField.POSTAL_CODE: "02139",
        ContactField.COUNTRY: "United States",
    }
    assert event.contact_id == "512"
    assert event.occurred_at == 1_575_737_406_678
    assert event.event_id == "512@2019-12-07T16:50:06.678Z"
    assert event.kind == "contact"


def test_the_older_contact_shape_with_value_objects_vid_and_portal_id_is_read() -> None:
    # Given the older contact form: {"value": ...} properties, vid and portal-id, times as epoch ms strings
    body = {
        "vid": 951,
        "portal-id": 62515,
        "properties": {
            "email": {"value": "jane@example.com", "versions": []},
            "zip": {"value": "60601"},
            "sphere_customer_id": {"value": "customer_abc123"},
            "lastmodifieddate": {"value": "1699999990000"},
        },
    }

    # When parsed
    event = parse(body)

    # Then the values are read from their objects and the contact is qualified by its portal
    assert event.changes == {
        ContactField.EMAIL: "jane@example.com",
        ContactField.POSTAL_CODE: "60601",
        ContactField.CUSTOMER_ID: "customer_abc123",
    }
    assert event.contact_id == "62515:951"
    assert event.occurred_at == 1_699_999_990_000


@pytest.mark.parametrize(
    ("identity", "contact_id"),
    [
        ({"id": "51"}, "51"),
        ({"objectId": 51}, "51"),
        ({"id": "51", "portalId": 62515}, "62515:51"),
        ({"vid": 51, "portal-id": 62515}, "62515:51"),
    ],
)
def test_the_contact_is_the_record_id_qualified_by_the_portal_when_the_body_has_one(
    identity: dict[str, Any], contact_id: str
) -> None:
    # Given a record identified in one of the accepted ways
    event = parse({**identity, "properties": {"email": "jane@example.com"}})

    # Then the contact id is the record id, with the portal in front when the body names it
    assert event.contact_id == contact_id


# --- values --------------------------------------------------------------------------------------


def test_every_default_property_and_the_customer_id_are_mapped() -> None:
    # Given a record with every mapped property
    properties = {
        "email": "jane@example.com",
        "phone": "(312) 555-0123",
        "mobilephone": "+1 312 555 0199",
        "address": "1 Main St",
        "city": "Chicago",
        "state": "IL",
        "zip": 60601,
        "country": "United States",
        "sphere_customer_id": "customer_abc123",
        "firstname": "Jane",
    }

    # When parsed
    event = parse(record(**properties))

    # Then each becomes its field, numbers as text, unmapped properties left out
    assert event.changes == {
        ContactField.EMAIL: "jane@example.com",
        ContactField.PHONE: "(312) 555-0123",
        ContactField.MOBILE_PHONE: "+1 312 555 0199",
        ContactField.LINE1: "1 Main St",
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60601",
        ContactField.COUNTRY: "United States",
        ContactField.CUSTOMER_ID: "customer_abc123",
    }


@pytest.mark.parametrize("empty", [None, "", "   ", {"value": None}, {"value": ""}])
def test_a_property_present_but_empty_is_cleared_and_an_absent_one_is_left_alone(empty: Any) -> None:
    # Given a record whose phone is empty and whose city is not sent at all
    event = parse(record(email="jane@example.com", phone=empty))

    # Then the phone is cleared and the city is not a change
    assert event.changes == {ContactField.EMAIL: "jane@example.com", ContactField.PHONE: None}
    assert ContactField.CITY not in event.changes


def test_a_record_without_a_mapped_property_is_ignored() -> None:
    # Given a record carrying only properties the adapter does not map
    event = parse(record(firstname="Jane", lifecyclestage="customer"))

    # Then it is acknowledged and ignored
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.reason == "no mapped property in the record"


def test_an_archived_record_is_ignored() -> None:
    # Given an archived (deleted) contact
    event = parse({**record(email="jane@example.com"), "archived": True})

    # Then nothing is delivered
    assert event.settled is Status.IGNORED
    assert event.changes == {}


def test_custom_field_map_and_customer_id_property_are_honoured() -> None:
    # Given a portal that keeps the Sphere id in "sphere_id" and maps "home_phone" to phone
    event = parse(
        record(sphere_id="customer_abc123", home_phone="555"),
        customer_id_property="sphere_id",
        field_map='{"home_phone": "phone"}',
    )

    # Then both are read
    assert event.changes == {ContactField.CUSTOMER_ID: "customer_abc123", ContactField.PHONE: "555"}


def test_a_value_over_the_cap_is_refused_for_its_field_and_the_others_go_on() -> None:
    # Given a city of 1,025 characters beside a valid email
    event = parse(record(email="jane@example.com", city=PLANTED + "x" * MAX_VALUE_CHARS))

    # Then the email goes on, the city is refused with a reason that does not repeat it
    assert event.settled is None
    assert event.changes == {ContactField.EMAIL: "jane@example.com"}
    assert event.refused == {ContactField.CITY: f"city is longer than {MAX_VALUE_CHARS} characters"}
    assert event.reason is not None
    assert PLANTED not in event.reason


def test_a_record_whose_only_mapped_value_is_over_the_cap_is_rejected() -> None:
    # Given a record whose one mapped property is too long
    event = parse(record(email="x" * (MAX_VALUE_CHARS + 1)))

    # Then it is settled rejected with the field named
    assert event.settled is Status.REJECTED
    assert event.refused == {ContactField.EMAIL: f"email is longer than {MAX_VALUE_CHARS} characters"}


# --- identity and order --------------------------------------------------------------------------


def test_a_retry_of_the_same_record_has_the_same_key_however_it_is_serialized() -> None:
    # Given one record, and its retry serialized with another key order and spacing
    document = record(email="jane@example.com")
    first = json.dumps(document).encode()
    retry = json.dumps(dict(reversed(list(document.items()))), indent=2).encode()

    # When both are parsed
    [one], [two] = source().parse(request(first)), source().parse(request(retry))

    # Then they share key and event id
    assert one.key == two.key
    assert one.event_id == two.event_id
    assert one.key.startswith("51:")


def test_another_change_of_the_record_has_another_key() -> None:
    # Given the record before and after an email change
    before = parse(record(email="jane@example.com"))
    after = parse(record(email="jane.doe@example.com"))

    # Then they are two events
    assert before.key != after.key


@pytest.mark.parametrize(
    ("properties", "updated_at", "expected"),
    [
        ({"lastmodifieddate": "2023-11-14T22:13:10.123Z"}, None, 1_699_999_990_123),
        ({"lastmodifieddate": "2023-11-14T23:13:10.123+01:00"}, None, 1_699_999_990_123),
        ({"lastmodifieddate": 1_699_999_990_123}, None, 1_699_999_990_123),
        ({"lastmodifieddate": "1699999990123"}, None, 1_699_999_990_123),
        ({"lastmodifieddate": {"value": "1699999990123"}}, None, 1_699_999_990_123),
        ({"hs_lastmodifieddate": "2023-11-14T22:13:10.123Z"}, None, 1_699_999_990_123),
        ({}, "2023-11-14T22:13:10.123Z", 1_699_999_990_123),
        ({}, 1_699_999_990_123, 1_699_999_990_123),
        ({"lastmodifieddate": "2023-11-14T22:13:10.123Z"}, "2020-01-01T00:00:00Z", 1_699_999_990_123),
        ({"lastmodifieddate": None}, None, NOW_MS),
        ({}, None, NOW_MS),
    ],
)
def test_the_change_time_is_the_last_modified_date_then_updated_at_then_the_arrival(
    properties: dict[str, Any], updated_at: Any, expected: int
) -> None:
    # Given a record whose change time is given (or not) in one of the accepted forms
    body = {"id": "51", "properties": {"email": "jane@example.com", **properties}}
    if updated_at is not None:
        body["updatedAt"] = updated_at

    # Then it orders the change
    assert parse(body).occurred_at == expected


def test_without_a_change_time_the_event_id_is_readable_and_stable() -> None:
    # Given a record without any time
    body = {"id": "51", "properties": {"email": "jane@example.com"}}

    # Then its event id names the record and a digest of the body, the same on a retry
    assert parse(body).event_id == parse(body).event_id
    assert parse(body).event_id.startswith("51@")


@pytest.mark.parametrize("value", ["yesterday", "2023-11-14T22:13:10", -1, True, [1], "1" * 40, 10**15])
def test_a_change_time_that_is_not_a_time_is_an_invalid_payload(value: Any) -> None:
    # Given a last-modified date of the wrong form (no zone, negative, a boolean, a list, too far)
    # Then the request is refused, naming the property
    assert_invalid(record(email="a@example.com", lastmodifieddate=value), names="properties.lastmodifieddate")


# --- malformed bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        ({"properties": {"email": "a@example.com"}}, "no id"),
        ({"id": "51"}, "properties"),
        ({"id": "51", "properties": [PLANTED]}, "properties"),
        ({"id": "51 2", "properties": {}}, "id"),
        ({"id": "51", "properties": {}, "archived": "yes"}, "archived"),
        ({"id": "51", "properties": {"email": [PLANTED]}}, "properties.email"),
        ({"id": "51", "properties": {"email": {"text": PLANTED}}}, "properties.email"),
        ({"id": "51", "properties": {"email": True}}, "properties.email"),
    ],
)
def test_a_body_that_is_not_one_readable_record_is_an_invalid_payload(body: Any, names: str) -> None:
    # Given a body that is not JSON, not one record, or whose id or mapped property has the wrong type
    # Then it is refused, naming the problem, never a value
    assert_invalid(body, names=names)


def test_a_value_that_cannot_be_carried_is_refused_only_where_it_is_read() -> None:
    # Given a lone surrogate in an unmapped property (HubSpot gets no retry after a 4xx), then in the email
    unread = b'{"id": "51", "properties": {"email": "a@example.com", "notes": "\\ud800", "n": 1' + b"9" * 80 + b"}}"
    read = b'{"id": "51", "properties": {"email": "\\ud800"}}'

    # Then the first goes on, with a key stable across retries, and the second is refused naming the property
    [event], [retry] = source().parse(request(unread)), source().parse(request(unread))
    assert event.changes == {ContactField.EMAIL: "a@example.com"}
    assert event.key == retry.key
    assert_invalid(read, names="properties.email holds text with a lone surrogate")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"id": 1' + b"0" * 80 + b', "properties": {}}', "id"),
        (b'{"id": "51", "id": "52", "properties": {}}', "id"),
        (b'{"id": "51", "properties": {"lastmodifieddate": 1' + b"0" * 80 + b"}}", "properties.lastmodifieddate"),
    ],
)
def test_an_uncarriable_id_or_time_is_an_invalid_payload(body: bytes, names: str) -> None:
    # Given a record id of 81 digits, a repeated id key, or a time of 81 digits
    # Then the request is refused, naming the key
    assert_invalid(body, names=names)


# --- authentication -------------------------------------------------------------------------------


def test_signature_mode_accepts_any_configured_client_secret() -> None:
    # Given a request signed with the rotated secret
    body = json.dumps(record(email="a@example.com")).encode()
    signed = request(body, headers=v3_headers(body, secret=OTHER_SECRET))

    # Then verification passes with both secrets configured, and fails with only the old one
    source().verify(signed, [SECRET, OTHER_SECRET])
    with pytest.raises(SignatureError, match="does not match"):
        source().verify(signed, [SECRET])


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing X-HubSpot-Signature-v3"),
        ({"x-hubspot-signature-v3": "c2ln"}, "missing X-HubSpot-Request-Timestamp"),
        ({"x-api-key": SECRET}, "missing X-HubSpot-Signature-v3"),
    ],
)
def test_signature_mode_refuses_a_request_without_a_signature(headers: dict[str, str], message: str) -> None:
    # Given no signature (an API key is not a signature)
    # Then it is refused with the cause named
    with pytest.raises(SignatureError, match=message):
        source().verify(request(record(), headers=headers), [SECRET])


def test_signature_mode_refuses_a_stale_timestamp() -> None:
    # Given a request signed six minutes ago
    body = json.dumps(record()).encode()
    stale = request(body, headers=v3_headers(body, timestamp=str(NOW_MS - 360_000)))

    # Then it is refused
    with pytest.raises(SignatureError, match="older than"):
        source().verify(stale, [SECRET])


def test_signature_mode_covers_the_query_string() -> None:
    # Given a request signed for the URL with a query, posted to that URL
    url = f"{URL}?portal=62515"
    body = json.dumps(record()).encode()

    # Then it verifies there and not on the bare URL
    source().verify(request(body, headers=v3_headers(body, url=url), url=url), [SECRET])
    with pytest.raises(SignatureError):
        source().verify(request(body, headers=v3_headers(body, url=url)), [SECRET])


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"x-api-key": API_KEY}, ""),
        ({}, f"X-Api-Key={API_KEY}"),
        ({"x-api-key": API_KEY}, "X-Api-Key=wrong"),
    ],
)
def test_api_key_mode_accepts_the_key_in_the_header_or_else_the_query(headers: dict[str, str], query: str) -> None:
    # Given the workflow's API key sent as a header or as a query parameter (the header counts first)
    url = f"{URL}?{query}" if query else URL

    # Then it is accepted, also beside a rotated key
    source(auth="api_key").verify(request(record(), headers=headers, url=url), ["old-key", API_KEY])


@pytest.mark.parametrize(
    ("headers", "query", "message"),
    [
        ({}, "", "missing X-Api-Key"),
        ({"x-api-key": "wrong"}, f"X-Api-Key={API_KEY}", "does not match"),
        ({}, "X-Api-Key=wrong", "does not match"),
        ({}, f"api_key={API_KEY}", "missing X-Api-Key"),
        ({}, f"X-Api-Key={API_KEY}&X-Api-Key=other", "more than once"),
        ({"x-hubspot-signature-v3": "c2ln", "x-hubspot-request-timestamp": str(NOW_MS)}, "", "missing X-Api-Key"),
    ],
)
def test_api_key_mode_refuses_a_missing_wrong_or_repeated_key(
    headers: dict[str, str], query: str, message: str
) -> None:
    # Given no key, a wrong one (a wrong header is not rescued by the query), another name, a repeated one,
    # or a signature instead of the key
    url = f"{URL}?{query}" if query else URL

    # Then it is refused as bad credentials, naming the cause and never the key
    with pytest.raises(CredentialsError, match=message) as caught:
        source(auth="api_key").verify(request(record(), headers=headers, url=url), [API_KEY])
    assert API_KEY not in str(caught.value)


def test_no_configured_secret_refuses_every_request() -> None:
    # Given an empty secret: both modes fail closed
    body = json.dumps(record()).encode()
    with pytest.raises(SignatureError):
        source().verify(request(body, headers=v3_headers(body)), [])
    with pytest.raises(CredentialsError):
        source(auth="api_key").verify(request(body, headers={"x-api-key": API_KEY}), [])


# --- media type, answer, settings ---------------------------------------------------------------


def test_media_type_must_be_json() -> None:
    # Given a form post
    form = WebhookRequest("hubspot-workflow", "POST", URL, {"content-type": "text/plain"}, b"{}", NOW)

    # Then it is refused; JSON with a charset is fine
    with pytest.raises(UnsupportedMediaType):
        source().check_media_type(form)
    source().check_media_type(request(record(), headers={"content-type": "application/json; charset=utf-8"}))


def test_answers_are_json() -> None:
    # Given a receipt and an error
    ok = source().answer(202, {"accepted": ["51@2023-11-14T22:13:10.000Z"], "duplicates": []})
    error = source().answer(401, {"error": {"code": "invalid_credentials", "message": "missing X-Api-Key API key"}})

    # Then both are JSON documents with their status
    assert (ok.status, ok.content_type, json.loads(ok.body)["accepted"]) == (
        202,
        "application/json",
        ["51@2023-11-14T22:13:10.000Z"],
    )
    assert (error.status, json.loads(error.body)["error"]["code"]) == (401, "invalid_credentials")


def test_settings_come_from_hubspot_workflow_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables the template sets (empty field map: HubSpot's defaults)
    monkeypatch.setenv("HUBSPOT_WORKFLOW_SECRET_ID", "arn:secret")
    monkeypatch.setenv("HUBSPOT_WORKFLOW_AUTH", "api_key")
    monkeypatch.setenv("HUBSPOT_WORKFLOW_CUSTOMER_ID_PROPERTY", "sphere_id")
    monkeypatch.setenv("HUBSPOT_WORKFLOW_FIELD_MAP", "")
    monkeypatch.setenv("HUBSPOT_SECRET_ID", "arn:another-secret")

    # When built
    built = build()

    # Then it reads its own prefix only
    assert built.secret_id == "arn:secret"
    assert built.config.auth == "api_key"
    assert built.config.customer_id_property == "sphere_id"
    assert built.config.field_map["zip"] is ContactField.POSTAL_CODE


@pytest.mark.parametrize(
    "variables",
    [{}, {"HUBSPOT_WORKFLOW_AUTH": "basic"}, {"HUBSPOT_WORKFLOW_FIELD_MAP": '{"home_phone": "fax"}'}],
)
def test_settings_without_a_secret_or_with_an_unknown_mode_or_field_are_refused(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    # Given a missing secret id, an auth mode HubSpot does not offer, or a field the adapter does not know
    if variables:
        monkeypatch.setenv("HUBSPOT_WORKFLOW_SECRET_ID", "arn:secret")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    # Then building the source fails
    with pytest.raises(ValidationError):
        build()
