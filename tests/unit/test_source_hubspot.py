"""HubSpot source: media type, signature checks through the source, and batch parsing into events."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from webhook_adapter.errors import InvalidPayload, SignatureError, UnsupportedMediaType
from webhook_adapter.model import ContactField, ReadCause, ReadMode, SourceEvent, Status
from webhook_adapter.signatures import sign_hubspot_v3
from webhook_adapter.sources.base import MAX_VALUE_CHARS, WebhookRequest
from webhook_adapter.sources.hubspot import HubSpotConfig, HubSpotSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot"
NOW = 1_700_000_000.0
NOW_MS = "1700000000000"
URL = "https://hooks.example.test/webhooks/hubspot"
SECRET = "hubspot-test-client-secret-5e1f"
OTHER_SECRET = "hubspot-rotated-client-secret-9b0c"
PORTAL = 62515
CONTACT = 51
OCCURRED_AT = 1_699_999_990_000
PLANTED = "planted-8c1e5-value"
"""A recognisable value that must never come back in an error message."""


def load_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def source(**config: Any) -> HubSpotSource:
    return HubSpotSource(HubSpotConfig(secret_id="x", **config))


def contact_event(**overrides: Any) -> dict[str, Any]:
    """One v3 contact property change, shaped like HubSpot's, with test ids."""
    event: dict[str, Any] = {
        "eventId": 100001,
        "subscriptionId": 9001,
        "portalId": PORTAL,
        "appId": 7001,
        "occurredAt": OCCURRED_AT,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": CONTACT,
        "propertyName": "email",
        "propertyValue": "jane@example.com",
        "changeSource": "CRM_UI",
        "sourceId": "userId:4001",
    }
    event.update(overrides)
    return event


def request(
    body: bytes | list[dict[str, Any]],
    *,
    headers: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {} if content_type is None else {"content-type": content_type}
    all_headers.update(headers or {})
    return WebhookRequest(source="hubspot", method="POST", url=URL, headers=all_headers, body=raw, received_at=NOW)


def v3_headers(body: bytes, *, secret: str = SECRET, timestamp: str = NOW_MS) -> dict[str, str]:
    signature = sign_hubspot_v3(secret=secret, method="POST", uri=URL, body=body, timestamp=timestamp)
    return {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": timestamp}


def v1_headers(body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    return {
        "x-hubspot-signature": hashlib.sha256(secret.encode() + body).hexdigest(),
        "x-hubspot-signature-version": "v1",
    }


def parse_one(event: dict[str, Any], **config: Any) -> SourceEvent:
    events = source(**config).parse(request([event]))
    assert len(events) == 1
    return events[0]


def assert_invalid(body: bytes, *, names: str | None = None) -> InvalidPayload:
    with pytest.raises(InvalidPayload) as caught:
        source().parse(request(body))
    message = caught.value.message
    assert PLANTED not in message
    assert PLANTED not in str(caught.value)
    if names is not None:
        assert names in message
    return caught.value


# --- vendor samples ----------------------------------------------------------------------------


def test_sensitive_property_sample_never_becomes_a_change() -> None:
    # Given HubSpot's sample of a sensitive property change (its value "REDACTED")
    body = load_fixture("propertychange-sensitive.json")

    # When parsed
    [event] = source().parse(request(body))

    # Then it is settled at receive time and carries nothing to Sphere
    assert event.changes == {}
    assert event.settled is not None
    assert event.event_id == "910001"
    assert event.contact_id == "930001:950001"


def test_redacted_value_of_a_mapped_property_is_settled_incomplete() -> None:
    # Given the sensitive sample, but on a property the adapter maps (HubSpot redacts sensitive values)
    [sample] = json.loads(load_fixture("propertychange-sensitive.json"))
    sample["propertyName"] = "phone"

    # When parsed
    event = parse_one(sample)

    # Then it is incomplete, says why, and never carries "REDACTED" as a value
    assert event.settled is Status.INCOMPLETE
    assert event.changes == {}
    assert event.reason is not None
    assert "redacted" in event.reason


def test_legacy_docs_batch_is_read_with_event_type_and_ignored() -> None:
    # Given HubSpot's old docs example (eventType instead of subscriptionType)
    body = load_fixture("legacy-docs-batch.json")

    # When parsed
    lifecycle, creation = source().parse(request(body))

    # Then both events are read, in order, and acknowledged as ignored (never a 4xx)
    assert lifecycle.kind == "contact.propertyChange"
    assert lifecycle.settled is Status.IGNORED
    assert lifecycle.changes == {}
    assert lifecycle.reason == "property lifecyclestage is not mapped"
    assert creation.kind == "contact.creation"
    assert creation.settled is Status.IGNORED
    assert creation.changes == {}
    assert creation.contact_id == "930011:950012"


# --- property changes --------------------------------------------------------------------------


def test_mapped_property_changes_become_contact_field_changes() -> None:
    # Given a batch changing every mapped property and the Sphere customer id
    values = {
        "email": ("jane@example.com", ContactField.EMAIL),
        "phone": ("(312) 555-0123", ContactField.PHONE),
        "mobilephone": ("+1 312 555 0199", ContactField.MOBILE_PHONE),
        "address": ("1 Main St", ContactField.LINE1),
        "city": ("Chicago", ContactField.CITY),
        "state": ("Illinois", ContactField.STATE),
        "zip": ("60601", ContactField.POSTAL_CODE),
        "country": ("United States", ContactField.COUNTRY),
        "sphere_customer_id": ("customer_abc123", ContactField.CUSTOMER_ID),
    }
    batch = [
        contact_event(eventId=200000 + index, propertyName=name, propertyValue=value)
        for index, (name, (value, _)) in enumerate(values.items())
    ]

    # When parsed
    events = source().parse(request(batch))

    # Then each event carries exactly its field, unsettled, in the order sent
    assert [event.changes for event in events] == [{field: value} for value, field in values.values()]
    assert all(event.settled is None for event in events)
    assert [event.event_id for event in events] == [str(200000 + index) for index in range(len(values))]


def test_event_identity_covers_portal_object_property_time_and_event_id() -> None:
    # Given one property change
    event = parse_one(contact_event(eventId=100001, propertyName="city", propertyValue="Chicago"))

    # Then its key, contact and time are HubSpot's, as the spec's dedup rule says
    assert event.key == f"{PORTAL}:{CONTACT}:city:{OCCURRED_AT}:100001"
    assert event.contact_id == f"{PORTAL}:{CONTACT}"
    assert event.event_id == "100001"
    assert event.occurred_at == OCCURRED_AT


def test_same_event_id_for_another_property_is_another_key() -> None:
    # Given HubSpot reusing an eventId for two properties of one contact
    batch = [
        contact_event(propertyName="city", propertyValue="Chicago"),
        contact_event(propertyName="zip", propertyValue="60601"),
    ]

    # When parsed
    city, postal_code = source().parse(request(batch))

    # Then the two are told apart
    assert city.key != postal_code.key


@pytest.mark.parametrize("value", ["", "   ", None])
def test_empty_value_means_the_field_was_cleared(value: str | None) -> None:
    # Given a property emptied in the CRM
    event = parse_one(contact_event(propertyName="zip", propertyValue=value))

    # Then the change says "cleared"
    assert event.changes == {ContactField.POSTAL_CODE: None}
    assert event.settled is None


def test_values_are_trimmed_and_numbers_read_as_text() -> None:
    # Given a value with surrounding spaces, and one sent as a JSON number
    batch = [
        contact_event(eventId=1, propertyName="city", propertyValue="  Chicago "),
        contact_event(eventId=2, propertyName="zip", propertyValue=60601),
    ]

    # When parsed
    city, postal_code = source().parse(request(batch))

    # Then both are clean text
    assert city.changes == {ContactField.CITY: "Chicago"}
    assert postal_code.changes == {ContactField.POSTAL_CODE: "60601"}


def test_a_value_over_the_cap_is_rejected_for_its_field_and_never_becomes_a_change() -> None:
    # Given a mapped property changed to 1,025 characters, and one to 900 KB (it once poisoned a contact's item)
    one_over = PLANTED + "x" * (MAX_VALUE_CHARS - len(PLANTED) + 1)
    batch = [
        contact_event(eventId=1, propertyName="city", propertyValue=one_over),
        contact_event(eventId=2, propertyName="email", propertyValue=PLANTED * 50_000),
    ]

    # When parsed
    events = source().parse(request(batch))

    # Then each event is settled rejected for its field, says why without the value, and carries no change
    for event, field, name in zip(events, (ContactField.CITY, ContactField.EMAIL), ("city", "email"), strict=True):
        assert event.settled is Status.REJECTED
        assert event.changes == {}
        assert event.reason == f"{name} is longer than {MAX_VALUE_CHARS} characters"
        assert event.refused == {field: event.reason}
        assert event.key.startswith(f"{PORTAL}:{CONTACT}:{name}:")


def test_a_value_at_the_cap_is_a_change_and_surrounding_blanks_do_not_count() -> None:
    # Given a value of exactly the cap, padded with blanks HubSpot's UI may keep
    value = "x" * MAX_VALUE_CHARS
    event = parse_one(contact_event(propertyName="city", propertyValue=f"  {value}\n"))

    # Then it is an ordinary change
    assert event.settled is None
    assert event.changes == {ContactField.CITY: value}
    assert event.refused == {}


def test_a_value_over_the_cap_of_an_unmapped_property_is_only_ignored() -> None:
    # Given a huge value of a property the adapter does not map
    event = parse_one(contact_event(propertyName="notes", propertyValue="x" * 100_000))

    # Then it is ignored like any unmapped property (the value never leaves the source)
    assert event.settled is Status.IGNORED
    assert event.refused == {}


def test_generic_object_property_change_of_a_contact_is_a_change() -> None:
    # Given the 2024 generic form for a contact (objectTypeId 0-1)
    event = parse_one(contact_event(subscriptionType="object.propertyChange", objectTypeId="0-1", propertyName="email"))

    # Then it is read like contact.propertyChange
    assert event.changes == {ContactField.EMAIL: "jane@example.com"}
    assert event.settled is None


def test_generic_object_property_change_of_a_company_is_ignored() -> None:
    # Given the generic form for a company (objectTypeId 0-2) with a property named like a contact's
    event = parse_one(contact_event(subscriptionType="object.propertyChange", objectTypeId="0-2", propertyName="email"))

    # Then it is acknowledged and ignored
    assert event.settled is Status.IGNORED
    assert event.changes == {}


@pytest.mark.parametrize("kind", ["contact.creation", "contact.deletion", "contact.merge", "company.propertyChange"])
def test_other_event_types_are_ignored(kind: str) -> None:
    # Given an event that is not a contact property change
    event = parse_one(contact_event(subscriptionType=kind))

    # Then it is ignored, never a change
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.kind == kind


def test_unmapped_property_is_ignored() -> None:
    # Given a change of a property the adapter does not map
    event = parse_one(contact_event(propertyName="firstname", propertyValue="Jane"))

    # Then it is ignored with the reason, never a change
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.reason == "property firstname is not mapped"


def test_field_map_from_a_json_setting_maps_a_custom_property() -> None:
    # Given a field map set as JSON text (as HUBSPOT_FIELD_MAP arrives from the environment)
    config = {"field_map": '{"home_phone":"phone"}'}

    # When a change of that property is parsed
    event = parse_one(contact_event(propertyName="home_phone", propertyValue="(312) 555-0123"), **config)

    # Then it feeds the mapped field
    assert event.changes == {ContactField.PHONE: "(312) 555-0123"}


def test_field_map_setting_refuses_an_unknown_contact_field() -> None:
    # Given a field map naming a field the adapter does not know
    # When the config is built, Then it is refused
    with pytest.raises(ValueError, match="field_map"):
        HubSpotConfig(secret_id="x", field_map='{"home_phone":"fax"}')


def test_customer_id_property_can_be_renamed() -> None:
    # Given the portal keeps the Sphere id in another property
    batch = [
        contact_event(eventId=1, propertyName="sphere_id", propertyValue="customer_abc123"),
        contact_event(eventId=2, propertyName="sphere_customer_id", propertyValue="customer_def456"),
    ]

    # When parsed with customer_id_property set
    renamed, default = source(customer_id_property="sphere_id").parse(request(batch))

    # Then that property is the customer id and the default name is no longer mapped
    assert renamed.changes == {ContactField.CUSTOMER_ID: "customer_abc123"}
    assert default.settled is Status.IGNORED


# --- invalid payloads ---------------------------------------------------------------------------


def test_body_that_is_not_json_is_invalid() -> None:
    # Given a body that is not JSON, holding a recognisable value
    # Then it is refused without echoing it
    error = assert_invalid(f'[{{"eventId": {PLANTED}'.encode())
    assert error.status_code == 400


def test_body_that_is_not_an_array_is_invalid() -> None:
    # Given a single event instead of an array
    assert_invalid(json.dumps(contact_event(propertyValue=PLANTED)).encode(), names="JSON array")


def test_empty_array_is_invalid() -> None:
    assert_invalid(b"[]", names="1 to 100 events")


def test_empty_body_is_invalid() -> None:
    assert_invalid(b"  ", names="empty")


def test_batch_over_100_events_is_invalid() -> None:
    # Given 101 events
    batch = [contact_event(eventId=index, propertyValue=PLANTED) for index in range(101)]

    # Then the batch is refused, naming the limit
    assert_invalid(json.dumps(batch).encode(), names="got 101")


def test_batch_of_exactly_100_events_is_accepted() -> None:
    # Given 100 events
    batch = [contact_event(eventId=index) for index in range(100)]

    # Then all are read
    assert len(source().parse(request(batch))) == 100


# --- one malformed event in a batch --------------------------------------------------------------

RAW = "__raw_json__"
"""A placeholder string in an event, replaced by raw JSON text ``json.dumps`` cannot write."""


def raw_event(raw: str, **overrides: Any) -> str:
    """An event as JSON text, the ``RAW`` placeholder in ``overrides`` replaced by the raw JSON text ``raw``."""
    return json.dumps(contact_event(eventId=2, **overrides)).replace(json.dumps(RAW), raw)


def event_text(**overrides: Any) -> str:
    return json.dumps(contact_event(**{"eventId": 2, **overrides}))


def without_event_id() -> str:
    event = contact_event(propertyValue=PLANTED)
    del event["eventId"]
    return json.dumps(event)


def repeating(key: str, value: str) -> str:
    """An event object whose ``key`` appears a second time with ``value`` (raw JSON)."""
    return event_text()[:-1] + f", {json.dumps(key)}: {value}}}"


MALFORMED_EVENTS: dict[str, tuple[str, str]] = {
    "missing eventId": (without_event_id(), "eventId: Field required"),
    "occurredAt as text": (event_text(occurredAt=f"17{PLANTED}"), "occurredAt"),
    "occurredAt as numeric text": (event_text(occurredAt="1700000000000"), "occurredAt"),
    "occurredAt past year 5138": (event_text(occurredAt=10**17), "occurredAt"),
    "propertyValue an object": (event_text(propertyValue={"a": PLANTED}), "propertyValue"),
    "propertyValue a list": (event_text(propertyValue=[PLANTED]), "propertyValue"),
    "propertyValue a boolean": (event_text(propertyValue=True), "propertyValue"),
    "occurredAt of 4,301 digits": (raw_event("1" * 4301, occurredAt=RAW), "occurredAt: "),
    "propertyValue of 400 digits": (raw_event("1" * 400, propertyValue=RAW), "propertyValue: "),
    "propertyValue 1e400": (raw_event("1e400", propertyValue=RAW), "propertyValue: "),
    "propertyValue with a lone surrogate": (raw_event(f'"{PLANTED}\\ud800"', propertyValue=RAW), "propertyValue"),
    "propertyName with U+FFFF": (raw_event('"email\\uffff"', propertyName=RAW), "propertyName"),
    "objectId repeated": (repeating("objectId", "52"), "objectId"),
    "objectId with a space": (event_text(objectId="51 52"), "objectId"),
    "portalId with a control character": (event_text(portalId="62515\x00"), "portalId"),
    "eventId of 65 characters": (event_text(eventId="1" * 65), "eventId"),
    "propertyValue repeated": (repeating("propertyValue", json.dumps(PLANTED)), "propertyValue"),
    "a string, not an object": (json.dumps(PLANTED), "JSON object"),
    "a number, not an object": ("42", "JSON object"),
    "null, not an object": ("null", "JSON object"),
    "a list, not an object": (json.dumps([contact_event(eventId=2)]), "JSON object"),
    "an integer of 5,000 digits, not an object": ("9" * 5000, "JSON object"),
}
"""One malformed element of a batch, as raw JSON text, and what its refusal reason must name."""


@pytest.mark.parametrize(("element", "names"), MALFORMED_EVENTS.values(), ids=MALFORMED_EVENTS.keys())
def test_one_malformed_event_is_refused_on_its_own_and_the_rest_are_read(element: str, names: str) -> None:
    # Given a batch of three whose middle event is malformed (HubSpot retries a whole batch on any 4xx)
    first, last = contact_event(eventId=1), contact_event(eventId=3, propertyName="city", propertyValue="Chicago")
    body = f"[{json.dumps(first)}, {element}, {json.dumps(last)}]".encode()

    # When parsed
    events = source().parse(request(body))

    # Then the batch is read: the good events as usual, the bad one refused with a reason naming the problem
    assert [event.settled for event in events] == [None, Status.REFUSED, None]
    assert events[0].changes == {ContactField.EMAIL: "jane@example.com"}
    assert events[2].changes == {ContactField.CITY: "Chicago"}
    refused = events[1]
    assert refused.changes == {}
    assert refused.reason is not None
    assert names in refused.reason
    assert PLANTED not in refused.reason
    assert refused.key.startswith("invalid:")
    assert refused.key not in {events[0].key, events[2].key}


def test_a_refused_event_keeps_its_key_when_hubspot_retries_the_batch() -> None:
    # Given a malformed event, the same event as HubSpot resends it (attemptNumber + 1, keys reordered),
    # and another malformed event
    malformed = contact_event(occurredAt="yesterday", attemptNumber=0)
    retried = dict(reversed(list({**malformed, "attemptNumber": 1}.items())))
    other = contact_event(occurredAt="today")

    # When each is parsed
    [first], [again], [different] = (source().parse(request([event])) for event in (malformed, retried, other))

    # Then the retry has the same dedup key, and another malformed event another one
    assert first.key == again.key
    assert first.key != different.key
    assert len(first.key) <= 512


def test_a_refused_event_is_named_by_its_event_id_when_readable_and_by_its_position_otherwise() -> None:
    # Given malformed events: one with a readable eventId, one without, one with an eventId too long to be one
    readable = contact_event(eventId=777, occurredAt="bad")
    missing = contact_event(occurredAt="bad")
    del missing["eventId"]
    overlong = contact_event(eventId=PLANTED * 10, occurredAt="bad")

    # When parsed
    events = source().parse(request([readable, missing, overlong]))

    # Then each is named so the 202 can list it, never by a value that is not an id
    assert [event.event_id for event in events] == ["777", "#1", "#2"]


def test_a_refused_event_is_filed_under_its_contact_when_its_ids_are_readable() -> None:
    # Given malformed events with readable portal and object ids, and without
    readable = contact_event(occurredAt="bad")
    unreadable = contact_event(occurredAt="bad", objectId={"id": PLANTED})

    # When parsed
    first, second = source().parse(request([readable, unreadable]))

    # Then the contact is portal:object, or a fixed placeholder
    assert first.contact_id == f"{PORTAL}:{CONTACT}"
    assert second.contact_id == "unknown"


def test_a_refused_event_keeps_its_change_time_when_readable_and_takes_the_arrival_time_otherwise() -> None:
    # Given a malformed event with a readable occurredAt, and one without
    readable = contact_event(propertyValue=[1])
    unreadable = contact_event(occurredAt="bad")

    # When parsed
    first, second = source().parse(request([readable, unreadable]))

    # Then occurred_at is HubSpot's time, or the time the request arrived
    assert first.occurred_at == OCCURRED_AT
    assert second.occurred_at == int(NOW * 1000)


def test_a_batch_of_only_malformed_events_is_read_as_refused_events() -> None:
    events = source().parse(request(b"[1, 2, {}]"))
    assert [event.settled for event in events] == [Status.REFUSED] * 3
    assert [event.event_id for event in events] == ["#0", "#1", "#2"]


def test_an_unusable_value_in_a_key_the_adapter_does_not_read_is_left_alone() -> None:
    # Given a valid event carrying an extra key with a 1e400 and a lone surrogate
    body = "[" + raw_event('{"a": 1e400, "b": "\\ud800", "c": 1' + "0" * 5000 + "}", extra=RAW) + "]"

    # Then the event is read as usual (other keys are left alone)
    [event] = source().parse(request(body.encode()))
    assert event.settled is None
    assert event.changes == {ContactField.EMAIL: "jane@example.com"}


def test_body_that_is_not_utf8_is_invalid() -> None:
    # Given a body with an invalid UTF-8 sequence next to a recognisable value
    body = b'[{"propertyValue": "' + PLANTED.encode() + b'\xff\xfe"}]'

    # Then it is refused as not UTF-8
    assert_invalid(body, names="UTF-8")


def test_deeply_nested_body_is_invalid() -> None:
    # Given an event with an extra key nested 40 levels deep
    nested: Any = PLANTED
    for _ in range(40):
        nested = [nested]
    body = json.dumps([contact_event(extra=nested)]).encode()

    # Then it is refused for its nesting
    assert_invalid(body, names="nested deeper than 32")


def test_absurdly_nested_body_is_invalid_not_a_crash() -> None:
    # Given nesting deep enough to exhaust the JSON decoder's recursion
    body = b"[" * 100_000 + b"]" * 100_000

    # Then it is an invalid payload, not a RecursionError
    assert_invalid(body)


# --- media type ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_is_accepted(content_type: str) -> None:
    source().check_media_type(request(b"[]", content_type=content_type))


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "", None])
def test_other_or_missing_content_type_is_refused(content_type: str | None) -> None:
    # Given another content type, or none
    # When checked, Then it is 415
    with pytest.raises(UnsupportedMediaType) as caught:
        source().check_media_type(request(b"[]", content_type=content_type))
    assert caught.value.status_code == 415


@pytest.mark.parametrize(
    "content_type",
    [f"text/{PLANTED}", f"application/json{PLANTED}", f"{PLANTED}\r\nX-Injected: 1", "x" * 100_000 + PLANTED],
    ids=["type", "suffix", "CRLF", "huge"],
)
def test_a_refused_content_type_is_not_repeated_in_the_answer(content_type: str) -> None:
    # Given a content type carrying a recognisable value (a header is as untrusted as the body)
    # When checked, Then it is refused without repeating it
    with pytest.raises(UnsupportedMediaType) as caught:
        source().check_media_type(request(b"[]", content_type=content_type))
    assert PLANTED not in caught.value.message
    assert caught.value.message == "content type must be application/json, got another"


# --- verify -------------------------------------------------------------------------------------


def test_verify_accepts_a_v3_signature() -> None:
    # Given a v3-signed request
    body = json.dumps([contact_event()]).encode()

    # When verified with the client secret, Then it is accepted
    source().verify(request(body, headers=v3_headers(body)), [SECRET])


def test_verify_accepts_any_of_several_secrets() -> None:
    # Given a request signed with the new secret while the old one is still configured
    body = json.dumps([contact_event()]).encode()
    signed = request(body, headers=v3_headers(body, secret=OTHER_SECRET))

    # When verified with both, Then one match is enough
    source().verify(signed, [SECRET, OTHER_SECRET])


def test_verify_refuses_when_no_secret_matches() -> None:
    # Given a request signed with a secret the adapter does not hold
    body = json.dumps([contact_event()]).encode()
    signed = request(body, headers=v3_headers(body, secret="unknown-secret-0000"))

    # When verified, Then it is refused
    with pytest.raises(SignatureError, match="does not match"):
        source().verify(signed, [SECRET, OTHER_SECRET])


@pytest.mark.parametrize("secrets", [[], [""]])
def test_verify_fails_closed_without_secrets(secrets: list[str]) -> None:
    # Given a request signed with an empty key
    body = json.dumps([contact_event()]).encode()
    signed = request(body, headers=v3_headers(body, secret=""))

    # When no secret is configured, Then it is refused
    with pytest.raises(SignatureError, match="no verification secret"):
        source().verify(signed, secrets)


def test_verify_refuses_a_stale_v3_request() -> None:
    # Given a v3 request signed ten minutes before it arrived
    body = json.dumps([contact_event()]).encode()
    signed = request(body, headers=v3_headers(body, timestamp=str(int(NOW_MS) - 600_000)))

    # Then it is refused
    with pytest.raises(SignatureError, match="older than"):
        source().verify(signed, [SECRET])


def test_verify_refuses_legacy_signatures_by_default() -> None:
    # Given a correctly v1-signed request (no timestamp, so replayable)
    body = json.dumps([contact_event()]).encode()
    signed = request(body, headers=v1_headers(body))

    # When legacy signatures are not enabled, Then it is refused
    with pytest.raises(SignatureError, match="use signature v3"):
        source().verify(signed, [SECRET])


def test_verify_accepts_legacy_signatures_when_enabled() -> None:
    # Given a correctly v1-signed request with the rotated secret
    body = json.dumps([contact_event()]).encode()
    signed = request(body, headers=v1_headers(body, secret=OTHER_SECRET))

    # When legacy signatures are enabled, Then it is accepted
    source(legacy_signatures=True).verify(signed, [SECRET, OTHER_SECRET])


def test_verify_refuses_a_wrong_legacy_signature_when_enabled() -> None:
    # Given a v1 signature made with another secret
    body = json.dumps([contact_event()]).encode()
    signed = request(body, headers=v1_headers(body, secret="unknown-secret-0000"))

    # Then it is refused even with legacy signatures enabled
    with pytest.raises(SignatureError, match="does not match"):
        source(legacy_signatures=True).verify(signed, [SECRET])


def test_verify_prefers_v3_when_both_signatures_are_sent() -> None:
    # Given a valid v3 signature alongside a wrong legacy one
    body = json.dumps([contact_event()]).encode()
    headers = {**v3_headers(body), "x-hubspot-signature": "0" * 64, "x-hubspot-signature-version": "v1"}

    # Then the v3 signature decides
    source().verify(request(body, headers=headers), [SECRET])


def test_verify_refuses_an_unsigned_request() -> None:
    body = json.dumps([contact_event()]).encode()
    with pytest.raises(SignatureError, match="missing X-HubSpot-Signature-v3"):
        source(legacy_signatures=True).verify(request(body), [SECRET])


# --- with a read mode: what deliver reads from HubSpot -------------------------------------------------------


def test_with_a_read_mode_a_redacted_value_asks_deliver_to_read_the_contact() -> None:
    # Given HubSpot's sensitive sample on a mapped property, and a source that reads contacts when needed
    body = json.loads(load_fixture("propertychange-sensitive.json"))
    body[0]["propertyName"] = "email"

    # When parsed
    [event] = source(read_mode=ReadMode.WHEN_INCOMPLETE).parse(request(body))

    # Then it is queued asking for a read, carrying no value (never "REDACTED")
    assert event.settled is None
    assert event.read is ReadCause.REDACTED
    assert event.changes == {}


@pytest.mark.parametrize(
    ("ids", "survivor"),
    [
        ({"primaryObjectId": 7001, "mergedObjectIds": [7002], "newObjectId": 7003}, "7003"),
        ({"primaryObjectId": 7001, "mergedObjectIds": [7002]}, "7001"),
    ],
)
def test_with_a_read_mode_a_merge_asks_deliver_to_read_the_surviving_contact(
    ids: dict[str, Any], survivor: str
) -> None:
    # Given a contact.merge event, and a source that reads contacts when needed
    merge = contact_event(subscriptionType="contact.merge", propertyName=None, propertyValue=None, **ids)

    # When parsed
    [event] = source(read_mode=ReadMode.WHEN_INCOMPLETE).parse(request([merge]))

    # Then it names the surviving contact and asks for a read of it
    assert event.contact_id == f"{PORTAL}:{survivor}"
    assert event.read is ReadCause.MERGE
    assert event.settled is None
