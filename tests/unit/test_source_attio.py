"""Attio source: signature, record events into events that ask for a read, dedup keys, what is ignored or refused."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from webhook_adapter.errors import InvalidPayload, SignatureError, UnsupportedMediaType
from webhook_adapter.model import ReadCause, SourceEvent, Status
from webhook_adapter.signatures import sign_attio
from webhook_adapter.sources.attio import MAX_EVENTS, UNKNOWN_CONTACT, AttioConfig, AttioSource, build
from webhook_adapter.sources.base import WebhookRequest, canonical_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "attio"
NOW = 1_700_000_000.0
NOW_MS = 1_700_000_000_000
URL = "https://hooks.example.test/webhooks/attio"
SECRET = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
OTHER_SECRET = "attio-rotated-secret-0002"
PEOPLE = "97052eb9-e65e-443f-a297-f2d9a4a7f795"
"""The sample's object: configured as the people object."""
WORKSPACE = "14beef7a-99f7-4534-a87e-70b564330a4c"
RECORD = "bf071e1f-6035-429d-b874-d83ea64ea13b"
DELIVERY = "5b0d0c3e-2f6a-4f1e-9d1c-7c1e0a9b8f01"
"""An ``Idempotency-Key``."""
PLANTED = "planted-8c1e5-value"
"""A recognisable value that must never come back in an error message."""


def sample() -> dict[str, Any]:
    """Attio's documented record.updated delivery, as published."""
    document: dict[str, Any] = json.loads((FIXTURES / "record-updated.json").read_text(encoding="utf-8"))
    return document


def element(event_type: str = "record.updated", **ids: Any) -> dict[str, Any]:
    """The sample's event with another type and some of its ids replaced (``None`` removes one)."""
    event: dict[str, Any] = copy.deepcopy(sample()["events"][0])
    event["event_type"] = event_type
    for name, value in ids.items():
        if value is None:
            del event["id"][name]
        else:
            event["id"][name] = value
    return event


def delivery(*events: Any) -> dict[str, Any]:
    return {"webhook_id": sample()["webhook_id"], "events": list(events)}


def source(people: str = PEOPLE) -> AttioSource:
    return AttioSource(AttioConfig(secret_id="x", people_object_id=people))


def request(
    body: bytes | dict[str, Any] | list[Any], *, key: str | None = DELIVERY, headers: dict[str, str] | None = None
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"content-type": "application/json", **({"idempotency-key": key} if key is not None else {})}
    return WebhookRequest("attio", "POST", URL, all_headers | (headers or {}), raw, NOW)


def parse(body: bytes | dict[str, Any] | list[Any], *, key: str | None = DELIVERY) -> list[SourceEvent]:
    return source().parse(request(body, key=key))


def assert_invalid(body: bytes | dict[str, Any] | list[Any], names: str) -> None:
    with pytest.raises(InvalidPayload, match=names) as caught:
        parse(body)
    assert PLANTED not in caught.value.message


# --- the documented sample --------------------------------------------------------------------------------------


def test_the_documented_record_update_of_a_person_asks_for_a_read_of_that_record() -> None:
    # Given Attio's documented record.updated, its object configured as the people object
    # When it is parsed
    [event] = parse(sample())

    # Then it names the person (workspace and record), carries no value, and asks deliver to read the record
    assert event == SourceEvent(
        key=f"{DELIVERY}:0",
        event_id=f"{DELIVERY}:0",
        contact_id=f"{WORKSPACE}:{RECORD}",
        occurred_at=NOW_MS,
        kind="record.updated",
        read=ReadCause.THIN,
    )
    assert event.changes == {}
    assert event.settled is None


def test_a_created_person_asks_for_a_read_too() -> None:
    [event] = parse(delivery(element("record.created")))
    assert (event.kind, event.read, event.settled) == ("record.created", ReadCause.THIN, None)


def test_the_people_object_id_is_compared_without_regard_to_case() -> None:
    # Given the object id sent in capitals
    [event] = parse(delivery(element(object_id=PEOPLE.upper())))

    # Then it is still the people object
    assert event.read is ReadCause.THIN


# --- dedup keys and times -----------------------------------------------------------------------------------------


def test_each_event_is_keyed_by_the_idempotency_key_and_its_position() -> None:
    # Given a delivery of three people's updates
    others = ("0b5e5a9c-0000-4000-8000-000000000002", "0b5e5a9c-0000-4000-8000-000000000003")
    body = delivery(element(), element(record_id=others[0]), element(record_id=others[1]))

    # When it is parsed, and parsed again as Attio's retry (same Idempotency-Key)
    first, retry = parse(body), parse(body)

    # Then each event is keyed and named by the key and its index, the same each time
    assert [event.key for event in first] == [f"{DELIVERY}:{index}" for index in range(3)]
    assert [event.event_id for event in first] == [event.key for event in first]
    assert [event.contact_id for event in first] == [f"{WORKSPACE}:{record}" for record in (RECORD, *others)]
    assert retry == first


def test_another_delivery_of_the_same_body_is_another_event() -> None:
    # Given the same body delivered twice by Attio (two deliveries, two Idempotency-Keys)
    [first] = parse(sample(), key=DELIVERY)
    [second] = parse(sample(), key="another-delivery")

    # Then they are two events
    assert first.key != second.key


def test_without_the_header_a_digest_of_the_canonical_body_keys_the_events() -> None:
    # Given the sample without Idempotency-Key, once compact and once spaced out with its keys in another order
    compact = json.dumps(sample(), separators=(",", ":")).encode()
    spaced = json.dumps(sample(), indent=4, sort_keys=True).encode()

    # When parsed
    [first], [second] = parse(compact, key=None), parse(spaced, key=None)

    # Then both are keyed by the digest of the canonical body, so a retry is a duplicate however it is written
    digest = hashlib.sha256(canonical_json(sample()).encode()).hexdigest()
    assert first.key == second.key == f"body-sha256-{digest}:0"
    assert first.event_id == first.key


def test_the_idempotency_key_is_trimmed() -> None:
    [event] = parse(sample(), key=f"  {DELIVERY} ")
    assert event.key == f"{DELIVERY}:0"


@pytest.mark.parametrize(
    "key", ["", "   ", "with space", "caf\u00e9", "x" * 201, "tab\tinside"], ids=lambda key: repr(key)[:12]
)
def test_an_idempotency_key_that_is_not_short_visible_ascii_is_an_invalid_payload(key: str) -> None:
    # Given a header Attio would not send
    # When parsed, Then the request is refused (400) naming the header, not its value
    with pytest.raises(InvalidPayload, match="Idempotency-Key header must be") as caught:
        parse(sample(), key=key)
    assert key.strip() not in caught.value.message or not key.strip()


def test_the_longest_idempotency_key_still_makes_a_valid_event() -> None:
    [event] = parse(sample(), key="k" * 200)
    assert event.key == "k" * 200 + ":0"


def test_an_event_is_dated_by_the_requests_arrival() -> None:
    # Given Attio's event, which holds no change time
    # Then its time is when the request arrived (the read dates the values by the record's modification)
    assert [event.occurred_at for event in parse(delivery(element(), element("record.deleted")))] == [NOW_MS] * 2


# --- ignored ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["record.updated", "record.created", "record.deleted"])
def test_records_of_other_objects_are_ignored(event_type: str) -> None:
    # Given a company's record event
    [event] = parse(delivery(element(event_type, object_id="c0a2b6e1-7a51-4b0e-9b7e-0c0a7f1e2d3c")))

    # Then it is settled ignored, asking for no read
    assert (event.settled, event.read) == (Status.IGNORED, None)
    assert event.reason == "the record is not of the people object"
    assert event.contact_id == f"{WORKSPACE}:{RECORD}"


def test_a_deleted_person_is_ignored() -> None:
    [event] = parse(delivery(element("record.deleted")))
    assert (event.settled, event.read, event.reason) == (Status.IGNORED, None, "record.deleted events carry no values")


def test_a_merge_is_ignored_for_now_saying_the_read_will_handle_it() -> None:
    # Given two people merged
    [event] = parse(delivery(element("record.merged")))

    # Then it is ignored, and the reason says a merge is left to the read of the record
    assert (event.settled, event.read) == (Status.IGNORED, None)
    assert event.reason is not None
    assert "merge will be handled with the read" in event.reason


@pytest.mark.parametrize(
    ("event_type", "ids"),
    [
        ("note.created", {"workspace_id": WORKSPACE, "note_id": "n1"}),
        ("task.updated", {"workspace_id": WORKSPACE, "task_id": "t1"}),
        ("list-entry.updated", {"workspace_id": WORKSPACE, "list_id": "l1", "entry_id": "e1"}),
    ],
)
def test_events_that_are_not_about_records_are_ignored(event_type: str, ids: dict[str, str]) -> None:
    # Given an event naming a note, a task or a list entry
    [event] = parse(delivery({"event_type": event_type, "id": ids, "actor": {"type": "system"}}))

    # Then it is ignored, under no contact
    assert (event.settled, event.kind, event.contact_id) == (Status.IGNORED, event_type, UNKNOWN_CONTACT)
    assert event.reason == f"{event_type} events are not about a person"


# --- refused elements and invalid bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "reason", "contact"),
    [
        (PLANTED, "an Attio event must be a JSON object", UNKNOWN_CONTACT),
        ({"id": {"workspace_id": WORKSPACE}}, "event_type: Field required", UNKNOWN_CONTACT),
        (element(workspace_id=None), "id.workspace_id: Field required", UNKNOWN_CONTACT),
        (element(record_id=None), "names no object_id and record_id", UNKNOWN_CONTACT),
        (element(object_id=None), "names no object_id and record_id", f"{WORKSPACE}:{RECORD}"),
        (element(record_id="has space"), "id.record_id: String should match pattern", UNKNOWN_CONTACT),
        ({**element(), "id": PLANTED}, "id: Input should be a valid dictionary", UNKNOWN_CONTACT),
        (
            {**element(), "event_type": ""},
            "event_type: String should have at least 1 character",
            f"{WORKSPACE}:{RECORD}",
        ),
    ],
    ids=[
        "not an object",
        "no type",
        "no workspace",
        "no record",
        "no object",
        "bad record id",
        "id text",
        "empty type",
    ],
)
def test_a_malformed_element_is_refused_on_its_own_and_the_others_go_on(broken: Any, reason: str, contact: str) -> None:
    # Given a delivery whose second element is malformed
    events = parse(delivery(element(), broken, element("record.created")))

    # Then it is settled refused with a reason naming the field, never a value, and the others go on
    first, refused, third = events
    assert (first.read, third.read) == (ReadCause.THIN, ReadCause.THIN)
    assert refused.settled is Status.REFUSED
    assert refused.reason is not None
    assert reason in refused.reason
    assert PLANTED not in refused.reason
    assert (refused.key, refused.event_id, refused.contact_id) == (f"{DELIVERY}:1", f"{DELIVERY}:1", contact)


def test_a_value_that_cannot_be_carried_refuses_only_its_element() -> None:
    # Given a lone surrogate in the second element's record id, and a repeated key in the third's id
    text = json.dumps(delivery(element(), element(record_id="X"), element())).replace('"X"', '"\\ud800"')
    text = text[::-1].replace('"workspace_id"'[::-1], '"workspace_id": "a", "workspace_id"'[::-1], 1)[::-1]

    # When parsed
    first, surrogate, repeated = parse(text.encode())

    # Then only those two are refused, naming the problem
    assert first.read is ReadCause.THIN
    assert surrogate.settled is Status.REFUSED
    assert "lone surrogate" in (surrogate.reason or "")
    assert repeated.settled is Status.REFUSED
    assert "appears twice" in (repeated.reason or "")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"webhook_id": "w", "events": [', "not valid JSON"),
        (b"", "empty"),
        ([sample()], "must be a JSON object"),
        ({"webhook_id": "w"}, "events: Field required"),
        ({"events": [element()]}, "webhook_id: Field required"),
        ({"webhook_id": "w", "events": []}, "events: List should have at least 1 item"),
        ({"webhook_id": "w", "events": element()}, "events: Input should be a valid list"),
        ({"webhook_id": PLANTED + " x", "events": [element()]}, "webhook_id: String should match"),
        ({"webhook_id": "w", "events": [element()] * (MAX_EVENTS + 1)}, "events: List should have at most 100"),
    ],
    ids=["truncated", "empty", "array", "no events", "no webhook_id", "no event", "events object", "bad id", "101"],
)
def test_a_body_that_is_not_an_attio_delivery_is_an_invalid_payload(body: Any, names: str) -> None:
    assert_invalid(body, names)


def test_a_delivery_of_the_most_events_is_read_whole() -> None:
    events = parse(delivery(*[element()] * MAX_EVENTS))
    assert [event.key for event in events] == [f"{DELIVERY}:{index}" for index in range(MAX_EVENTS)]


def test_the_longest_ids_accepted_still_make_a_valid_event() -> None:
    # Given ids of 120 visible characters each
    [event] = parse(delivery(element(workspace_id="w" * 120, record_id="r" * 120)))

    # Then the contact id of both fits
    assert event.contact_id == "w" * 120 + ":" + "r" * 120


# --- signature, media type, answer, settings -----------------------------------------------------------------


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"attio-signature": sign_attio(secret=secret, body=body)}


def test_the_sample_signed_with_any_configured_secret_is_authentic() -> None:
    # Given the sample signed with the rotated secret
    body = (FIXTURES / "record-updated.json").read_bytes()
    signed_request = request(body, headers=signed(body, OTHER_SECRET))

    # Then both secrets configured accept it, the old one alone does not
    source().verify(signed_request, [SECRET, OTHER_SECRET])
    with pytest.raises(SignatureError, match="Attio-Signature does not match"):
        source().verify(signed_request, [SECRET])


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Attio-Signature"),
        (signed(b"{}"), "does not match"),
        ({"attio-signature": "zz"}, "does not match"),
    ],
    ids=["missing", "another body", "not hex"],
)
def test_a_missing_or_wrong_signature_is_refused(headers: dict[str, str], message: str) -> None:
    body = (FIXTURES / "record-updated.json").read_bytes()
    with pytest.raises(SignatureError, match=message):
        source().verify(request(body, headers=headers), [SECRET])


def test_no_configured_secret_refuses_every_request() -> None:
    body = b"{}"
    with pytest.raises(SignatureError, match="no verification secret"):
        source().verify(request(body, headers=signed(body)), [])


def test_media_type_must_be_json() -> None:
    with pytest.raises(UnsupportedMediaType):
        source().check_media_type(request(b"{}", headers={"content-type": "text/plain"}))
    source().check_media_type(request(b"{}", headers={"content-type": "application/json; charset=utf-8"}))


def test_answers_are_json() -> None:
    ok = source().answer(202, {"accepted": [f"{DELIVERY}:0"], "duplicates": []})
    error = source().answer(401, {"error": {"code": "invalid_signature", "message": "missing Attio-Signature"}})
    assert (ok.status, ok.content_type, json.loads(ok.body)) == (
        202,
        "application/json",
        {"accepted": [f"{DELIVERY}:0"], "duplicates": []},
    )
    assert (error.status, json.loads(error.body)["error"]["message"]) == (401, "missing Attio-Signature")


def test_settings_come_from_attio_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables the template sets
    monkeypatch.setenv("ATTIO_SECRET_ID", "arn:secret")
    monkeypatch.setenv("ATTIO_PEOPLE_OBJECT_ID", PEOPLE)

    # Then the source reads them
    built = build()
    assert (built.secret_id, built.config.people_object_id) == ("arn:secret", PEOPLE)


@pytest.mark.parametrize("people", [None, "", "people", PEOPLE[:-1], PEOPLE + "0", PEOPLE.replace("-", "")])
def test_settings_need_the_people_object_id_as_a_uuid(monkeypatch: pytest.MonkeyPatch, people: str | None) -> None:
    # Given no people object id, the object's slug, or something that is not a UUID
    monkeypatch.setenv("ATTIO_SECRET_ID", "arn:secret")
    if people is not None:
        monkeypatch.setenv("ATTIO_PEOPLE_OBJECT_ID", people)

    # Then building the source fails
    with pytest.raises(ValidationError):
        build()
