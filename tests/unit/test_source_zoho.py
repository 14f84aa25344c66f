"""Zoho CRM source: Notification API callbacks (ids asking for a read) and workflow webhooks (values), trust, keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import ValidationError

from webhook_adapter.errors import CredentialsError, ForbiddenSender, InvalidPayload, UnsupportedMediaType
from webhook_adapter.model import MAX_VALUE_CHARS, ContactField, ReadCause, SourceEvent, Status
from webhook_adapter.sources.base import WebhookRequest
from webhook_adapter.sources.zoho import MAX_IDS, UNKNOWN_CONTACT, ZohoConfig, ZohoSource, build

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoho"
NOW = 1_700_000_000.0
NOW_MS = 1_700_000_000_000
URL = "https://hooks.example.test/webhooks/zoho"
TOKEN = "TOKEN_FOR_VERIFICATION_OF_1000000068002"
"""Zoho's documented channel token, the secret's value here."""
OTHER_TOKEN = "zoho-endpoint-token-0002"
CHANNEL = "1000000068002"
SAMPLE_MS = 1_795_668_870_000
"""The workflow sample's ``Modified_Time`` (``2026-11-26T10:24:30+05:30``) in epoch milliseconds."""
PLANTED = "planted-4e7a1-value"
"""A recognisable value that must never come back in an error message."""
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def documented_notification() -> dict[str, Any]:
    """Zoho's documented Notification API callback (``tests/fixtures/zoho``)."""
    document: dict[str, Any] = json.loads((FIXTURES / "notification-update.json").read_text(encoding="utf-8"))
    return document


def workflow_sample() -> dict[str, Any]:
    """The README's workflow webhook body (``tests/fixtures/zoho``)."""
    document: dict[str, Any] = json.loads((FIXTURES / "workflow-webhook.json").read_text(encoding="utf-8"))
    return document


def notification(**changes: Any) -> dict[str, Any]:
    return documented_notification() | changes


def source(**settings: Any) -> ZohoSource:
    return ZohoSource(ZohoConfig(secret_id="x", **settings))


def request(
    body: bytes | dict[str, Any] | list[Any],
    *,
    query: str = f"token={TOKEN}",
    headers: dict[str, str] | None = None,
    content_type: str = JSON,
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = URL + (f"?{query}" if query else "")
    return WebhookRequest("zoho", "POST", url, {"content-type": content_type} | (headers or {}), raw, NOW)


def parse(body: bytes | dict[str, Any] | list[Any], *, content_type: str = JSON, **settings: Any) -> list[SourceEvent]:
    return source(**settings).parse(request(body, content_type=content_type))


def one(body: bytes | dict[str, Any], *, content_type: str = JSON, **settings: Any) -> SourceEvent:
    [event] = parse(body, content_type=content_type, **settings)
    return event


# --- Notification API callbacks ---------------------------------------------------------------------------------


def test_the_documented_notification_asks_for_a_read_of_the_contact() -> None:
    # Given Zoho's documented callback: contact 1000000034044 updated on channel 1000000068002
    # When it is parsed
    [event] = parse(documented_notification())

    # Then it is one event with no fields that asks deliver to read that contact, dated by server_time
    assert event.read is ReadCause.THIN
    assert event.changes == {}
    assert event.settled is None
    assert event.contact_id == "1000000034044"
    assert event.occurred_at == 1387184949186
    assert event.kind == "Contacts.update"
    assert event.key == event.event_id == f"{CHANNEL}:update:1000000034044:1387184949186"


def test_a_numeric_channel_id_and_numeric_ids_give_the_same_keys_as_their_text() -> None:
    # Given the same notification with channel_id and the id as numbers instead of text
    as_numbers = notification(channel_id=int(CHANNEL), ids=[1000000034044])

    # Then the events are the same (either reading of Zoho's types is one event)
    assert parse(as_numbers) == parse(documented_notification())


def test_an_insert_of_several_contacts_is_one_event_per_id_in_order() -> None:
    # Given an insert notification naming three contacts
    events = parse(notification(operation="insert", ids=["11", "12", "13"]))

    # Then each asks for a read, keyed by its own id
    assert [event.contact_id for event in events] == ["11", "12", "13"]
    assert [event.key for event in events] == [f"{CHANNEL}:insert:{n}:1387184949186" for n in (11, 12, 13)]
    assert {event.read for event in events} == {ReadCause.THIN}
    assert {event.kind for event in events} == {"Contacts.insert"}


def test_the_dedup_key_is_stable_across_a_resend_and_changes_with_server_time() -> None:
    # Given the same notification sent twice, and a later change of the same contact
    first, again = parse(documented_notification()), parse(documented_notification())
    later = parse(notification(server_time=1387184949999))

    # Then a resend has the same key, a later change another one
    assert first[0].key == again[0].key
    assert later[0].key != first[0].key


@pytest.mark.parametrize("operation", ["delete", "restore", "merge"])
def test_operations_other_than_insert_and_update_are_ignored(operation: str) -> None:
    [event] = parse(notification(operation=operation))
    assert event.settled is Status.IGNORED
    assert event.reason == f"{operation} notifications carry no values"
    assert event.read is None


def test_another_modules_ids_are_ignored() -> None:
    # Given an update of two deals
    events = parse(notification(module="Deals", ids=["21", "22"]))

    # Then each is ignored: deals are not contacts
    assert [(event.settled, event.reason) for event in events] == [
        (Status.IGNORED, "Deals records are not contacts")
    ] * 2


def test_the_contacts_module_is_a_setting() -> None:
    # Given a deployment whose contacts are Zoho's Leads
    [lead] = parse(notification(module="Leads"), module="Leads")
    [contact] = parse(documented_notification(), module="Leads")

    # Then leads are read and contacts ignored
    assert lead.read is ReadCause.THIN
    assert contact.settled is Status.IGNORED


@pytest.mark.parametrize(
    "element", [PLANTED, "", "0", "-5", "12a", True, None, 1.5, {"id": "1"}, ["1"], "1" * 20, 0, -3]
)
def test_a_malformed_id_is_refused_alone_without_echoing_it(element: Any) -> None:
    # Given a notification whose second id is no record id
    events = parse(notification(ids=["11", element, "13"]))

    # Then the others go on and it is refused, keyed by its position, naming no value
    assert [event.read for event in (events[0], events[2])] == [ReadCause.THIN, ReadCause.THIN]
    refused = events[1]
    assert refused.settled is Status.REFUSED
    assert refused.contact_id == UNKNOWN_CONTACT
    assert refused.key == f"{CHANNEL}:update:refused:1:1387184949186"
    assert refused.reason is not None
    assert "ids.1" in refused.reason
    assert PLANTED not in refused.reason


def test_more_than_the_cap_of_ids_is_refused_whole() -> None:
    assert len(parse(notification(ids=["7"] * MAX_IDS))) == MAX_IDS
    with pytest.raises(InvalidPayload, match="ids"):
        parse(notification(ids=["7"] * (MAX_IDS + 1)))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"ids": []}, "ids"),
        ({"ids": PLANTED}, "ids"),
        ({"server_time": PLANTED}, "server_time"),
        ({"server_time": None}, "server_time"),
        ({"server_time": -1}, "server_time"),
        ({"channel_id": PLANTED}, "channel_id"),
        ({"channel_id": True}, "channel_id"),
        ({"module": ""}, "module"),
        ({"operation": None}, "operation"),
    ],
)
def test_a_notification_of_the_wrong_shape_is_refused_naming_the_field_only(
    changes: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidPayload, match=named) as raised:
        parse(notification(**changes))
    assert PLANTED not in str(raised.value)


def test_a_missing_key_of_a_notification_is_refused() -> None:
    body = documented_notification()
    del body["server_time"]
    with pytest.raises(InvalidPayload, match="server_time"):
        parse(body)


# --- workflow webhooks ------------------------------------------------------------------------------------------


def test_the_workflow_sample_carries_its_values_and_the_customer_id() -> None:
    # Given the README's JSON body as Zoho renders it
    event = one(workflow_sample())

    # Then it is one event of the record with every mapped value, Mobile "" cleared, no read asked
    assert event.contact_id == "5725767000000524157"
    assert event.kind == "Contacts.workflow"
    assert event.read is None
    assert event.settled is None
    assert event.changes == {
        ContactField.EMAIL: "p.boyle@zylker.com",
        ContactField.PHONE: "(847) 555-0142",
        ContactField.MOBILE_PHONE: None,
        ContactField.LINE1: "2400 N Sheridan Rd",
        ContactField.CITY: "Evanston",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60201",
        ContactField.COUNTRY: "United States",
        ContactField.CUSTOMER_ID: "c-0000",
    }
    assert event.occurred_at == SAMPLE_MS
    assert event.event_id == "5725767000000524157@2026-11-26T04:54:30.000Z"
    assert event.reason is None


def test_null_clears_a_field_and_an_absent_key_leaves_it_alone() -> None:
    # Given a body with City null, Email blank, and no Phone nor address keys at all
    event = one({"id": "42", "Modified_Time": "2026-11-26T10:24:30Z", "Mailing_City": None, "Email": "  "})

    # Then City and Email are cleared, the rest is not in the changes
    assert event.changes == {ContactField.CITY: None, ContactField.EMAIL: None}


def test_form_parameters_are_read_like_the_json_body() -> None:
    # Given the sample sent as form parameters (every value is text there)
    body = urlencode(workflow_sample()).encode()

    # When it is parsed, Then it gives the same changes, contact and time as the JSON body
    form = one(body, content_type=f"{FORM}; charset=UTF-8")
    raw = one(workflow_sample())
    assert (form.changes, form.contact_id, form.occurred_at) == (raw.changes, raw.contact_id, raw.occurred_at)


def test_a_repeated_form_key_refuses_only_when_it_is_read() -> None:
    # Given form bodies repeating a mapped key, and an unmapped one
    mapped = b"id=42&Email=a%40example.com&Email=b%40example.com"
    unmapped = b"id=42&Email=a%40example.com&Tag=x&Tag=y"

    # Then the mapped one is refused (which value counts would be a guess), the unmapped one goes on
    with pytest.raises(InvalidPayload, match="Email"):
        parse(mapped, content_type=FORM)
    assert one(unmapped, content_type=FORM).changes == {ContactField.EMAIL: "a@example.com"}


@pytest.mark.parametrize("body", [b"", b"   ", b"id=1&&=", b"\xff\xfe=1"])
def test_a_form_body_that_is_not_form_parameters_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        parse(body, content_type=FORM)


def test_the_dedup_key_is_a_digest_of_the_canonical_body() -> None:
    # Given the sample, the same keys in another order and spacing, and the sample with one value changed
    sample = workflow_sample()
    reordered = json.dumps(dict(reversed(list(sample.items()))), indent=2).encode()
    changed = sample | {"Mailing_City": "Skokie"}

    # Then a resend in any key order is the same key, a changed value another one (same contact)
    assert one(sample).key == one(reordered).key
    assert one(changed).key != one(sample).key
    assert one(changed).key.startswith("5725767000000524157:")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-26T10:24:30+05:30", SAMPLE_MS),
        ("2026-11-26T04:54:30Z", SAMPLE_MS),
        ("2026-11-26T04:54:30.250+00:00", SAMPLE_MS + 250),
        (SAMPLE_MS, SAMPLE_MS),
        (SAMPLE_MS // 1000, SAMPLE_MS),
        (str(SAMPLE_MS), SAMPLE_MS),
        (str(SAMPLE_MS // 1000), SAMPLE_MS),
    ],
)
def test_modified_time_is_read_in_every_accepted_form(stamp: Any, expected: int) -> None:
    event = one({"id": "42", "Modified_Time": stamp, "Mailing_City": "Evanston"})
    assert event.occurred_at == expected
    assert event.reason is None


@pytest.mark.parametrize(
    "stamp", [None, "", "26/11/2026 10:24 AM", "2026-11-26T10:24:30", PLANTED, True, -1, 10**15, "1" * 400, {}]
)
def test_an_absent_or_unreadable_modified_time_orders_the_change_by_arrival(stamp: Any) -> None:
    # Given a body whose Modified_Time merge field rendered unreadably (or not at all)
    body: dict[str, Any] = {"id": "42", "Mailing_City": "Evanston"}
    if stamp is not None:
        body["Modified_Time"] = stamp

    # Then the change is not refused: it is dated by its arrival, with a note saying so
    event = one(body)
    assert event.occurred_at == NOW_MS
    assert event.changes == {ContactField.CITY: "Evanston"}
    assert event.reason == "Modified_Time absent or unreadable: the change is ordered by its arrival"
    assert event.event_id.startswith("42@")
    assert PLANTED not in event.event_id


def test_a_value_over_the_cap_is_refused_for_its_field_only() -> None:
    # Given a body with a street over the cap beside a good city
    event = one(
        {
            "id": "42",
            "Modified_Time": SAMPLE_MS,
            "Mailing_Street": "x" * (MAX_VALUE_CHARS + 1),
            "Mailing_City": "Evanston",
        }
    )

    # Then the city goes on, the street is refused naming the Zoho field
    assert event.changes == {ContactField.CITY: "Evanston"}
    assert event.refused == {ContactField.LINE1: f"Mailing_Street is longer than {MAX_VALUE_CHARS} characters"}
    assert event.reason == f"Mailing_Street is longer than {MAX_VALUE_CHARS} characters"


def test_a_body_whose_only_value_is_over_the_cap_is_rejected() -> None:
    event = one({"id": "42", "Modified_Time": SAMPLE_MS, "Email": "x" * (MAX_VALUE_CHARS + 1)})
    assert event.settled is Status.REJECTED
    assert ContactField.EMAIL in event.refused


def test_a_body_without_a_mapped_key_is_ignored() -> None:
    event = one({"id": "42", "First_Name": "Ada", "Modified_Time": SAMPLE_MS})
    assert (event.settled, event.reason) == (Status.IGNORED, "no mapped field in the webhook body")


def test_the_record_id_may_be_a_number() -> None:
    assert one({"id": 5725767000000524157, "Email": "a@example.com"}).contact_id == "5725767000000524157"


@pytest.mark.parametrize("rendered", ["zcrm_5725767000000524157", " ZCRM_5725767000000524157 "])
def test_a_record_id_rendered_with_zohos_zcrm_prefix_names_the_same_contact(rendered: str) -> None:
    # Given the id merge field rendered as Zoho does in some places ("zcrm_" and the digits)
    # Then the contact is the one a notification names by its digits
    assert one({"id": rendered, "Email": "a@example.com"}).contact_id == "5725767000000524157"


@pytest.mark.parametrize(
    "body",
    [
        {"Email": "a@example.com"},
        {"id": PLANTED, "Email": "a@example.com"},
        {"id": "${Contacts.Contact Id}"},
        {"id": "zcrm_"},
        {"id": "zcrm_zcrm_42"},
        {"id": None},
        {"id": True},
        {"id": "42", "Email": ["a@example.com"]},
        {"id": "42", "Email": {"value": PLANTED}},
        [{"id": "42"}],
        "42",
    ],
)
def test_a_body_the_adapter_cannot_read_is_refused_without_echoing_a_value(body: Any) -> None:
    with pytest.raises(InvalidPayload) as raised:
        parse(body)
    assert PLANTED not in str(raised.value)


def test_the_field_map_can_be_replaced() -> None:
    # Given a deployment mapping the Other_* address fields and the home phone instead
    settings = {"field_map": json.dumps({"Other_City": "city", "Home_Phone": "phone"})}

    # Then only those keys are read (beside the customer id field)
    event = one({"id": "42", "Other_City": "Skokie", "Mailing_City": "Evanston", "Home_Phone": "1"}, **settings)
    assert event.changes == {ContactField.CITY: "Skokie", ContactField.PHONE: "1"}


def test_the_customer_id_field_is_a_setting() -> None:
    event = one({"id": "42", "Sphere_Id": "customer_1", "Sphere_Customer_Id": "other"}, customer_id_field="Sphere_Id")
    assert event.changes == {ContactField.CUSTOMER_ID: "customer_1"}


# --- trust, media type, answers, settings -----------------------------------------------------------------------


def test_a_workflow_webhook_may_carry_any_configured_token_in_the_url_or_the_header() -> None:
    body = workflow_sample()
    source().verify(request(body), [OTHER_TOKEN, TOKEN])
    source().verify(request(body, query=f"token={OTHER_TOKEN}"), [TOKEN, OTHER_TOKEN])
    source().verify(request(body, query="", headers={"x-zoho-webhook-token": TOKEN}), [TOKEN])


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("token=", {}),
        ("token=not-the-token", {}),
        (f"token={TOKEN}&token={TOKEN}", {}),
        (f"token={TOKEN}&token=other", {}),
        ("", {"x-zoho-webhook-token": "not-the-token"}),
        ("Token=" + TOKEN, {}),
    ],
)
def test_a_workflow_webhook_without_the_token_once_is_refused(query: str, headers: dict[str, str]) -> None:
    with pytest.raises(CredentialsError) as raised:
        source().verify(request(workflow_sample(), query=query, headers=headers), [TOKEN])
    assert TOKEN not in str(raised.value)


def test_a_notification_is_trusted_by_the_token_it_echoes_not_by_the_url() -> None:
    # Given the documented notification posted without a query, echoing the channel's token
    source().verify(request(documented_notification(), query=""), [OTHER_TOKEN, TOKEN])
    source(channel_id=CHANNEL).verify(request(documented_notification(), query=""), [TOKEN])

    # Then a notification echoing another token is refused even with the URL's token
    with pytest.raises(CredentialsError, match="notification token"):
        source().verify(request(notification(token="other")), [TOKEN])


@pytest.mark.parametrize("token", [None, "", 42, ["x"], "x" * 51])
def test_a_notification_without_a_usable_token_is_refused(token: Any) -> None:
    body = notification(token=token)
    with pytest.raises(CredentialsError):
        source().verify(request(body, query=""), [TOKEN, "x" * 51])


def test_a_notification_of_another_channel_is_a_foreign_sender() -> None:
    # Given a deployment serving channel 1000000068002 and an authentic notification of another channel
    body = notification(channel_id=1000000068999)

    # Then it is refused 403; with no channel configured, any channel whose token matches is served
    with pytest.raises(ForbiddenSender):
        source(channel_id=CHANNEL).verify(request(body, query=""), [TOKEN])
    source().verify(request(body, query=""), [TOKEN])


def test_a_foreign_channel_with_a_wrong_token_is_unauthenticated_first() -> None:
    with pytest.raises(CredentialsError):
        source(channel_id=CHANNEL).verify(request(notification(channel_id="9", token="other"), query=""), [TOKEN])


def test_no_configured_token_refuses_every_request() -> None:
    with pytest.raises(CredentialsError, match="no credential"):
        source().verify(request(documented_notification()), [])


@pytest.mark.parametrize("content_type", [JSON, f"{JSON}; charset=utf-8", FORM, f"{FORM};charset=UTF-8"])
def test_json_and_form_parameters_are_taken(content_type: str) -> None:
    source().check_media_type(request(b"{}", content_type=content_type))


@pytest.mark.parametrize("content_type", ["text/plain", "", "multipart/form-data", "application/xml"])
def test_other_content_types_are_refused(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        source().check_media_type(request(b"{}", content_type=content_type))


def test_a_form_body_is_never_a_notification() -> None:
    # Given the notification's keys sent as form parameters (and the URL's token)
    body = urlencode({"channel_id": CHANNEL, "ids": "1", "token": TOKEN, "id": "42", "Email": "a@example.com"})

    # Then it is read as a workflow webhook and trusted by the URL's token only
    form = request(body.encode(), content_type=FORM, query="")
    with pytest.raises(CredentialsError, match="endpoint token"):
        source().verify(form, [TOKEN])
    assert one(body.encode(), content_type=FORM).kind == "Contacts.workflow"


def test_answers_are_json() -> None:
    ok = source().answer(202, {"accepted": ["42@t"], "duplicates": []})
    error = source().answer(403, {"error": {"code": "forbidden_sender", "message": "another channel"}})
    assert (ok.status, ok.content_type, json.loads(ok.body)["accepted"]) == (202, JSON, ["42@t"])
    assert (error.status, json.loads(error.body)["error"]["code"]) == (403, "forbidden_sender")


def test_settings_come_from_zoho_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOHO_SECRET_ID", "arn:secret")
    monkeypatch.setenv("ZOHO_CHANNEL_ID", CHANNEL)
    monkeypatch.setenv("ZOHO_CUSTOMER_ID_FIELD", "Sphere_Id")
    monkeypatch.setenv("ZOHO_FIELD_MAP", "")
    built = build()
    assert (built.secret_id, built.config.channel_id, built.config.customer_id_field) == (
        "arn:secret",
        CHANNEL,
        "Sphere_Id",
    )
    assert built.config.field_map["Mailing_Zip"] is ContactField.POSTAL_CODE
    assert built.config.module == "Contacts"


@pytest.mark.parametrize(
    "settings",
    [
        {"secret_id": ""},
        {"secret_id": "x", "channel_id": "abc"},
        {"secret_id": "x", "channel_id": "1" * 20},
        {"secret_id": "x", "field_map": '{"Email": "fax"}'},
        {"secret_id": "x", "field_map": "not json"},
        {"secret_id": "x", "customer_id_field": ""},
    ],
)
def test_invalid_settings_are_refused(settings: dict[str, str]) -> None:
    with pytest.raises((ValidationError, ValueError)):
        ZohoConfig.model_validate(settings)


def test_settings_need_the_secret_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZOHO_SECRET_ID", raising=False)
    with pytest.raises(ValidationError):
        build()
