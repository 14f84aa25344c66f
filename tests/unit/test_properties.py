"""Properties of every boundary that reads what a CRM (or an attacker) sends: any input gives a result or
the project's own error (``SignatureError``, ``InvalidPayload``, ``InvalidValue``), never another exception,
and what a source lets through can be queued and stored.

Deterministic (``derandomize``, no example database) and modest (200 examples each), so CI runs the same
few seconds every time.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from devstack.properties import (
    FIELD_TEXT,
    HEADER_VALUE,
    HOSTILE_TEXT,
    LONG_TEXT,
    NOW,
    NOW_MS,
    PROPERTY,
    REALISTIC,
    TIMESTAMP_VALUE,
    UNCARRIABLE,
    URL,
    assert_carriable,
    refused_or_none,
)
from webhook_adapter.errors import InvalidPayload, SignatureError
from webhook_adapter.merge import FieldState
from webhook_adapter.model import MAX_EPOCH_MS, ContactField
from webhook_adapter.normalize import (
    InvalidValue,
    Plan,
    normalize_country,
    normalize_email,
    normalize_phone,
    normalize_state,
    plan_request,
)
from webhook_adapter.signatures import (
    sign_hubspot_v3,
    sign_standard_webhook,
    verify_hubspot_legacy,
    verify_hubspot_v3,
    verify_standard_webhook,
)
from webhook_adapter.sources.base import (
    MAX_INTEGER_DIGITS,
    Unusable,
    WebhookRequest,
    first_unusable,
    parse_json,
)
from webhook_adapter.sources.generic import GenericConfig, GenericSource
from webhook_adapter.sources.hubspot import HubSpotConfig, HubSpotSource

HOSTILE_SCALAR = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 65, "-" + "9" * 4301, "1" * 5000 + ".5"]),
    st.sampled_from(['"\\ud800"', '"\\udfff\\ud800"', '"\\uffff"', "true", "-0", "0.0e-999"]),
    HOSTILE_TEXT.map(json.dumps),  # json.dumps escapes a lone surrogate as \udXXX: valid JSON, unencodable text
)
"""A JSON scalar (or almost) that must not get through as it is."""
PLAIN_SCALAR = st.one_of(
    st.one_of(st.sampled_from(REALISTIC), st.text(max_size=24), LONG_TEXT).map(json.dumps),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.just("null"),
)
"""A JSON scalar a source must read: realistic values, any text, text around the cap, numbers, null."""
SCALAR_TEXT = PLAIN_SCALAR | HOSTILE_SCALAR
"""One JSON scalar as text, valid or hostile."""


def json_text(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """JSON (and almost-JSON) text: nested arrays and objects whose keys, repeats included, come from ``keys``."""
    return st.recursive(
        SCALAR_TEXT,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(keys, children), max_size=5).map(json_object),
        ),
        max_leaves=12,
    )


def json_object(pairs: list[tuple[str, str]]) -> str:
    """A JSON object's text from keys and the JSON text of their values (a key may repeat)."""
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in pairs) + "}"


def as_body(text: str) -> bytes:
    """The text's bytes; a raw lone surrogate becomes bytes that are not UTF-8 (as a broken sender's would be)."""
    return text.encode("utf-8", "surrogatepass")


HUBSPOT_KEYS = [
    "eventId",
    "portalId",
    "objectId",
    "occurredAt",
    "subscriptionType",
    "eventType",
    "objectTypeId",
    "propertyName",
    "propertyValue",
    "attemptNumber",
]
HUBSPOT_VALUE = st.one_of(
    SCALAR_TEXT,
    json_text(st.sampled_from(HUBSPOT_KEYS) | HOSTILE_TEXT),
    st.integers(-1, 2 * MAX_EPOCH_MS).map(str),
    st.sampled_from(["contact.propertyChange", "object.propertyChange", "contact.creation", "0-1", "0-2"]).map(
        json.dumps
    ),
)
"""What a HubSpot event's field may hold."""
PROPERTY_NAMES = ["email", "phone", "mobilephone", "city", "zip", "country", "sphere_customer_id", "firstname"]


@st.composite
def hubspot_element(draw: st.DrawFn) -> str:
    """One element of a batch: a property change with any value, perhaps a field dropped, replaced or repeated."""
    if draw(st.integers(0, 5)) == 0:
        return draw(json_text(st.sampled_from(HUBSPOT_KEYS)))
    fields = [
        ("eventId", str(draw(st.integers(0, 10**6)))),
        ("portalId", "62515"),
        ("objectId", str(draw(st.integers(1, 3)))),
        ("occurredAt", str(NOW_MS - draw(st.integers(0, 10**6)))),
        ("subscriptionType", json.dumps("contact.propertyChange")),
        ("attemptNumber", "0"),
        ("propertyName", json.dumps(draw(st.sampled_from(PROPERTY_NAMES)))),
        ("propertyValue", draw(PLAIN_SCALAR)),
    ]
    match draw(st.integers(0, 3)):
        case 0:
            del fields[draw(st.integers(0, len(fields) - 1))]
        case 1:
            fields[draw(st.integers(0, len(fields) - 1))] = (draw(st.sampled_from(HUBSPOT_KEYS)), draw(HUBSPOT_VALUE))
        case 2:
            fields.append((draw(st.sampled_from(HUBSPOT_KEYS)), draw(HUBSPOT_VALUE)))
    return json_object(fields)


HUBSPOT_BODY = st.one_of(
    st.lists(hubspot_element(), max_size=5).map(lambda items: "[" + ",".join(items) + "]").map(as_body),
    st.lists(hubspot_element(), max_size=5).map(lambda items: "[" + ",".join(items) + "]").map(as_body),
    json_text(st.sampled_from(HUBSPOT_KEYS)).map(as_body),
    st.binary(max_size=64),
)
"""Mostly batches of HubSpot events with hostile fields; sometimes any JSON, or any bytes."""

GENERIC_PATHS = ["sphereCustomerId", "email", "phone", "mobilePhone"]
ADDRESS_KEYS = ["line1", "line2", "city", "state", "postalCode", "country"]
UPDATED_AT = st.one_of(
    st.sampled_from(["2024-05-08T21:18:21.896Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59"]).map(
        json.dumps
    ),
    st.integers(0, MAX_EPOCH_MS).map(str),
    st.floats(0, 2e11).map(json.dumps),
)
"""A change time: ISO text (at the calendar's edges too), epoch seconds or milliseconds."""


@st.composite
def generic_body(draw: st.DrawFn) -> bytes:
    """A contact document with any values at the mapped paths, sometimes hostile (or no document at all)."""
    if draw(st.integers(0, 5)) == 0:
        return draw(json_text(st.sampled_from(["id", "address", *GENERIC_PATHS])).map(as_body) | st.binary(max_size=64))
    fields: list[tuple[str, str]] = [("id", json.dumps("contact-7") if draw(st.integers(0, 5)) else draw(SCALAR_TEXT))]
    if draw(st.booleans()):
        fields.append(("updatedAt", draw(UPDATED_AT | SCALAR_TEXT if draw(st.integers(0, 3)) == 0 else UPDATED_AT)))
    fields += draw(
        st.lists(st.tuples(st.sampled_from(GENERIC_PATHS), PLAIN_SCALAR), max_size=3, unique_by=lambda f: f[0])
    )
    address = draw(
        st.lists(st.tuples(st.sampled_from(ADDRESS_KEYS), PLAIN_SCALAR), max_size=4, unique_by=lambda f: f[0])
    )
    if address:
        fields.append(("address", json_object(address)))
    if draw(st.integers(0, 4)) == 0:  # one hostile value, even where nothing is read
        fields.append(draw(st.tuples(st.sampled_from(["id", "email", "address", "other"]), HOSTILE_SCALAR)))
    return as_body(json_object(fields))


# ---------------------------------------------------------------------------------------------- helpers


def webhook_request(source: str, body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(source=source, method="POST", url=URL, headers=headers, body=body, received_at=NOW)


# ------------------------------------------------------------------------------------------- signatures


@PROPERTY
@given(
    secret=HOSTILE_TEXT,
    method=st.just("POST") | HOSTILE_TEXT,
    uri=st.just(URL) | HOSTILE_TEXT.map(lambda query: f"{URL}?{query}"),
    body=st.binary(max_size=64),
    signature=st.none() | HEADER_VALUE,
    timestamp=st.none() | TIMESTAMP_VALUE | HEADER_VALUE,
)
@example(secret="s", method="POST", uri=URL, body=b"", signature="x", timestamp="1" * 310)  # was an OverflowError
@example(secret="s", method="POST", uri=URL, body=b"", signature="\ud800", timestamp=str(NOW_MS))  # was a 500
@example(secret="s", method="POST", uri=URL + "?\udfff", body=b"", signature="x", timestamp=str(NOW_MS))
def test_verify_hubspot_v3_answers_any_request_with_none_or_a_signature_error(
    secret: str, method: str, uri: str, body: bytes, signature: str | None, timestamp: str | None
) -> None:
    # Given any secret, method, URI, body, signature and timestamp
    # When verified, Then it is accepted or refused as a SignatureError, never another exception
    refused_or_none(
        lambda: verify_hubspot_v3(
            secret=secret, method=method, uri=uri, body=body, signature=signature, timestamp=timestamp, now=NOW
        ),
        SignatureError,
    )


@PROPERTY
@given(
    secret=HOSTILE_TEXT,
    version=st.none() | HEADER_VALUE | st.sampled_from(["v1", "V2"]),
    uri=st.just(URL) | HOSTILE_TEXT.map(lambda query: f"{URL}?{query}"),
    body=st.binary(max_size=64),
    signature=st.none() | HEADER_VALUE,
)
@example(secret="s", version="v1", uri=URL, body=b"", signature="\ud800")  # was a UnicodeEncodeError
def test_verify_hubspot_legacy_answers_any_request_with_none_or_a_signature_error(
    secret: str, version: str | None, uri: str, body: bytes, signature: str | None
) -> None:
    refused_or_none(
        lambda: verify_hubspot_legacy(
            secret=secret, version=version, method="POST", uri=uri, body=body, signature=signature
        ),
        SignatureError,
    )


STANDARD_SECRET = st.binary(min_size=1, max_size=32).map(lambda key: "whsec_" + base64.b64encode(key).decode())


@PROPERTY
@given(
    secrets=st.lists(HOSTILE_TEXT | STANDARD_SECRET, max_size=3),
    msg_id=st.none() | HEADER_VALUE,
    timestamp=st.none() | TIMESTAMP_VALUE | HEADER_VALUE,
    signature_header=st.none() | HEADER_VALUE | HEADER_VALUE.map(lambda value: "v1," + value),
    body=st.binary(max_size=64),
)
@example(secrets=["whsec_c2VjcmV0"], msg_id="m", timestamp="1" * 4301, signature_header="v1,x", body=b"")
@example(secrets=["whsec_c2VjcmV0"], msg_id="\ud800", timestamp=str(int(NOW)), signature_header="v1,x", body=b"")
def test_verify_standard_webhook_answers_any_request_with_none_or_a_signature_error(
    secrets: list[str], msg_id: str | None, timestamp: str | None, signature_header: str | None, body: bytes
) -> None:
    refused_or_none(
        lambda: verify_standard_webhook(
            secrets=secrets, msg_id=msg_id, timestamp=timestamp, signature_header=signature_header, body=body, now=NOW
        ),
        SignatureError,
    )


@PROPERTY
@given(
    secret=st.text(min_size=1),
    method=st.sampled_from(["POST", "post", "Put"]),
    uri=st.text(),
    body=st.binary(),
    offset_ms=st.integers(-300_000, 300_000),
)
def test_a_request_signed_with_sign_hubspot_v3_verifies(
    secret: str, method: str, uri: str, body: bytes, offset_ms: int
) -> None:
    # Given a request signed with sign_hubspot_v3 within the tolerance
    timestamp = str(NOW_MS + offset_ms)
    signature = sign_hubspot_v3(secret=secret, method=method, uri=uri, body=body, timestamp=timestamp)

    # When verified, Then it is accepted
    verify_hubspot_v3(
        secret=secret, method=method, uri=uri, body=body, signature=signature, timestamp=timestamp, now=NOW
    )


@PROPERTY
@given(
    secret=STANDARD_SECRET,
    others=st.lists(HOSTILE_TEXT | STANDARD_SECRET, max_size=2),
    msg_id=st.text(min_size=1),
    body=st.binary(),
    offset=st.integers(-300, 300),
)
def test_a_request_signed_with_sign_standard_webhook_verifies_among_other_secrets(
    secret: str, others: list[str], msg_id: str, body: bytes, offset: int
) -> None:
    # Given a message signed with one secret, verified while other (even malformed) secrets are configured
    timestamp = str(int(NOW) + offset)
    header = sign_standard_webhook(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)

    # When verified, Then it is accepted
    verify_standard_webhook(
        secrets=[*others, secret], msg_id=msg_id, timestamp=timestamp, signature_header=header, body=body, now=NOW
    )


# ------------------------------------------------------------------------------------------- parse_json


def assert_only_carriable_values(document: Any) -> None:
    """Every value is a JSON type that can travel on, or a marker: bounded ints, finite floats, carriable text."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            assert not UNCARRIABLE.search(node)
        elif isinstance(node, float):
            assert math.isfinite(node)
        elif isinstance(node, int) and not isinstance(node, bool):
            assert len(str(abs(node))) <= MAX_INTEGER_DIGITS
        else:
            assert node is None or isinstance(node, (bool, Unusable))


@PROPERTY
@given(body=st.one_of(json_text(HOSTILE_TEXT).map(as_body), st.binary(max_size=128)))
def test_parse_json_reads_any_body_into_carriable_values_or_an_invalid_payload(body: bytes) -> None:
    # Given any body, JSON or not
    # When parsed, Then it is an invalid payload, or a document whose values can all travel on (or are markers)
    document = refused_or_none(lambda: parse_json(body), InvalidPayload)
    assert_only_carriable_values(document)


# ---------------------------------------------------------------------------------------------- sources

HUBSPOT = HubSpotSource(HubSpotConfig(secret_id="x", legacy_signatures=True))
GENERIC = GenericSource(GenericConfig(secret_id="x"))


@PROPERTY
@given(body=HUBSPOT_BODY)
def test_hubspot_parse_reads_any_body_into_carriable_events_or_an_invalid_payload(body: bytes) -> None:
    # Given any body, mostly batches of events with hostile fields
    # When parsed
    events = refused_or_none(
        lambda: HUBSPOT.parse(webhook_request("hubspot", body, {"content-type": "application/json"})), InvalidPayload
    )

    # Then the batch was refused, or every element became one event that can be queued and stored
    if events is not None:
        batch = parse_json(body)
        assert len(events) == len(batch)
        assert_carriable(events)


@PROPERTY
@given(
    body=generic_body(),
    webhook_id=st.integers(0, 3).flatmap(lambda pick: HEADER_VALUE if pick == 0 else st.just("msg_0001")),
    webhook_timestamp=TIMESTAMP_VALUE | HEADER_VALUE,
)
def test_generic_parse_reads_any_body_and_headers_into_a_carriable_event_or_an_invalid_payload(
    body: bytes, webhook_id: str, webhook_timestamp: str
) -> None:
    # Given any body and any webhook-id and webhook-timestamp
    headers = {"webhook-id": webhook_id, "webhook-timestamp": webhook_timestamp}

    # When parsed
    events = refused_or_none(lambda: GENERIC.parse(webhook_request("generic", body, headers)), InvalidPayload)

    # Then the request was refused, or it is one event that can be queued and stored, from a body without markers
    if events is not None:
        assert len(events) == 1
        assert first_unusable(parse_json(body)) is None
        assert_carriable(events)


HUBSPOT_HEADERS = [
    "content-type",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-hubspot-signature",
    "x-hubspot-signature-version",
]
GENERIC_HEADERS = ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature"]


@PROPERTY
@given(
    headers=st.dictionaries(st.sampled_from(HUBSPOT_HEADERS), HEADER_VALUE),
    secrets=st.lists(HOSTILE_TEXT, max_size=3),
    body=st.binary(max_size=64),
)
def test_hubspot_verify_answers_any_headers_with_none_or_a_signature_error(
    headers: dict[str, str], secrets: list[str], body: bytes
) -> None:
    refused_or_none(lambda: HUBSPOT.verify(webhook_request("hubspot", body, headers), secrets), SignatureError)


@PROPERTY
@given(
    headers=st.dictionaries(st.sampled_from(GENERIC_HEADERS), HEADER_VALUE),
    secrets=st.lists(HOSTILE_TEXT | STANDARD_SECRET, max_size=3),
    body=st.binary(max_size=64),
)
def test_generic_verify_answers_any_headers_with_none_or_a_signature_error(
    headers: dict[str, str], secrets: list[str], body: bytes
) -> None:
    refused_or_none(lambda: GENERIC.verify(webhook_request("generic", body, headers), secrets), SignatureError)


# ------------------------------------------------------------------------------------------ normalizers

REGION = st.sampled_from(["US", "GB", "DE", "BR", "ZZ", "001", ""]) | HOSTILE_TEXT
COUNTRY = st.sampled_from(["USA", "CAN", "BRA", "AUS", "MEX", "DEU", "GBR", "ATA", "usa", ""]) | HOSTILE_TEXT


@PROPERTY
@given(value=FIELD_TEXT, region=REGION)
def test_normalize_phone_answers_any_text_with_e164_or_an_invalid_value(value: str, region: str) -> None:
    phone = refused_or_none(lambda: normalize_phone(value, region), InvalidValue)
    assert phone is None or re.fullmatch(r"\+[1-9][0-9]{1,14}", phone)


@PROPERTY
@given(value=FIELD_TEXT)
def test_normalize_country_answers_any_text_with_an_alpha3_code_or_an_invalid_value(value: str) -> None:
    country = refused_or_none(lambda: normalize_country(value), InvalidValue)
    assert country is None or re.fullmatch(r"[A-Z]{3}", country)


@PROPERTY
@given(value=FIELD_TEXT, country=COUNTRY)
@example(value="IL", country="XYZ")  # found by this property: an unknown country raised AttributeError
def test_normalize_state_answers_any_text_and_country_with_a_code_or_an_invalid_value(value: str, country: str) -> None:
    state = refused_or_none(lambda: normalize_state(value, country), InvalidValue)
    assert state is None or (0 < len(state) <= 3 and state.isascii())


@PROPERTY
@given(value=FIELD_TEXT)
def test_normalize_email_answers_any_text_with_an_address_or_an_invalid_value(value: str) -> None:
    email = refused_or_none(lambda: normalize_email(value), InvalidValue)
    assert email is None or "@" in email


@PROPERTY
@given(
    fields=st.dictionaries(
        st.sampled_from(ContactField),
        st.builds(
            FieldState,
            value=st.none() | FIELD_TEXT,
            occurred_at=st.integers(0, MAX_EPOCH_MS - 1),
            event=st.text(max_size=8),
        ),
    ),
    region=REGION,
    countries=st.frozensets(COUNTRY, max_size=3),
)
def test_plan_request_plans_any_fields_without_raising(
    fields: dict[ContactField, FieldState], region: str, countries: frozenset[str]
) -> None:
    # Given any known values of a contact, any default region and any countries requiring a state
    # When planned
    plan = plan_request(fields, default_region=region, countries_requiring_state=countries)

    # Then it is a plan whose request body is JSON
    assert isinstance(plan, Plan)
    json.dumps(plan.changes_since({}))
    assert set(plan.desired).isdisjoint(plan.problems)
