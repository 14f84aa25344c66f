"""HubSpot source: media type, signature checks through the source, and batch parsing into events."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from webhook_adapter.errors import InvalidPayload, SignatureError, UnsupportedMediaType
from webhook_adapter.model import ContactField, SourceEvent, Status
from webhook_adapter.signatures import sign_hubspot_v3
from webhook_adapter.sources.base import WebhookRequest
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


def test_missing_event_id_is_invalid_and_named() -> None:
    # Given a second event without eventId
    second = contact_event(propertyValue=PLANTED)
    del second["eventId"]

    # Then the message names the path to the field
    assert_invalid(json.dumps([contact_event(), second]).encode(), names="1.eventId")


def test_occurred_at_as_a_string_is_invalid_and_named() -> None:
    # Given occurredAt sent as text (a number would be required)
    event = contact_event(occurredAt=f"1700000000000{PLANTED}")

    # Then the path is named, the value is not
    assert_invalid(json.dumps([event]).encode(), names="0.occurredAt")


def test_occurred_at_as_numeric_text_is_invalid() -> None:
    assert_invalid(json.dumps([contact_event(occurredAt="1700000000000")]).encode(), names="0.occurredAt")


@pytest.mark.parametrize("value", [{"secret": PLANTED}, [PLANTED], True])
def test_property_value_that_is_not_a_scalar_is_invalid_and_named(value: Any) -> None:
    # Given propertyValue as an object, a list or a boolean
    event = contact_event(propertyValue=value)

    # Then the path is named, the value is not
    assert_invalid(json.dumps([event]).encode(), names="0.propertyValue")


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
