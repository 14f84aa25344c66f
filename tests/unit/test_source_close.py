"""Close source: signature, contact and lead events into field changes, what is ignored, and the answer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from webhook_adapter.errors import InvalidPayload, SignatureError, UnsupportedMediaType
from webhook_adapter.model import ContactField, SourceEvent, Status
from webhook_adapter.signatures import sign_close
from webhook_adapter.sources.base import MAX_VALUE_CHARS, WebhookRequest
from webhook_adapter.sources.close import CloseConfig, CloseSource, build

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "close"
NOW = 1_700_000_000.0
URL = "https://hooks.example.test/webhooks/close"
KEY = "058bfb6a3d8cfdc4da7c3be5901b16ae11da982b46a25fb2cd7016e97a140a1c"
OTHER_KEY = "ab" * 32
CUSTOMER_FIELD = "custom.cf_Rz3dn8bEjjVjuT4sWmEu0bqmd5ZBfYOjZiiYOdlPa7Z"
ORG = "orga_XbVPx5fFbKlYTz9PW5Ih1XDhViV10YihIaEgMEb6fVW"
PLANTED = "planted-8c1e5-value"
"""A recognisable value that must never come back in an error message."""


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def source(**config: Any) -> CloseSource:
    return CloseSource(CloseConfig(secret_id="x", customer_id_field=config.pop("field", CUSTOMER_FIELD), **config))


def request(body: bytes | dict[str, Any] | list[Any], *, headers: dict[str, str] | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"content-type": "application/json", **(headers or {})}
    return WebhookRequest(source="close", method="POST", url=URL, headers=all_headers, body=raw, received_at=NOW)


def parse(body: bytes | dict[str, Any] | list[Any]) -> SourceEvent:
    [event] = source().parse(request(body))
    return event


def contact(**event: Any) -> dict[str, Any]:
    """The contact-updated sample with some of its event's keys replaced (``data`` merged)."""
    body = copy.deepcopy(fixture("contact-updated.json"))
    data = event.pop("data", {})
    body["event"] |= event
    body["event"]["data"] |= data
    return body


def lead(addresses: Any = None, **event: Any) -> dict[str, Any]:
    """A lead.updated event in the same envelope, its data shaped as Close's Lead object."""
    body = copy.deepcopy(fixture("contact-updated.json"))
    lead_id = "lead_zwqYhEFwzPyfCErS8uQ77is2wFLvr9BgVi6cTfbFM68"
    address = {
        "label": "business",
        "address_1": "747 Howard St",
        "address_2": "Room 3",
        "city": "San Francisco",
        "state": "CA",
        "zipcode": "94103",
        "country": "US",
    }
    data = {
        "id": lead_id,
        "organization_id": ORG,
        "display_name": "KLine",
        "addresses": [address] if addresses is None else addresses,
        CUSTOMER_FIELD: "customer_abc123",
    }
    body["event"] |= {
        "id": "ev_lead1",
        "object_type": "lead",
        "object_id": lead_id,
        "changed_fields": ["addresses", "date_updated"],
        "previous_data": {"addresses": []},
        "data": data,
        **event,
    }
    return body


def signed(body: bytes, *, key: str = KEY, timestamp: int = int(NOW)) -> dict[str, str]:
    return {
        "close-sig-hash": sign_close(key=key, timestamp=str(timestamp), body=body),
        "close-sig-timestamp": str(timestamp),
    }


def assert_invalid(body: bytes | dict[str, Any] | list[Any], *, names: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        source().parse(request(body))
    assert PLANTED not in str(caught.value)
    assert names in caught.value.message


# --- the vendor's samples -------------------------------------------------------------------------


def test_documented_opportunity_sample_is_ignored() -> None:
    # Given Close's documented example, an opportunity update
    body = (FIXTURES / "opportunity-updated.json").read_bytes()

    # When parsed
    event = parse(body)

    # Then it is acknowledged, ignored, keyed on Close's event id and timed by its (zoneless, UTC) date_updated
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.kind == "opportunity.updated"
    assert event.key == event.event_id == "ev_2sYKRjcrA79yKxi3S4Crd7"
    assert event.contact_id == f"{ORG}:oppo_7H4sjNso7FyBFaeR3RXi5PMJbilfo0c6UPCxsJtEhCO"
    assert event.occurred_at == 1_547_556_503_395


def test_contact_updated_sample_gives_the_first_email_the_mobile_the_other_phone_and_the_customer_id() -> None:
    # Given the contact update built on Close's envelope and Contact object (emails and phones changed)
    event = parse(fixture("contact-updated.json"))

    # Then every mapped field is read: the first email, the mobile, the first other phone, the custom field
    assert event.settled is None
    assert event.changes == {
        ContactField.EMAIL: "m.jones@kline.example",
        ContactField.MOBILE_PHONE: "+16505550199",
        ContactField.PHONE: "+16505550100",
        ContactField.CUSTOMER_ID: "customer_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    }
    assert event.contact_id == f"{ORG}:cont_BwlwYQkIP6AooiXP1CMvc6Zbb5gGh2gPu4dqIDlDrII"
    assert event.key == "ev_4hT1yPqa0Ld8mNwS2GxVb9"
    assert event.kind == "contact.updated"
    assert event.occurred_at == 1_547_556_727_611


# --- changed_fields decides what goes on ----------------------------------------------------------


def test_an_update_passes_on_only_the_mapped_fields_it_changed_with_the_customer_id() -> None:
    # Given an update whose changed_fields list the emails only
    event = parse(contact(changed_fields=["date_updated", "emails"]))

    # Then the phones (unchanged) are not resent
    assert event.changes == {
        ContactField.EMAIL: "m.jones@kline.example",
        ContactField.CUSTOMER_ID: "customer_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    }


def test_an_unrelated_update_is_ignored_even_though_data_holds_every_field() -> None:
    # Given an update of the contact's title only
    event = parse(contact(changed_fields=["date_updated", "title"]))

    # Then nothing stale is resent
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.reason == "no mapped field changed in this contact.updated event"


@pytest.mark.parametrize("spelled", [CUSTOMER_FIELD, CUSTOMER_FIELD.removeprefix("custom.")])
def test_a_change_of_the_customer_id_alone_is_passed_on(spelled: str) -> None:
    # Given an update of the customer id custom field (named with or without "custom.")
    event = parse(contact(changed_fields=[spelled]))

    # Then it goes on by itself
    assert event.changes == {ContactField.CUSTOMER_ID: "customer_0a1b2c3d4e5f60718293a4b5c6d7e8f9"}


@pytest.mark.parametrize(("action", "changed"), [("created", []), ("created", None), ("updated", None)])
def test_without_a_list_of_changes_every_mapped_field_present_goes_on(action: str, changed: list[str] | None) -> None:
    # Given a creation (changed_fields empty or absent), or an update without changed_fields
    body = contact(action=action)
    if changed is None:
        del body["event"]["changed_fields"]
    else:
        body["event"]["changed_fields"] = changed

    # Then every mapped field of data is read
    assert set(parse(body).changes) == {
        ContactField.EMAIL,
        ContactField.PHONE,
        ContactField.MOBILE_PHONE,
        ContactField.CUSTOMER_ID,
    }


def test_only_fields_present_in_data_are_mapped() -> None:
    # Given an update listing emails and phones, whose data has no phones and no customer id
    body = contact()
    del body["event"]["data"]["phones"], body["event"]["data"][CUSTOMER_FIELD]

    # Then only the email goes on: absent is unknown, never cleared
    assert parse(body).changes == {ContactField.EMAIL: "m.jones@kline.example"}


# --- contact values ------------------------------------------------------------------------------


def test_an_empty_email_list_clears_the_email() -> None:
    assert parse(contact(data={"emails": []})).changes[ContactField.EMAIL] is None


@pytest.mark.parametrize(
    ("phones", "mobile", "phone"),
    [
        ([], None, None),
        ([{"type": "fax", "phone": "+16505550111"}, {"type": "url", "phone": "x"}], None, None),
        ([{"type": "Mobile", "phone": "+16505550199"}], "+16505550199", None),
        (
            [
                {"type": "fax", "phone": "+16505550111"},
                {"type": "home", "phone": "+16505550122"},
                {"type": "office", "phone": "+16505550100"},
                {"type": "mobile", "phone": "+16505550199"},
                {"type": "mobile", "phone": "+16505550198"},
            ],
            "+16505550199",
            "+16505550122",
        ),
        ([{"type": None, "phone": 16505550133}], None, "16505550133"),
    ],
)
def test_phones_give_the_first_mobile_and_the_first_other_number_and_clear_what_is_not_there(
    phones: list[dict[str, Any]], mobile: str | None, phone: str | None
) -> None:
    # Given a contact's phone list (never a fax or a URL as the customer's phone)
    changes = parse(contact(data={"phones": phones})).changes

    # Then each kind is the first of its kind, or cleared
    assert (changes[ContactField.MOBILE_PHONE], changes[ContactField.PHONE]) == (mobile, phone)


def test_a_null_customer_id_is_cleared() -> None:
    assert parse(contact(data={CUSTOMER_FIELD: None})).changes[ContactField.CUSTOMER_ID] is None


def test_a_value_over_the_cap_is_refused_for_its_field_and_the_others_go_on() -> None:
    # Given a first email of more than 1,024 characters
    event = parse(contact(data={"emails": [{"type": "office", "email": PLANTED + "x" * MAX_VALUE_CHARS}]}))

    # Then the email is refused (named as Close calls it, never repeated) and the phones go on
    assert ContactField.EMAIL not in event.changes
    assert event.refused == {ContactField.EMAIL: f"emails[0].email is longer than {MAX_VALUE_CHARS} characters"}
    assert event.settled is None
    assert ContactField.MOBILE_PHONE in event.changes
    assert PLANTED not in (event.reason or "")


def test_an_event_whose_every_passed_value_is_over_the_cap_is_rejected() -> None:
    # Given an update of the emails only, without a customer id, the email too long
    body = contact(changed_fields=["emails"], data={"emails": [{"email": "x" * (MAX_VALUE_CHARS + 1)}]})
    del body["event"]["data"][CUSTOMER_FIELD]

    # Then it is settled rejected
    event = parse(body)
    assert event.settled is Status.REJECTED
    assert event.changes == {}


# --- leads: addresses ----------------------------------------------------------------------------


def test_a_lead_update_gives_its_first_address_and_its_customer_id() -> None:
    # Given a lead whose addresses changed
    event = parse(lead())

    # Then the first address is the contact's address, under the lead's own id and customer id
    assert event.changes == {
        ContactField.LINE1: "747 Howard St",
        ContactField.LINE2: "Room 3",
        ContactField.CITY: "San Francisco",
        ContactField.STATE: "CA",
        ContactField.POSTAL_CODE: "94103",
        ContactField.COUNTRY: "US",
        ContactField.CUSTOMER_ID: "customer_abc123",
    }
    assert event.contact_id == f"{ORG}:lead_zwqYhEFwzPyfCErS8uQ77is2wFLvr9BgVi6cTfbFM68"
    assert event.kind == "lead.updated"


def test_a_lead_without_addresses_clears_the_address_and_a_missing_part_is_cleared() -> None:
    # Given a lead whose addresses were removed, and one whose address has no second line
    emptied = parse(lead([])).changes
    partial = parse(lead([{"address_1": "1 Main St", "city": "Chicago", "zipcode": "60601", "country": "US"}]))

    # Then every address field is cleared, or just the missing parts
    assert {field: emptied[field] for field in emptied if field is not ContactField.CUSTOMER_ID} == dict.fromkeys(
        (
            ContactField.LINE1,
            ContactField.LINE2,
            ContactField.CITY,
            ContactField.STATE,
            ContactField.POSTAL_CODE,
            ContactField.COUNTRY,
        )
    )
    assert partial.changes[ContactField.LINE2] is None
    assert partial.changes[ContactField.STATE] is None
    assert partial.changes[ContactField.LINE1] == "1 Main St"


def test_a_lead_update_that_does_not_touch_the_addresses_is_ignored() -> None:
    # Given a lead update of its status only
    event = parse(lead(changed_fields=["status_id"]))

    # Then its unchanged address is not resent
    assert event.settled is Status.IGNORED
    assert event.changes == {}


# --- ignored events ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_type", "action"),
    [
        ("contact", "deleted"),
        ("lead", "deleted"),
        ("lead", "merged"),
        ("activity.note", "created"),
        ("task", "updated"),
    ],
)
def test_deletions_and_other_objects_are_ignored(object_type: str, action: str) -> None:
    # Given an event the adapter has nothing to send for
    event = parse(contact(object_type=object_type, action=action))

    # Then it is acknowledged and ignored
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.kind == f"{object_type}.{action}"


# --- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"date_updated": "2023-11-14T22:13:10.123000"}, 1_699_999_990_123),
        ({"date_updated": "2023-11-14T22:13:10.123000+00:00"}, 1_699_999_990_123),
        ({"date_updated": "2023-11-14T23:13:10.123+01:00"}, 1_699_999_990_123),
        ({"date_updated": "2023-11-14T22:13:10.123Z"}, 1_699_999_990_123),
        ({"date_updated": None, "date_created": "2023-11-14T22:13:10.123000"}, 1_699_999_990_123),
    ],
)
def test_the_change_time_is_date_updated_else_date_created(event: dict[str, Any], expected: int) -> None:
    assert parse(contact(**event)).occurred_at == expected


@pytest.mark.parametrize(
    ("event", "names"),
    [
        ({"date_updated": "yesterday"}, "event.date_updated"),
        ({"date_updated": "1969-12-31T23:59:59"}, "event.date_updated"),
        ({"date_updated": None, "date_created": None}, "neither date_updated nor date_created"),
        ({"date_updated": 1_699_999_990}, "date_updated"),
    ],
)
def test_a_change_time_that_is_not_an_iso_time_is_an_invalid_payload(event: dict[str, Any], names: str) -> None:
    assert_invalid(contact(**event), names=names)


# --- malformed bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"event": {', "not valid JSON"),
        (b"[]", "JSON object"),
        ({"subscription_id": "whsub_1"}, "event"),
        (contact(id=None), "event.id"),
        (contact(id="ev 1"), "event.id"),
        (contact(object_id="cont_" + "x" * 200), "event.object_id"),
        (contact(organization_id="orga_" + "x" * 200), "event.organization_id"),
        (contact(object_type="x" * 100), "event.object_type"),
        (contact(action="x" * 100), "event.action"),
        (contact(organization_id=None), "event.organization_id"),
        (contact(data={"emails": PLANTED}), "emails must be a list of objects"),
        (contact(data={"emails": [PLANTED]}), "emails must be a list of objects"),
        (contact(data={"emails": [{"email": [PLANTED]}]}), "emails[0].email"),
        (contact(data={"phones": [{"type": "mobile", "phone": {"n": PLANTED}}]}), "phones[0].phone"),
        (contact(data={CUSTOMER_FIELD: [PLANTED]}), CUSTOMER_FIELD),
        (lead([{"address_1": True}]), "addresses[0].address_1"),
    ],
)
def test_a_body_that_is_not_a_readable_close_event_is_an_invalid_payload(body: Any, names: str) -> None:
    # Given a body that is not JSON, not a Close envelope, or whose mapped field has the wrong shape
    # Then it is refused, naming the problem, never a value
    assert_invalid(body, names=names)


def test_the_longest_ids_and_words_accepted_still_make_a_valid_event() -> None:
    # Given an organization id and object id of 120 characters, a type and action of 63 (the limits)
    body = contact(organization_id="o" * 120, object_id="c" * 120, object_type="t" * 63, action="a" * 63)

    # Then the event's contact id and kind stay within what an event may hold (no 500 for a long id)
    event = parse(body)
    assert event.contact_id == "o" * 120 + ":" + "c" * 120
    assert event.settled is Status.IGNORED


def test_a_contact_event_without_data_is_an_invalid_payload() -> None:
    body = contact()
    del body["event"]["data"]
    assert_invalid(body, names="no data")


def test_a_value_that_cannot_be_carried_is_refused_only_where_it_is_read() -> None:
    # Given a lone surrogate in the contact's title (unread) and then in its email (read)
    unread = json.dumps(contact(changed_fields=["emails"], data={"title": "X"})).replace('"X"', '"\\ud800"')
    read = json.dumps(contact(changed_fields=["emails"], data={"emails": [{"email": "X"}]})).replace('"X"', '"\\ud800"')

    # Then the first goes on and the second is refused
    assert parse(unread.encode()).changes[ContactField.EMAIL] == "m.jones@kline.example"
    assert_invalid(read.encode(), names="lone surrogate")


# --- signature, media type, answer, settings -----------------------------------------------------


def test_the_signature_is_checked_against_every_configured_key() -> None:
    # Given a body signed with the rotated key
    body = json.dumps(fixture("contact-updated.json")).encode()
    signed_request = request(body, headers=signed(body, key=OTHER_KEY))

    # Then both keys configured (one of them not hex) accept it, the old key alone does not
    source().verify(signed_request, [KEY, "not-hex", OTHER_KEY])
    with pytest.raises(SignatureError, match="close-sig-hash does not match"):
        source().verify(signed_request, [KEY])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "close-sig-hash"}, "missing close-sig-hash"),
        (lambda h: {k: v for k, v in h.items() if k != "close-sig-timestamp"}, "missing close-sig-timestamp"),
        (lambda h: h | signed(b"{}"), "does not match"),
        (lambda h: h | {"close-sig-timestamp": str(int(NOW) + 1)}, "does not match"),
    ],
)
def test_a_missing_or_wrong_signature_is_refused(change: Any, message: str) -> None:
    # Given the headers with one part missing, the hash of another body, or another timestamp
    body = json.dumps(fixture("contact-updated.json")).encode()

    # Then it is refused with the cause named
    with pytest.raises(SignatureError, match=message):
        source().verify(request(body, headers=change(signed(body))), [KEY])


def test_a_stale_signature_is_refused() -> None:
    body = json.dumps(fixture("contact-updated.json")).encode()
    with pytest.raises(SignatureError, match="older than 300 seconds"):
        source().verify(request(body, headers=signed(body, timestamp=int(NOW) - 301)), [KEY])


def test_no_configured_key_refuses_every_request() -> None:
    body = b"{}"
    with pytest.raises(SignatureError, match="no verification secret"):
        source().verify(request(body, headers=signed(body)), [])


def test_media_type_must_be_json() -> None:
    with pytest.raises(UnsupportedMediaType):
        source().check_media_type(request(b"{}", headers={"content-type": "application/x-www-form-urlencoded"}))
    source().check_media_type(request(b"{}", headers={"content-type": "application/json; charset=utf-8"}))


def test_answers_are_json() -> None:
    ok = source().answer(202, {"accepted": ["ev_1"], "duplicates": []})
    error = source().answer(401, {"error": {"code": "invalid_signature", "message": "missing close-sig-hash"}})
    assert (ok.status, ok.content_type, json.loads(ok.body)) == (
        202,
        "application/json",
        {"accepted": ["ev_1"], "duplicates": []},
    )
    assert (error.status, json.loads(error.body)["error"]["message"]) == (401, "missing close-sig-hash")


def test_settings_come_from_close_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables the template sets
    monkeypatch.setenv("CLOSE_SECRET_ID", "arn:secret")
    monkeypatch.setenv("CLOSE_CUSTOMER_ID_FIELD", CUSTOMER_FIELD)

    # Then the source reads them
    built = build()
    assert (built.secret_id, built.config.customer_id_field) == ("arn:secret", CUSTOMER_FIELD)


@pytest.mark.parametrize("field", [None, "", "cf_abc", "custom.cf_a b", "custom.sphere_id"])
def test_settings_need_a_custom_field_key(monkeypatch: pytest.MonkeyPatch, field: str | None) -> None:
    # Given no customer id field, or one that is not a Close custom field key
    monkeypatch.setenv("CLOSE_SECRET_ID", "arn:secret")
    if field is not None:
        monkeypatch.setenv("CLOSE_CUSTOMER_ID_FIELD", field)

    # Then building the source fails
    with pytest.raises(ValidationError):
        build()
