"""Keap source: endpoint token, the X-Hook-Secret handshake, contact ids into events that ask for a read, dedup keys."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import ValidationError

from webhook_adapter.errors import CredentialsError, InvalidPayload, UnsupportedMediaType
from webhook_adapter.model import ReadCause, SourceEvent, Status
from webhook_adapter.sources.base import WebhookRequest
from webhook_adapter.sources.keap import MAX_OBJECT_KEYS, UNKNOWN_CONTACT, KeapConfig, KeapSource, build

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keap"
NOW = 1_700_000_000.0
NOW_MS = 1_700_000_000_000
URL = "https://hooks.example.test/webhooks/keap"
TOKEN = "keap-endpoint-token-0001"
OTHER_TOKEN = "keap-endpoint-token-0002"
SAMPLE_STAMP = "2026-11-26T04:54:30.000Z"
SAMPLE_MS = 1_795_668_870_000
"""``SAMPLE_STAMP`` in epoch milliseconds."""
PLANTED = "planted-4e7a1-value"
"""A recognisable value that must never come back in an error message."""


def sample() -> dict[str, Any]:
    """The documented delivery with its placeholders filled (``tests/fixtures/keap``)."""
    document: dict[str, Any] = json.loads((FIXTURES / "contact-edit.json").read_text(encoding="utf-8"))
    return document


def key(contact: Any = 12345, stamp: Any = SAMPLE_STAMP) -> dict[str, Any]:
    """An ``object_keys`` element like the sample's (``None`` leaves a part out)."""
    element: dict[str, Any] = copy.deepcopy(sample()["object_keys"][0])
    for name, value in (("id", contact), ("timestamp", stamp)):
        if value is None:
            del element[name]
        else:
            element[name] = value
    return element


def delivery(*keys: Any, event_key: str = "contact.edit", object_type: str = "contact") -> dict[str, Any]:
    return {"event_key": event_key, "object_type": object_type, "object_keys": list(keys), "api_url": ""}


def source() -> KeapSource:
    return KeapSource(KeapConfig(secret_id="x"))


def request(
    body: bytes | dict[str, Any] | list[Any], *, query: str = f"token={TOKEN}", headers: dict[str, str] | None = None
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = URL + (f"?{query}" if query else "")
    return WebhookRequest("keap", "POST", url, {"content-type": "application/json"} | (headers or {}), raw, NOW)


def parse(body: bytes | dict[str, Any] | list[Any]) -> list[SourceEvent]:
    return source().parse(request(body))


# --- the documented delivery ------------------------------------------------------------------------------------


def test_the_documented_contact_edit_asks_for_a_read_of_that_contact() -> None:
    # Given Keap's documented delivery: contact 12345 edited
    # When it is parsed
    [event] = parse(sample())

    # Then it names the contact, is dated by its timestamp, carries no value, and asks deliver to read the contact
    key_text = f"contact.edit:12345:{SAMPLE_STAMP}"
    assert event == SourceEvent(
        key=key_text,
        event_id=key_text,
        contact_id="12345",
        occurred_at=SAMPLE_MS,
        kind="contact.edit",
        read=ReadCause.THIN,
    )
    assert event.changes == {}


def test_an_added_contact_asks_for_a_read_too() -> None:
    [event] = parse(delivery(key(), event_key="contact.add"))
    assert (event.kind, event.read, event.settled) == ("contact.add", ReadCause.THIN, None)


def test_a_batch_gives_one_event_per_contact_in_order() -> None:
    # Given one delivery naming three contacts
    events = parse(delivery(key(1), key(2, "2026-11-26T04:54:31.000Z"), key(3, "2026-11-26T04:54:32+01:00")))

    # Then each is its own event, dated by its own timestamp (any zone)
    assert [event.contact_id for event in events] == ["1", "2", "3"]
    assert [event.occurred_at for event in events] == [SAMPLE_MS, SAMPLE_MS + 1000, SAMPLE_MS + 2000 - 3_600_000]


def test_the_dedup_key_is_the_same_on_keaps_retry_and_differs_for_a_later_change() -> None:
    # Given the sample parsed twice (Keap's retry sends the same body), and a later edit of the same contact
    first, retry = parse(sample()), parse(sample())
    [later] = parse(delivery(key(stamp="2026-11-26T05:00:00.000Z")))

    # Then the retry's key is the same, the later change's is another
    assert retry == first
    assert later.key != first[0].key


@pytest.mark.parametrize("stamp", ["2026-11-26T04:54:30Z", "2026-11-26T04:54:30.000+0000", "2026-11-26T04:54:30+00:00"])
def test_timestamps_in_each_iso_form_with_a_zone_date_the_change(stamp: str) -> None:
    [event] = parse(delivery(key(stamp=stamp)))
    assert event.occurred_at == SAMPLE_MS


def test_a_delivery_of_the_most_object_keys_is_read_whole() -> None:
    events = parse(delivery(*[key(index + 1) for index in range(MAX_OBJECT_KEYS)]))
    assert len(events) == MAX_OBJECT_KEYS


# --- ignored ------------------------------------------------------------------------------------------------------


def test_a_deleted_contact_is_ignored() -> None:
    [event] = parse(delivery(key(), event_key="contact.delete"))
    assert (event.settled, event.read, event.reason) == (Status.IGNORED, None, "contact.delete events carry no values")
    assert event.contact_id == "12345"


@pytest.mark.parametrize(("event_key", "object_type"), [("opportunity.add", "opportunity"), ("order.edit", "order")])
def test_other_objects_are_ignored(event_key: str, object_type: str) -> None:
    [event] = parse(delivery(key(), event_key=event_key, object_type=object_type))
    assert (event.settled, event.read, event.reason) == (
        Status.IGNORED,
        None,
        f"{object_type} objects are not contacts",
    )


# --- refused elements and invalid bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "reason", "contact"),
    [
        (PLANTED, "Input should be a valid dictionary", UNKNOWN_CONTACT),
        (key(contact=None), "id: Field required", UNKNOWN_CONTACT),
        (key(contact="12345"), "id: Input should be a valid integer", UNKNOWN_CONTACT),
        (key(contact=0), "id: Input should be greater than 0", UNKNOWN_CONTACT),
        (key(contact=True), "id: Input should be a valid integer", UNKNOWN_CONTACT),
        (key(stamp=None), "timestamp: Field required", "12345"),
        (key(stamp=PLANTED), "timestamp is not an ISO 8601 time with a zone", "12345"),
        (key(stamp="2026-11-26T04:54:30"), "timestamp is not an ISO 8601 time with a zone", "12345"),
    ],
    ids=["not an object", "no id", "id as text", "id zero", "id true", "no timestamp", "not a time", "no zone"],
)
def test_a_malformed_element_is_refused_on_its_own_and_the_others_go_on(broken: Any, reason: str, contact: str) -> None:
    # Given a delivery whose second element is malformed
    events = parse(delivery(key(1), broken, key(3)))

    # Then the others ask for reads, the broken one is refused saying why (never repeating a value)
    assert [event.read for event in events] == [ReadCause.THIN, None, ReadCause.THIN]
    refused = events[1]
    assert (refused.settled, refused.contact_id, refused.kind) == (Status.REFUSED, contact, "contact.edit")
    assert refused.reason is not None
    assert reason in refused.reason
    assert PLANTED not in refused.reason
    assert refused.occurred_at == NOW_MS
    # And Keap's retry of the same body finds the refusal under the same key
    assert parse(delivery(key(1), broken, key(3)))[1].key == refused.key


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"event_key": "contact.edit", "object_keys": [', "not valid JSON|JSON"),
        ([], "must be a JSON object"),
        ({"object_type": "contact", "object_keys": [key()]}, "event_key: Field required"),
        ({"event_key": "contact.edit", "object_keys": [key()]}, "object_type: Field required"),
        ({"event_key": "contact.edit", "object_type": "contact"}, "object_keys: Field required"),
        (delivery(), "object_keys: List should have at least 1 item"),
        ({**delivery(), "object_keys": key()}, "object_keys: Input should be a valid list"),
        (delivery(*[key()] * (MAX_OBJECT_KEYS + 1)), "object_keys: List should have at most 1000 items"),
        ({**delivery(key()), "event_key": PLANTED * 20}, "event_key: String should have at most 128 characters"),
    ],
    ids=[
        "not json",
        "array",
        "no event_key",
        "no object_type",
        "no object_keys",
        "none",
        "not a list",
        "too many",
        "long key",
    ],
)
def test_a_body_that_is_not_a_hook_delivery_is_an_invalid_payload(body: Any, names: str) -> None:
    with pytest.raises(InvalidPayload, match=names) as caught:
        parse(body)
    assert PLANTED not in caught.value.message


# --- endpoint token, handshake, media type, answers, settings --------------------------------------------------


def test_the_endpoint_token_may_be_any_configured_one() -> None:
    # Given the hook URL carrying the rotated token
    hook = request(sample(), query=f"token={OTHER_TOKEN}")

    # Then both tokens configured accept it, the old one alone does not
    source().verify(hook, [TOKEN, OTHER_TOKEN])
    with pytest.raises(CredentialsError, match=r"endpoint token \(\?token=\) does not match"):
        source().verify(hook, [TOKEN])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "missing endpoint token"),
        ("token=", "missing endpoint token"),
        ("other=1", "missing endpoint token"),
        (f"token={quote(PLANTED)}", "does not match"),
        (f"token={TOKEN}&token={TOKEN}", "must be given once"),
    ],
    ids=["no query", "empty", "another parameter", "wrong", "twice"],
)
def test_a_missing_wrong_or_repeated_endpoint_token_is_refused(query: str, message: str) -> None:
    with pytest.raises(CredentialsError, match=message) as caught:
        source().verify(request(sample(), query=query), [TOKEN])
    assert PLANTED not in caught.value.message


def test_no_configured_token_refuses_every_request() -> None:
    with pytest.raises(CredentialsError, match="no credential is configured"):
        source().verify(request(sample()), [])


def test_the_handshake_is_answered_200_echoing_x_hook_secret() -> None:
    # Given Keap's verification POST: no body, an X-Hook-Secret header (as API Gateway gives it, lower-cased)
    handshake = request(b"", headers={"x-hook-secret": " 4f6b0c2e9d1a7b3c "})

    # When the source is asked for the handshake's answer
    answer = source().handshake(handshake)

    # Then it is 200 with the same secret echoed (trimmed) in the X-Hook-Secret header
    assert answer is not None
    assert (answer.status, dict(answer.headers)) == (200, {"X-Hook-Secret": "4f6b0c2e9d1a7b3c"})
    assert json.loads(answer.body) == {"verified": True}


def test_a_delivery_is_no_handshake() -> None:
    assert source().handshake(request(sample())) is None


@pytest.mark.parametrize("secret", ["", "   ", "with space", "caf\u00e9", "x" * 513], ids=lambda s: repr(s)[:12])
def test_a_hook_secret_that_is_not_short_visible_ascii_is_an_invalid_payload(secret: str) -> None:
    with pytest.raises(InvalidPayload, match="X-Hook-Secret header must be") as caught:
        source().handshake(request(b"", headers={"x-hook-secret": secret}))
    assert secret.strip() not in caught.value.message or not secret.strip()


def test_media_type_must_be_json_except_for_the_handshake() -> None:
    # Given a delivery that is not JSON, and a handshake without a content type
    with pytest.raises(UnsupportedMediaType):
        source().check_media_type(request(b"{}", headers={"content-type": "text/plain"}))
    bare = WebhookRequest("keap", "POST", URL, {"x-hook-secret": "s"}, b"", NOW)

    # Then the delivery is refused (415), JSON with a charset and the handshake are not
    source().check_media_type(request(b"{}", headers={"content-type": "application/json; charset=utf-8"}))
    source().check_media_type(bare)


def test_answers_are_json() -> None:
    ok = source().answer(202, {"accepted": ["contact.edit:1:t"], "duplicates": []})
    error = source().answer(401, {"error": {"code": "invalid_credentials", "message": "missing endpoint token"}})
    assert (ok.status, ok.content_type, json.loads(ok.body)["accepted"]) == (
        202,
        "application/json",
        ["contact.edit:1:t"],
    )
    assert (error.status, json.loads(error.body)["error"]["message"]) == (401, "missing endpoint token")


def test_settings_come_from_keap_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEAP_SECRET_ID", "arn:secret")
    assert build().secret_id == "arn:secret"


@pytest.mark.parametrize("value", [None, ""])
def test_settings_need_the_secret_id(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    monkeypatch.delenv("KEAP_SECRET_ID", raising=False)
    if value is not None:
        monkeypatch.setenv("KEAP_SECRET_ID", value)
    with pytest.raises(ValidationError):
        build()
