"""Hostile input through the real receive handler: hundreds of requests per source, none answered 5xx.

Each case is one request as a CRM, a broken client or an attacker could send it: truncated or invalid
JSON, wrong types, huge or deeply nested bodies, huge numbers, ``NaN``/``Infinity``, repeated keys,
invalid UTF-8, lone surrogates, oversized values, CR/LF and NUL in headers, missing, repeated or
malformed signature headers, timestamps of any length, past and future, replayed signatures, base64
bodies and content-type variants. Most are properly signed so they reach the parser.

For every answer: never 5xx; its exact expected status; a 4xx is ``{"error": {"code", "message"}}``
whose message names the problem; a 202 lists a batch's bad events as settled; and no answer (nor any
item in the table) holds ``MARKER``, planted in the offending values and headers.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.lambda_events import LambdaContext, webhook_event
from devstack.pipeline import PUBLIC_BASE_URL, Answer, Pipeline
from devstack.resources import LOCAL_SECRETS, create_resources, function_environment
from devstack.sphere_standin import SphereStandIn
from devstack.vendors import VENDORS, VendorRequest, vendor
from webhook_adapter import runtime
from webhook_adapter.model import ContactField
from webhook_adapter.signatures import sign_hubspot_v3, sign_standard_webhook
from webhook_adapter.sources.base import MAX_VALUE_CHARS
from webhook_adapter.store import EventStore

MARKER = "HOSTILE-MARKER-5a7c"
"""Planted in offending values and headers: no answer, and nothing in the table, may hold it."""
HUBSPOT_URL = f"{PUBLIC_BASE_URL}/webhooks/hubspot"
HUBSPOT_SECRET = LOCAL_SECRETS["HubSpotSecretArn"]
GENERIC_SECRET = LOCAL_SECRETS["GenericSecretArn"]
JSON = "application/json"
CODES = {400: "invalid_payload", 401: "invalid_signature", 413: "body_too_large", 415: "unsupported_media_type"}
MAX_BODY_BYTES = 1_048_576
"""The template's ``MAX_BODY_BYTES``."""
_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}
_ids = itertools.count(10_000_000)
"""Fresh CRM event ids and webhook ids, so every accepted event is new."""


def next_id() -> int:
    return next(_ids)


def now_ms() -> int:
    """The wall clock in epoch milliseconds (the adapter checks signed timestamps against it)."""
    return int(time.time() * 1000)


# ------------------------------------------------------------------------------------------------ fixture


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    """One pipeline on moto for the whole module (hundreds of requests; setting up one per case would take minutes)."""
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        for name, value in _AWS_ENVIRONMENT.items():
            monkeypatch.setenv(name, value)
        # Set up before each test's clean_process: no endpoint left by an earlier test may reach moto's clients.
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        resources = create_resources(
            dynamodb=boto3.client("dynamodb"),
            sqs=boto3.client("sqs"),
            secretsmanager=boto3.client("secretsmanager"),
        )
        with SphereStandIn(token=LOCAL_SECRETS["SphereTokenSecretArn"], port=0) as standin:
            environment = {
                **function_environment(resources, "ReceiveFunction", PublicBaseUrl=PUBLIC_BASE_URL),
                **function_environment(resources, "DeliverFunction", SphereApiUrl=standin.base_url),
            }
            for name, value in environment.items():
                monkeypatch.setenv(name, value)
            runtime.reset()
            store = EventStore(boto3.client("dynamodb"), resources.table_name, 90)
            yield Pipeline(resources, standin, boto3.client("sqs"), store)
        runtime.reset()


# ------------------------------------------------------------------------------------------- the cases


type Event = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer it must get."""

    name: str
    event: Callable[[], Event]
    """Builds the API Gateway event when sent (so signed timestamps are fresh)."""
    status: int
    names: str = ""
    """A word the error message must contain (4xx)."""
    settled: dict[str, list[str]] = field(default_factory=dict)
    """Event ids the 202 must list as settled, by status."""
    queued: list[str] = field(default_factory=list)
    """Event ids the 202 must accept without settling them (they go on to Sphere)."""


def api_event(source: str, headers: dict[str, str], body: bytes) -> Event:
    """The HTTP API event for ``POST /webhooks/{source}`` (repeated header names are joined with commas)."""
    return webhook_event(source, headers, body)


def send(pipeline: Pipeline, event: Event) -> Answer:
    response = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    return Answer(
        status=int(response["statusCode"]),
        body=json.loads(response.get("body") or "{}"),
        headers={name.lower(): value for name, value in (response.get("headers") or {}).items()},
    )


def check(answer: Answer, case: Case) -> None:
    """The answer is the case's, shaped as promised, and repeats nothing planted."""
    assert answer.status < 500, answer.body
    assert answer.status == case.status, answer.body
    assert answer.headers["content-type"].startswith(JSON)
    assert MARKER not in json.dumps(answer.body) + json.dumps(answer.headers)
    if answer.status >= 400:
        assert case.names, "a refusal case must name the word its message is expected to hold"
        assert set(answer.body) == {"error"}
        assert set(answer.body["error"]) == {"code", "message"}
        assert answer.body["error"]["code"] == CODES[answer.status]
        assert case.names.lower() in answer.body["error"]["message"].lower(), answer.body
        return
    accepted = set(answer.body["accepted"])
    settled = answer.body.get("settled", {})
    for status, ids in case.settled.items():
        assert set(ids) <= set(settled.get(status, [])), answer.body
    assert all(set(ids) <= accepted for ids in settled.values())
    assert set(case.queued) <= accepted - {event_id for ids in settled.values() for event_id in ids}, answer.body


def run_cases(pipeline: Pipeline, subtests: pytest.Subtests, cases: list[Case]) -> None:
    for case in cases:
        with subtests.test(case.name):
            check(send(pipeline, case.event()), case)
    assert_marker_never_stored(pipeline)


def assert_marker_never_stored(pipeline: Pipeline) -> None:
    """Nothing receive wrote to the table (events, refused requests) holds a planted value."""
    pages = pipeline.store.client.get_paginator("scan").paginate(TableName=pipeline.resources.table_name)
    items = [item for page in pages for item in page.get("Items", [])]
    assert items
    assert MARKER not in json.dumps(items)


type Text = str | Callable[[], str]
"""A header value, or how to compute it when the request is sent (a time near now)."""


def when_sent(value: Text) -> str:
    return value() if callable(value) else value


def epoch_seconds(offset: int = 0) -> Callable[[], str]:
    """Epoch seconds, ``offset`` seconds from when the request is sent."""
    return lambda: str(now_ms() // 1000 + offset)


def epoch_ms(offset_seconds: int = 0) -> Callable[[], str]:
    """Epoch milliseconds, ``offset_seconds`` from when the request is sent."""
    return lambda: str(now_ms() + offset_seconds * 1000)


def raw(document: dict[str, Any], **replacements: str) -> str:
    """``document`` as JSON text, each ``"@name"`` placeholder value replaced by the raw JSON text given."""
    text = json.dumps(document)
    for name, value in replacements.items():
        text = text.replace(json.dumps(f"@{name}"), value)
    return text


# ------------------------------------------------------------------------------------------------ HubSpot


def hubspot_event(event_id: int | str, **overrides: Any) -> dict[str, Any]:
    """A contact property change as HubSpot sends it."""
    return {
        "eventId": event_id,
        "subscriptionId": 4065,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": now_ms() - 1000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 7,
        "propertyName": "city",
        "propertyValue": "Lisbon",
        "changeSource": "CRM_UI",
        **overrides,
    }


def hubspot_headers(body: bytes, *, timestamp: str | None = None, **extra: str) -> dict[str, str]:
    """HubSpot's v3-signed headers for ``body`` (``extra`` adds or replaces headers)."""
    stamp = timestamp if timestamp is not None else str(now_ms())
    signature = sign_hubspot_v3(secret=HUBSPOT_SECRET, method="POST", uri=HUBSPOT_URL, body=body, timestamp=stamp)
    return {
        "Content-Type": JSON,
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": stamp,
        "User-Agent": "HubSpot Webhooks",
        **extra,
    }


def signed_hubspot(body: bytes | Callable[[], bytes], **extra: str) -> Callable[[], Event]:
    """A signed HubSpot request with this body (built when sent)."""

    def build() -> Event:
        raw_body = body() if callable(body) else body
        return api_event("hubspot", hubspot_headers(raw_body, **extra), raw_body)

    return build


def good_batch() -> bytes:
    return json.dumps([hubspot_event(next_id())]).encode()


def hubspot_body_cases() -> list[Case]:
    """Bodies that are not a batch: truncated, invalid or absurd JSON, wrong types, sizes, nesting, encodings."""
    sample = json.dumps([hubspot_event(1, propertyValue=MARKER), hubspot_event(2)]).encode()
    cuts = range(1, len(sample), max(1, len(sample) // 24))
    cases = [Case(f"truncated at byte {cut}", signed_hubspot(sample[:cut]), 400, "not valid JSON") for cut in cuts]
    invalid = {
        "lone bracket": b"[",
        "object without value": b'[{"eventId":}]',
        "trailing comma": b"[1,]",
        "single quotes": f"[{{'propertyValue': '{MARKER}'}}]".encode(),
        "NaN": b'[{"eventId": 1, "propertyValue": NaN}]',
        "Infinity": b'[{"eventId": 1, "occurredAt": Infinity}]',
        "-Infinity": b'[{"eventId": -Infinity}]',
        "unquoted key": b"[{eventId: 1}]",
        "comment": b"[/* " + MARKER.encode() + b" */]",
        "two documents": b"[] []",
        "byte order mark": b"\xef\xbb\xbf" + good_batch(),
        "raw control character in a string": b'[{"propertyValue": "a\x01b"}]',
        "unescaped newline in a string": f'[{{"propertyValue": "{MARKER}\nx"}}]'.encode(),
        "bad escape": b'[{"propertyValue": "\\x41"}]',
        "short unicode escape": b'[{"propertyValue": "\\u12"}]',
        "hex number": b"[0x10]",
        "leading zeros": b"[007]",
        "plus sign": b"[+1]",
        "null byte": b"[\x00]",
    }
    cases += [
        Case(f"invalid JSON: {name}", signed_hubspot(body), 400, "not valid JSON") for name, body in invalid.items()
    ]
    not_a_batch = {"object": b"{}", "string": f'"{MARKER}"'.encode(), "number": b"42", "null": b"null", "true": b"true"}
    cases += [Case(f"a JSON {name}", signed_hubspot(body), 400, "JSON array") for name, body in not_a_batch.items()]
    cases += [
        Case("an empty array", signed_hubspot(b"[]"), 400, "1 to 100 events"),
        Case("an empty body", signed_hubspot(b""), 400, "empty"),
        Case("a blank body", signed_hubspot(b" \r\n\t "), 400, "empty"),
        Case(
            "101 events",
            signed_hubspot(lambda: json.dumps([hubspot_event(next_id()) for _ in range(101)]).encode()),
            400,
            "got 101",
        ),
        Case(
            "100 events",
            signed_hubspot(lambda: json.dumps([hubspot_event(next_id()) for _ in range(100)]).encode()),
            202,
        ),
        Case("a body over 1 MiB", signed_hubspot(b"[" + b" " * MAX_BODY_BYTES + b"]"), 413, "limit"),
        Case(
            "a body just under 1 MiB",
            signed_hubspot(lambda: json.dumps([hubspot_event(next_id(), extra=" " * (MAX_BODY_BYTES - 600))]).encode()),
            202,
        ),
    ]
    for depth in (33, 40, 1000, 100_000):
        nested = b"[" * depth + b"]" * depth
        cases.append(Case(f"nested {depth} deep", signed_hubspot(nested), 400, "nested deeper than 32"))
    deep_field = raw(hubspot_event(1, extra="@x"), x="[" * 40 + json.dumps(MARKER) + "]" * 40)
    cases.append(
        Case("an event with a field nested 40 deep", signed_hubspot(f"[{deep_field}]".encode()), 400, "nested")
    )
    not_utf8 = {
        "0xff": b"\xff",
        "lone continuation byte": b"\x80",
        "truncated sequence": b"\xc3",
        "overlong slash": b"\xc0\xaf",
        "encoded surrogate (CESU-8)": b"\xed\xa0\x80",
        "code point over U+10FFFF": b"\xf4\x90\x80\x80",
        "Latin-1 text": "café".encode("latin-1"),
    }
    cases += [
        Case(
            f"invalid UTF-8: {name}",
            signed_hubspot(b'[{"propertyValue": "' + MARKER.encode() + sequence + b'"}]'),
            400,
            "UTF-8",
        )
        for name, sequence in not_utf8.items()
    ]
    cases.append(Case("UTF-16 text", signed_hubspot(good_batch().decode().encode("utf-16")), 400, "UTF-8"))
    return cases


MALFORMED_FIELDS: list[tuple[str, str, str]] = [
    *[
        (field, value, f"{field} {label}")
        for field in ("eventId", "portalId", "objectId")
        for label, value in {
            "null": "null",
            "true": "true",
            "a list": "[1]",
            "an object": f'{{"v": "{MARKER}"}}',
            "empty": '""',
            "65 characters": json.dumps(MARKER * 4),
            "with a space": json.dumps(f"1 {MARKER}"),
            "with a NUL": json.dumps(f"1\x00{MARKER}"),
            "with CR/LF": json.dumps(f"1\r\n{MARKER}"),
            "a fraction": "1.5",
            "1e400": "1e400",
            "of 65 digits": "1" * 65,
            "of 4,301 digits": "1" * 4301,
            "a lone surrogate": f'"{MARKER}\\ud800"',
            "U+FFFF": f'"{MARKER}\\uffff"',
        }.items()
    ],
    *[
        ("occurredAt", value, f"occurredAt {label}")
        for label, value in {
            "null": "null",
            "as text": json.dumps(f"{MARKER}"),
            "as numeric text": '"1700000000000"',
            "true": "true",
            "negative": "-1",
            "in the year 5138": str(10**14),
            "a fraction": "1.5",
            "1e400": "1e400",
            "of 4,301 digits": "9" * 4301,
            "a list": "[]",
        }.items()
    ],
    *[
        (field, value, f"{field} {label}")
        for field in ("subscriptionType", "propertyName")
        for label, value in {
            "true": "true",
            "a list": f'["{MARKER}"]',
            "an object": "{}",
            "a number": "12",
            "1e400": "1e400",
            "a lone surrogate": '"email\\udbff"',
            "U+FFFE": '"email\\ufffe"',
            "300 characters": json.dumps(MARKER * 16),
        }.items()
    ],
    *[
        ("propertyValue", value, f"propertyValue {label}")
        for label, value in {
            "true": "true",
            "a list": f'["{MARKER}"]',
            "an object": f'{{"v": "{MARKER}"}}',
            "1e400": "1e400",
            "-1e400": "-1e400",
            "of 400 digits": "7" * 400,
            "of 4,301 digits": "7" * 4301,
            "a lone high surrogate": f'"{MARKER}\\ud83d"',
            "a lone low surrogate": f'"\\ude00{MARKER}"',
            "U+FFFF": f'"{MARKER}\\uffff"',
        }.items()
    ],
    ("objectTypeId", "[]", "objectTypeId a list"),
    ("objectTypeId", json.dumps("0-" + "1" * 40), "objectTypeId of 42 characters"),
]
"""A field of one event of a batch, its raw JSON value and the case's name: each makes that event refused."""

VALUE_OUTCOMES: list[tuple[dict[str, Any], str | None, str]] = [
    ({"propertyValue": None}, None, "propertyValue null clears the field"),
    ({"propertyValue": 60601, "propertyName": "zip"}, None, "propertyValue a number"),
    ({"propertyValue": "x" * MAX_VALUE_CHARS}, None, "propertyValue at the cap"),
    ({"propertyValue": MARKER + "x" * MAX_VALUE_CHARS}, "rejected", "propertyValue over the cap"),
    ({"propertyValue": MARKER * 30_000}, "rejected", "propertyValue of 570 KB"),
    ({"propertyValue": f"{MARKER}\r\n\x00\t"}, None, "propertyValue with control characters"),
    ({"propertyValue": f"{MARKER} 😀 日本 \u202e"}, None, "propertyValue with emoji and bidi override"),
    ({"propertyValue": "REDACTED", "propertyName": "phone"}, "incomplete", "propertyValue REDACTED"),
    ({"propertyName": "notes", "propertyValue": MARKER * 1000}, "ignored", "unmapped property with a huge value"),
    ({"subscriptionType": "contact.deletion"}, "ignored", "a deletion"),
    ({"subscriptionType": "object.propertyChange", "objectTypeId": "0-2"}, "ignored", "a company change"),
    ({"subscriptionType": None, "eventType": "contact.propertyChange"}, None, "the old eventType"),
    ({"extra": {"deep": [MARKER, {"x": None}]}, "attemptNumber": 9}, None, "extra keys are left alone"),
]
"""Overrides of one event of a batch that are valid JSON values, and the status they settle it in (None: queued)."""


def batch_around(middle: str) -> tuple[bytes, list[str]]:
    """A batch of a good event, ``middle`` (raw JSON text) and another good event; the good events' ids."""
    first, last = next_id(), next_id()
    body = f"[{json.dumps(hubspot_event(first))}, {middle}, {json.dumps(hubspot_event(last, objectId=8))}]"
    return body.encode(), [str(first), str(last)]


def hubspot_event_cases() -> list[Case]:
    """Batches with one bad event: the others go on, the bad one is listed as settled (HubSpot retries 4xx)."""
    cases = []
    for field_name, value, name in MALFORMED_FIELDS:
        event_id = next_id()
        readable_id = field_name != "eventId"
        # appId keeps it a new event: a malformed event is known by its content, and markers look alike
        middle = raw(
            hubspot_event(event_id if readable_id else "@bad", appId=event_id, **{field_name: "@bad"}), bad=value
        )
        body, good = batch_around(middle)
        bad = str(event_id) if readable_id else "#1"
        cases.append(Case(name, signed_hubspot(body), 202, settled={"refused": [bad]}, queued=good))
    for overrides, status, name in VALUE_OUTCOMES:
        event_id = next_id()
        body, good = batch_around(json.dumps(hubspot_event(event_id, **overrides)))
        if status is None:
            cases.append(Case(name, signed_hubspot(body), 202, queued=[*good, str(event_id)]))
        else:
            cases.append(Case(name, signed_hubspot(body), 202, settled={status: [str(event_id)]}, queued=good))
    repeated = {
        "eventId repeated": ("eventId", "1"),
        "propertyValue repeated": ("propertyValue", json.dumps(MARKER)),
        "occurredAt repeated": ("occurredAt", "1"),
    }
    for name, (key, value) in repeated.items():
        event_id = next_id()
        element = json.dumps(hubspot_event(event_id))[:-1] + f', "{key}": {value}}}'
        body, good = batch_around(element)
        bad = "#1" if key == "eventId" else str(event_id)
        cases.append(Case(name, signed_hubspot(body), 202, settled={"refused": [bad]}, queued=good))
    not_objects = {"a number": "42", "a string": json.dumps(MARKER), "null": "null", "a list": "[]", "1e400": "1e400"}
    for name, element in not_objects.items():
        body, good = batch_around(element)
        cases.append(
            Case(f"an event that is {name}", signed_hubspot(body), 202, settled={"refused": ["#1"]}, queued=good)
        )
    unique = next_id()  # identical malformed elements are one event (a retry looks the same): keep these new
    all_bad = json.dumps([unique, f"{MARKER}{unique}", [unique], {"x": unique}]).encode()
    cases.append(
        Case("a batch of bad events only", signed_hubspot(all_bad), 202, settled={"refused": ["#0", "#1", "#2", "#3"]})
    )
    return cases


def hubspot_with_headers(change: Callable[[dict[str, str]], dict[str, str]]) -> Callable[[], Event]:
    """A good signed batch whose headers ``change`` rewrites."""

    def build() -> Event:
        body = good_batch()
        return api_event("hubspot", change(hubspot_headers(body)), body)

    return build


def with_header(name: str, value: Text) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda headers: {**without_header(name)(headers), name: when_sent(value)}


def without_header(name: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda headers: {key: item for key, item in headers.items() if key.lower() != name.lower()}


def repeated_header(name: str, value: Text) -> Callable[[dict[str, str]], dict[str, str]]:
    """The header sent twice: API Gateway joins the two values with a comma."""
    return lambda headers: {**headers, name.upper(): when_sent(value)}


def hubspot_signed_at(timestamp: Text, *, header: str | None = None) -> Callable[[], Event]:
    """A good batch signed over ``timestamp`` (sent as ``header`` when given, else as signed)."""

    def build() -> Event:
        body = good_batch()
        headers = hubspot_headers(body, timestamp=when_sent(timestamp))
        if header is not None:
            headers["X-HubSpot-Request-Timestamp"] = header
        return api_event("hubspot", headers, body)

    return build


def hubspot_header_cases() -> list[Case]:
    """Timestamps of any length and time, malformed and repeated signatures, content types, other headers."""
    timestamp = "X-HubSpot-Request-Timestamp"
    signature = "X-HubSpot-Signature-v3"
    cases = [
        Case(f"timestamp of {digits} digits", hubspot_signed_at("1" * digits), 401, "timestamp")
        for digits in (1, 12, 14, 19, 20, 21, 100, 309, 310, 311, 4300, 4301, 10_000)
    ]
    cases.append(Case("timestamp zero-padded", hubspot_signed_at(lambda: "0" * 300 + str(now_ms())), 401, "timestamp"))
    for seconds, status in {-864_000: 401, -301: 401, -290: 202, 0: 202, 290: 202, 301: 401, 31_536_000: 401}.items():
        cases.append(Case(f"timestamp {seconds:+} s", hubspot_signed_at(epoch_ms(seconds)), status, "timestamp"))
    malformed_stamps = {
        "a float": "1.7e12",
        "negative": "-1700000000000",
        "padded": " 1700000000000",
        "hex": "0x18BCFE56800",
        "Arabic-Indic digits": "\u0661\u0667\u0660\u0660",
        "with CR/LF": "1700000000000\r\nX-Injected: " + MARKER,
        "with NUL": "1700000000000\x00",
        "with a marker": MARKER,
        "a lone surrogate": "17\ud800",
        "empty": "",
    }
    cases += [
        Case(f"timestamp {name}", hubspot_signed_at("1700000000000", header=value), 401, "timestamp")
        for name, value in malformed_stamps.items()
    ]
    cases.append(
        Case("timestamp repeated", hubspot_with_headers(repeated_header(timestamp, str(now_ms()))), 401, "timestamp")
    )
    cases.append(Case("timestamp missing", hubspot_with_headers(without_header(timestamp)), 401, "timestamp"))
    bad_signatures = {
        "empty": "",
        "garbage": MARKER,
        "base64 of the wrong length": base64.b64encode(b"x" * 31).decode(),
        "hex instead of base64": "ab" * 32,
        "with CR/LF": "c2ln\r\nX-Injected: " + MARKER,
        "with NUL": "c2ln\x00" + MARKER,
        "non-ASCII": "sïgnature" + MARKER,
        "a lone surrogate": "sig\udc80" + MARKER,
        "10,000 characters": MARKER * 500,
    }
    cases += [
        Case(f"signature {name}", hubspot_with_headers(with_header(signature, value)), 401, "X-HubSpot-Signature")
        for name, value in bad_signatures.items()
    ]
    cases.append(Case("signature missing", hubspot_with_headers(without_header(signature)), 401, "signature"))
    cases.append(
        Case("signature repeated", hubspot_with_headers(repeated_header(signature, "c2ln")), 401, "does not match")
    )
    cases += hubspot_replay_cases()
    cases += [
        Case(
            "legacy v1 signature while only v3 is accepted",
            hubspot_with_headers(
                lambda headers: {
                    **without_header(signature)(headers),
                    "X-HubSpot-Signature": "0" * 64,
                    "X-HubSpot-Signature-Version": MARKER,
                }
            ),
            401,
            "v3",
        ),
    ]
    cases += content_type_cases("hubspot", hubspot_with_headers)
    harmless = {
        "User-Agent with CR/LF": ("User-Agent", f"x\r\nSet-Cookie: {MARKER}"),
        "User-Agent with NUL": ("User-Agent", f"x\x00{MARKER}"),
        "a 8 KB header": ("X-Padding", MARKER * 400),
        "a header with a lone surrogate": ("X-Other", f"\ud800{MARKER}"),
        "X-Forwarded-For spoofed": ("X-Forwarded-For", f"127.0.0.1, {MARKER}"),
    }
    cases += [
        Case(f"unread header: {name}", hubspot_with_headers(with_header(*header)), 202)
        for name, header in harmless.items()
    ]
    return cases


def hubspot_replay_cases() -> list[Case]:
    """Signatures copied from one request onto another."""

    def tampered_body() -> Event:
        body = good_batch()
        headers = hubspot_headers(body)
        return api_event("hubspot", headers, body.replace(b"Lisbon", MARKER.encode()))

    def new_timestamp() -> Event:
        body = good_batch()
        headers = hubspot_headers(body, timestamp=str(now_ms() - 60_000))
        headers["X-HubSpot-Request-Timestamp"] = str(now_ms())
        return api_event("hubspot", headers, body)

    def other_url() -> Event:
        body = good_batch()
        stamp = str(now_ms())
        signature = sign_hubspot_v3(
            secret=HUBSPOT_SECRET,
            method="POST",
            uri="https://evil.example/webhooks/hubspot",
            body=body,
            timestamp=stamp,
        )
        return api_event(
            "hubspot",
            {"Content-Type": JSON, "X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp},
            body,
        )

    return [
        Case("signature replayed over another body", tampered_body, 401, "does not match"),
        Case("signature replayed with a new timestamp", new_timestamp, 401, "does not match"),
        Case("signature made for another URL", other_url, 401, "does not match"),
    ]


def content_type_cases(
    source: str, build: Callable[[Callable[[dict[str, str]], dict[str, str]]], Callable[[], Event]]
) -> list[Case]:
    """Content types a source accepts, and ones it refuses without repeating them."""
    accepted = ["application/json; charset=utf-8", "APPLICATION/JSON", " application/json ", "application/json;v=1"]
    refused = {
        "text/plain": "text/plain",
        "form": "application/x-www-form-urlencoded",
        "almost JSON": "application/jsonx",
        "JSON twice, joined": "application/json,application/json",
        "with CR/LF": f"text/plain\r\nX-Injected: {MARKER}",
        "with NUL": f"application/json\x00{MARKER}",
        "a marker": f"application/{MARKER}",
        "empty": "",
    }
    cases = [
        Case(f"{source} content type {value!r}", build(with_header("Content-Type", value)), 202) for value in accepted
    ]
    cases += [
        Case(f"{source} content type {name}", build(with_header("Content-Type", value)), 415, "content type")
        for name, value in refused.items()
    ]
    cases.append(Case(f"{source} content type missing", build(without_header("Content-Type")), 415, "got none"))
    return cases


def base64_cases(source: str, good: Callable[[], tuple[dict[str, str], bytes]]) -> list[Case]:
    """The body as API Gateway may pass it: base64 (valid or not) or text."""

    def event(body: str, *, encoded: bool) -> Callable[[], Event]:
        def build() -> Event:
            headers, raw_body = good()
            built = api_event(source, headers, raw_body)
            built["body"] = body.replace("@body", raw_body.decode()).replace(
                "@b64", base64.b64encode(raw_body).decode()
            )
            built["isBase64Encoded"] = encoded
            return built

        return build

    return [
        Case(f"{source} base64 body", event("@b64", encoded=True), 202),
        Case(f"{source} text body", event("@body", encoded=False), 202),
        Case(f"{source} base64 flag on a text body", event("@body", encoded=True), 400, "base64"),
        Case(f"{source} base64 with a line break", event("@b64\n", encoded=True), 400, "base64"),
        Case(f"{source} base64 with bad padding", event("@b64=", encoded=True), 400, "base64"),
        Case(f"{source} base64 of a marker, not base64", event(f"*{MARKER}*", encoded=True), 400, "base64"),
        Case(f"{source} base64 with non-ASCII", event("é@b64", encoded=True), 400, "base64"),
        Case(f"{source} base64 body, text flag", event("@b64", encoded=False), 401, "signature"),
    ]


def good_hubspot_request() -> tuple[dict[str, str], bytes]:
    body = good_batch()
    return hubspot_headers(body), body


def hubspot_cases() -> list[Case]:
    return [
        *hubspot_body_cases(),
        *hubspot_event_cases(),
        *hubspot_header_cases(),
        *base64_cases("hubspot", good_hubspot_request),
    ]


# ------------------------------------------------------------------------------------------------ generic


def contact(**overrides: Any) -> dict[str, Any]:
    """A generic contact document."""
    return {
        "id": "crm-contact-42",
        "updatedAt": "2026-11-25T09:30:00Z",
        "email": "grace.hopper@example.org",
        "address": {"line1": "1 Main St", "city": "New York", "postalCode": "10001", "country": "USA"},
        **overrides,
    }


def generic_headers(
    body: bytes, *, msg_id: str | None = None, timestamp: str | None = None, **extra: str
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed with the generic secret."""
    message_id = msg_id if msg_id is not None else f"msg_{next_id()}"
    stamp = timestamp if timestamp is not None else str(now_ms() // 1000)
    signature = sign_standard_webhook(secret=GENERIC_SECRET, msg_id=message_id, timestamp=stamp, body=body)
    return {
        "Content-Type": JSON,
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": signature,
        **extra,
    }


def signed_generic(body: bytes | str, **options: str) -> Callable[[], Event]:
    """A signed generic request with this body (built when sent)."""
    raw_body = body.encode() if isinstance(body, str) else body
    return lambda: api_event("generic", generic_headers(raw_body, **options), raw_body)


def good_generic_request() -> tuple[dict[str, str], bytes]:
    body = json.dumps(contact()).encode()
    return generic_headers(body), body


def generic_body_cases() -> list[Case]:
    """Bodies: truncated, invalid, wrong types, unusable values, oversized values, nesting, encodings."""
    sample = json.dumps(contact(email=f"{MARKER}@example.org")).encode()
    cuts = range(1, len(sample), max(1, len(sample) // 24))
    cases = [Case(f"truncated at byte {cut}", signed_generic(sample[:cut]), 400, "not valid JSON") for cut in cuts]
    invalid = {
        "lone brace": "{",
        "missing value": '{"id":}',
        "trailing comma": '{"id": "c",}',
        "single quotes": f"{{'id': '{MARKER}'}}",
        "NaN": '{"id": "c", "address": {"postalCode": NaN}}',
        "Infinity": '{"id": "c", "updatedAt": Infinity}',
        "unquoted key": "{id: 1}",
        "two documents": "{} {}",
        "raw control character": '{"id": "c\x01"}',
        "bad escape": '{"id": "\\q"}',
        "hex number": '{"id": 0x1}',
        "leading zeros": '{"id": 007}',
    }
    cases += [
        Case(f"invalid JSON: {name}", signed_generic(body), 400, "not valid JSON") for name, body in invalid.items()
    ]
    not_objects = {"array": f'["{MARKER}"]', "string": f'"{MARKER}"', "number": "42", "null": "null", "false": "false"}
    cases += [Case(f"a JSON {name}", signed_generic(body), 400, "JSON object") for name, body in not_objects.items()]
    cases += [
        Case("an empty body", signed_generic(b""), 400, "empty"),
        Case("a body over 1 MiB", signed_generic(b"{" + b" " * MAX_BODY_BYTES + b"}"), 413, "limit"),
    ]
    bad_ids = {
        "null": "null",
        "empty": '""',
        "blank": '"   "',
        "true": "true",
        "a fraction": "1.5",
        "a list": f'["{MARKER}"]',
        "an object": f'{{"v": "{MARKER}"}}',
        "257 characters": json.dumps(MARKER * 14),
        "with CR/LF": json.dumps(f"c\r\n{MARKER}"),
        "with NUL": json.dumps(f"c\x00{MARKER}"),
        "with a zero-width space": json.dumps(f"\u200b{MARKER}"),
    }
    cases += [
        Case(f"id {name}", signed_generic(raw(contact(id="@v"), v=value)), 400, "id must be")
        for name, value in bad_ids.items()
    ]
    unusable = {
        "id of 65 digits": ("id", "1" * 65, "integer"),
        "id of 4,301 digits": ("id", "1" * 4301, "integer"),
        "id with a lone surrogate": ("id", f'"{MARKER}\\ud800"', "surrogate"),
        "email 1e400": ("email", "1e400", "too large"),
        "email -1e400": ("email", "-1e400", "too large"),
        "email with a lone surrogate": ("email", f'"{MARKER}\\udfff"', "surrogate"),
        "email with U+FFFE": ("email", f'"{MARKER}\\ufffe"', "noncharacter"),
        "phone of 4,301 digits": ("phone", "5" * 4301, "integer"),
        "updatedAt of 4,301 digits": ("updatedAt", "1" * 4301, "integer"),
        "updatedAt 1e400": ("updatedAt", "1e400", "too large"),
        "an unread field of 100,000 digits": ("notes", "9" * 100_000, "integer"),
        "an unread field with a lone surrogate": ("notes", '"\\ud800"', "surrogate"),
    }
    cases += [
        Case(name, signed_generic(raw(contact(**{key: "@v"}), v=value)), 400, problem)
        for name, (key, value, problem) in unusable.items()
    ]
    repeated = {
        "email repeated": f'"email": "{MARKER}"',
        "address repeated": f'"address": {{"city": "{MARKER}"}}',
        "id repeated": '"id": "other"',
    }
    cases += [
        Case(name, signed_generic(json.dumps(contact())[:-1] + f", {pair}}}"), 400, "key that appears twice")
        for name, pair in repeated.items()
    ]
    wrong_types = {
        "email a list": ("email", [MARKER]),
        "email an object": ("email", {"v": MARKER}),
        "email true": ("email", True),
        "address.city a list": ("address", {"city": [MARKER]}),
    }
    cases += [
        Case(name, signed_generic(json.dumps(contact(**{key: value}))), 400, "must be text")
        for name, (key, value) in wrong_types.items()
    ]
    bad_times = {
        "updatedAt without a zone": "2026-11-25T09:30:00",
        "updatedAt before 1970": "1969-12-31T23:59:59Z",
        "updatedAt text": f"yesterday {MARKER}",
        "updatedAt negative": -5,
        "updatedAt true": True,
        "updatedAt in the year 5138": 10**14,
        "updatedAt a list": [1],
        "updatedAt year 9999 behind UTC": "9999-12-31T23:59:59-23:59",
        "updatedAt year 1 ahead of UTC": "0001-01-01T00:00:00+14:00",
    }
    cases += [
        Case(name, signed_generic(json.dumps(contact(updatedAt=value))), 400, "updatedAt")
        for name, value in bad_times.items()
    ]
    fine_times = {
        "updatedAt epoch seconds": 1_764_063_000,
        "updatedAt epoch milliseconds": 1_764_063_000_123,
        "updatedAt a fraction of seconds": 1_764_063_000.5,
        "updatedAt with an offset": "2026-11-25T10:30:00.123+01:00",
        "updatedAt null": None,
    }
    cases += [
        Case(name, signed_generic(json.dumps(contact(updatedAt=value))), 202) for name, value in fine_times.items()
    ]

    def rejected_only(body: dict[str, Any]) -> Callable[[], Event]:
        raw_body = json.dumps(body).encode()
        msg_id = f"msg_{next_id()}"
        return lambda: api_event("generic", generic_headers(raw_body, msg_id=msg_id), raw_body)

    for path in ("sphereCustomerId", "email", "phone", "mobilePhone"):
        cases += generic_field_cases(path, with_field(path))
    for part in ("line1", "line2", "city", "state", "postalCode", "country"):
        cases += generic_field_cases(f"address.{part}", with_address_part(part))
    over_cap = MARKER + "x" * MAX_VALUE_CHARS
    cases += [
        Case("email over the cap, the address kept", signed_generic(json.dumps(contact(email=over_cap))), 202),
        Case("email of 570 KB", signed_generic(json.dumps(contact(email=MARKER * 30_000))), 202),
        Case("every value over the cap", rejected_only({"id": "c-1", "email": over_cap, "phone": over_cap}), 202),
        Case("at the cap", signed_generic(json.dumps(contact(email="x" * MAX_VALUE_CHARS))), 202),
        Case("no mapped field", signed_generic(json.dumps({"id": "c-1", "firstName": MARKER})), 202),
        Case("values with control characters", signed_generic(json.dumps(contact(email=f"{MARKER}\r\n\x00"))), 202),
    ]
    for depth in (33, 1000, 100_000):
        nested = b"[" * depth + b"]" * depth
        cases.append(Case(f"nested {depth} deep", signed_generic(nested), 400, "nested deeper than 32"))
    not_utf8 = {"0xff": b"\xff", "overlong": b"\xc0\xaf", "CESU-8 surrogate": b"\xed\xa0\x80", "Latin-1": b"\xe9"}
    cases += [
        Case(f"invalid UTF-8: {name}", signed_generic(b'{"id": "' + MARKER.encode() + sequence + b'"}'), 400, "UTF-8")
        for name, sequence in not_utf8.items()
    ]
    return cases


def with_field(name: str) -> Callable[[Any], dict[str, Any]]:
    """A contact document whose top-level ``name`` holds the value given."""
    return lambda value: contact(**{name: value})


def with_address_part(part: str) -> Callable[[Any], dict[str, Any]]:
    """A contact document whose ``address.part`` holds the value given."""
    return lambda value: contact(address={**contact()["address"], part: value})


def generic_field_cases(path: str, body: Callable[[Any], dict[str, Any]]) -> list[Case]:
    """One mapped field holding each kind of value: text, null and numbers go on, over the cap is refused
    for the field alone, anything else refuses the request."""
    refused = {"a list": [MARKER], "an object": {"v": MARKER}, "true": True}
    fine = {"null": None, "a number": 60601, "a fraction": 1.5, "over the cap": MARKER * 60, "blank": "  "}
    return [
        *[Case(f"{path} {name}", signed_generic(json.dumps(body(value))), 202) for name, value in fine.items()],
        *[
            Case(f"{path} {name}", signed_generic(json.dumps(body(value))), 400, f"{path} must be text")
            for name, value in refused.items()
        ],
    ]


def generic_rejected_case() -> Case:
    """Every mapped value over the cap: the 202 lists the event as settled rejected."""
    msg_id = f"msg_{next_id()}"
    body = json.dumps({"id": "c-1", "email": MARKER * 100, "address": {"city": MARKER * 100}}).encode()
    return Case(
        "every mapped value over the cap is listed as rejected",
        lambda: api_event("generic", generic_headers(body, msg_id=msg_id), body),
        202,
        settled={"rejected": [msg_id]},
    )


def generic_with_headers(change: Callable[[dict[str, str]], dict[str, str]]) -> Callable[[], Event]:
    """A good signed contact whose headers ``change`` rewrites."""

    def build() -> Event:
        headers, body = good_generic_request()
        return api_event("generic", change(headers), body)

    return build


def generic_signed_with(*, msg_id: str | None = None, timestamp: Text | None = None) -> Callable[[], Event]:
    """A good contact signed over this webhook-id and timestamp."""

    def build() -> Event:
        body = json.dumps(contact()).encode()
        stamp = None if timestamp is None else when_sent(timestamp)
        return api_event("generic", generic_headers(body, msg_id=msg_id, timestamp=stamp), body)

    return build


def generic_header_cases() -> list[Case]:
    """webhook-id, webhook-timestamp and webhook-signature of any shape; content types; other headers."""
    cases = [
        Case(f"timestamp of {digits} digits", generic_signed_with(timestamp="1" * digits), 401, "timestamp")
        for digits in (1, 9, 11, 13, 20, 21, 100, 309, 310, 311, 4300, 4301, 10_000)
    ]
    for seconds, status in {-864_000: 401, -301: 401, -290: 202, 0: 202, 290: 202, 301: 401, 31_536_000: 401}.items():
        cases.append(
            Case(f"timestamp {seconds:+} s", generic_signed_with(timestamp=epoch_seconds(seconds)), status, "timestamp")
        )
    stamp = "webhook-timestamp"
    malformed_stamps: dict[str, Text] = {
        "milliseconds": epoch_ms(),
        "a float": lambda: f"{now_ms() / 1000:.3f}",
        "negative": "-1",
        "padded": lambda: f" {now_ms() // 1000}",
        "with CR/LF": lambda: f"{now_ms() // 1000}\r\nX-Injected: {MARKER}",
        "with NUL": lambda: f"{now_ms() // 1000}\x00",
        "a marker": MARKER,
        "a lone surrogate": "17\udfff",
        "empty": "",
    }
    cases += [
        Case(f"timestamp {name}", generic_with_headers(with_header(stamp, value)), 401, "timestamp")
        for name, value in malformed_stamps.items()
    ]
    cases += [
        Case("timestamp repeated", generic_with_headers(repeated_header(stamp, epoch_seconds())), 401, "timestamp"),
        Case("timestamp missing", generic_with_headers(without_header(stamp)), 401, "webhook-timestamp"),
        Case("webhook-id missing", generic_with_headers(without_header("webhook-id")), 401, "webhook-id"),
        Case("webhook-id empty", generic_with_headers(with_header("webhook-id", "")), 401, "webhook-id"),
        Case(
            "webhook-id repeated", generic_with_headers(repeated_header("webhook-id", "msg_2")), 401, "does not match"
        ),
        Case(
            "webhook-id swapped after signing",
            generic_with_headers(with_header("webhook-id", f"msg_{MARKER}")),
            401,
            "does not match",
        ),
        Case(
            "webhook-id a lone surrogate", generic_with_headers(with_header("webhook-id", "m\ud800")), 401, "webhook-id"
        ),
    ]
    signed_ids = {
        "blank": "   ",
        "257 characters": "m" * 257,
        "with CR/LF": f"msg\r\n{MARKER}",
        "with NUL": f"msg\x00{MARKER}",
        "with U+FFFF": f"msg\uffff{MARKER}",
        "with a tab": f"msg\t{MARKER}",
    }
    cases += [
        Case(f"webhook-id {name}, signed", generic_signed_with(msg_id=value), 400, "webhook-id")
        for name, value in signed_ids.items()
    ]
    cases += [
        Case("webhook-id with spaces and accents, signed", generic_signed_with(msg_id="msg été 日本"), 202),
        Case("webhook-id of 256 characters, signed", generic_signed_with(msg_id="m" * 256), 202),
    ]
    signature = "webhook-signature"
    bad_signatures = {
        "empty": ("", "missing webhook-signature"),
        "v1 without a value": ("v1,", "does not match"),
        "only v2": ("v2,c2ln", "no v1 signature"),
        "no version": (MARKER, "no v1 signature"),
        "wrong value": (f"v1,{MARKER}", "does not match"),
        "100 wrong entries": (" ".join(f"v1,{MARKER}{index}" for index in range(100)), "does not match"),
        "with CR/LF": (f"v1,c2ln\r\nX-Injected: {MARKER}", "does not match"),
        "with NUL": (f"v1,c2ln\x00{MARKER}", "does not match"),
        "non-ASCII": (f"v1,sïg{MARKER}", "no v1 signature"),
        "a lone surrogate": (f"v1,\udc00{MARKER}", "no v1 signature"),
    }
    cases += [
        Case(f"signature {name}", generic_with_headers(with_header(signature, value)), 401, problem)
        for name, (value, problem) in bad_signatures.items()
    ]
    cases += [
        Case("signature missing", generic_with_headers(without_header(signature)), 401, "webhook-signature"),
        Case(
            "signature repeated (joined with a comma)",
            generic_with_headers(repeated_header(signature, "v1,c2ln")),
            401,
            "does not match",
        ),
        Case(
            "a valid signature among garbage entries",
            generic_with_headers(lambda headers: {**headers, signature: f"v0,x v1,{MARKER} {headers[signature]}"}),
            202,
        ),
        *generic_replay_cases(),
    ]
    cases += content_type_cases("generic", generic_with_headers)
    harmless = {
        "User-Agent with CR/LF": ("User-Agent", f"x\r\nSet-Cookie: {MARKER}"),
        "a header with a lone surrogate": ("X-Other", f"\ud800{MARKER}"),
        "a 8 KB header": ("X-Padding", MARKER * 400),
    }
    cases += [
        Case(f"unread header: {name}", generic_with_headers(with_header(*header)), 202)
        for name, header in harmless.items()
    ]
    return cases


def generic_replay_cases() -> list[Case]:
    """Signatures copied from one request onto another."""

    def tampered_body() -> Event:
        headers, body = good_generic_request()
        return api_event("generic", headers, body.replace(b"New York", MARKER.encode()))

    def new_timestamp() -> Event:
        body = json.dumps(contact()).encode()
        headers = generic_headers(body, timestamp=str(now_ms() // 1000 - 60))
        headers["webhook-timestamp"] = str(now_ms() // 1000)
        return api_event("generic", headers, body)

    def stale_replay() -> Event:
        body = json.dumps(contact()).encode()
        return api_event("generic", generic_headers(body, timestamp=str(now_ms() // 1000 - 3600)), body)

    return [
        Case("signature replayed over another body", tampered_body, 401, "does not match"),
        Case("signature replayed with a new timestamp", new_timestamp, 401, "does not match"),
        Case("a request replayed an hour later", stale_replay, 401, "older than"),
    ]


def generic_cases() -> list[Case]:
    return [
        *generic_body_cases(),
        generic_rejected_case(),
        *generic_header_cases(),
        *base64_cases("generic", good_generic_request),
    ]


# ------------------------------------------------------------------------------------------------ the tests


def test_hostile_hubspot_requests_get_their_answer_and_never_a_5xx(
    pipeline: Pipeline, subtests: pytest.Subtests
) -> None:
    # Given hundreds of hostile HubSpot requests, most properly signed
    cases = hubspot_cases()
    assert len(cases) >= 200

    # When each is posted through the receive handler
    # Then each gets its expected answer, never a 5xx, and nothing planted comes back or is stored
    run_cases(pipeline, subtests, cases)


def test_hostile_generic_requests_get_their_answer_and_never_a_5xx(
    pipeline: Pipeline, subtests: pytest.Subtests
) -> None:
    # Given hundreds of hostile generic requests, most properly signed
    cases = generic_cases()
    assert len(cases) >= 200

    # When each is posted through the receive handler
    # Then each gets its expected answer, never a 5xx, and nothing planted comes back or is stored
    run_cases(pipeline, subtests, cases)


def test_a_replayed_request_is_queued_once_and_a_duplicate_once_delivered(pipeline: Pipeline) -> None:
    # Given a signed HubSpot batch and a signed generic contact, each sent twice as they are
    batch = good_batch()
    hubspot = api_event("hubspot", hubspot_headers(batch), batch)
    headers, body = good_generic_request()
    generic = api_event("generic", headers, body)
    pipeline.drain()
    queued_before = pipeline.queued_messages()

    # When each is posted again while still on the queue (a replay within the tolerance, or the CRM's retry)
    first = [send(pipeline, hubspot), send(pipeline, generic)]
    again = [send(pipeline, hubspot), send(pipeline, generic)]

    # Then the repeat is acknowledged and SQS's deduplication id keeps one message each
    assert [answer.status for answer in first + again] == [202] * 4
    assert pipeline.queued_messages() - queued_before == 2  # one message for each request, not two

    # When they are posted once more after delivery
    pipeline.drain()
    late = [send(pipeline, hubspot), send(pipeline, generic)]

    # Then the repeat is a duplicate: nothing new is queued or recorded
    for before, after in zip(first, late, strict=True):
        assert after.body == {"accepted": [], "duplicates": before.body["accepted"]}
    assert pipeline.queued_messages() == 0


def test_a_text_body_holding_a_lone_surrogate_is_an_invalid_payload(pipeline: Pipeline) -> None:
    # Given an event whose text body (not base64) holds a lone surrogate, as a direct invoke can send
    headers, _ = good_generic_request()
    event = api_event("generic", headers, b"{}")
    event["body"], event["isBase64Encoded"] = f'{{"id": "{MARKER}\ud800"}}', False

    # When the receive function is invoked with it
    answer = send(pipeline, event)

    # Then it is refused as a body that is not UTF-8 text, not answered 500
    assert answer.status == 400


# ---------------------------------------------------------------------------------------------- every source


def kit_cases(source: str) -> dict[str, tuple[VendorRequest, set[int]]]:
    """Hostile requests to one source, from its vendor kit, each with the statuses it may get.

    A request carrying the planted value (as an email) forged every way the kit knows, sent with another
    content type, grown past the body limit; and the kit's authentic but broken or hostile bodies.
    """
    kit = vendor(source)
    secret = LOCAL_SECRETS[kit.secret_parameter]
    values = {ContactField.CUSTOMER_ID: "customer_hostile1", ContactField.EMAIL: f"{MARKER}@example.com"}
    planted = kit.change(
        7, values, event_id=next_id(), occurred_at_ms=now_ms() - 1000, secret=secret, base_url=PUBLIC_BASE_URL
    )
    cases = {f"forged: {name}": (request, {401, 403}) for name, request in kit.forged(planted).items()}
    headers = {name: value for name, value in planted.headers.items() if name.lower() != "content-type"}
    cases["content type text/plain"] = (planted.replace(headers={**headers, "Content-Type": "text/plain"}), {415})
    cases["content type missing"] = (planted.replace(headers=headers), {415})
    cases["a body over 1 MiB"] = (planted.replace(body=planted.body + b" " * MAX_BODY_BYTES), {413})
    broken = kit.malformed(secret=secret, base_url=PUBLIC_BASE_URL, occurred_at_ms=now_ms())
    cases |= {f"broken: {name}": (request, set(range(400, 500))) for name, request in broken.items()}
    return cases


@pytest.mark.parametrize("source", VENDORS)
def test_every_source_refuses_hostile_requests_in_its_own_format_without_echo_or_trace(
    pipeline: Pipeline, subtests: pytest.Subtests, source: str
) -> None:
    kit = vendor(source)
    queued_before = pipeline.queued_messages()
    for name, (request, statuses) in kit_cases(source).items():
        with subtests.test(name):
            # When a hostile request reaches the source
            answer = pipeline.post(source, dict(request.headers), request.body, query=request.query)

            # Then it gets one of its expected 4xx, in the vendor's own format, repeating nothing it was sent
            assert answer.status in statuses, answer.raw
            assert kit.refusal(answer.status, answer.headers, answer.raw), answer.raw
            assert MARKER.encode() not in answer.raw + json.dumps(answer.headers).encode()

    # And nothing was queued, and no record holds the planted value
    assert pipeline.queued_messages() == queued_before
    assert_marker_never_stored(pipeline)
