"""Properties every source has, whatever its format: run over each vendor kit, so a new source is held to them.

Any body, mostly its vendor's own sample cut, spliced or salted with hostile text, parses into events that can be
queued and stored, or is refused with the project's own error; any headers and query verify or are refused as
unauthenticated; any outcome renders into an answer. Deterministic and modest, like ``test_properties.py``.
"""

from __future__ import annotations

import importlib
import os
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.properties import HEADER_VALUE, HOSTILE_TEXT, NOW, PROPERTY, assert_carriable, refused_or_none
from devstack.source_config import source_environment
from devstack.vendors import VENDORS, vendor
from webhook_adapter.errors import ForbiddenSender, InvalidPayload, SignatureError
from webhook_adapter.sources import SOURCE_MODULES, Source, WebhookRequest

BASE_URL = "https://hooks.example.test"


def build(name: str) -> Source:
    with mock.patch.dict(os.environ, source_environment(name)):
        source: Source = importlib.import_module(SOURCE_MODULES[name]).build()
    return source


def sample_request(name: str) -> WebhookRequest:
    kit = vendor(name)
    sent = kit.sample(secret=kit.local_secret, base_url=BASE_URL, now_ms=int(NOW * 1000))
    url = f"{BASE_URL}{sent.path}"
    headers = {key.lower(): value for key, value in sent.headers.items()}
    return WebhookRequest(source=name, method="POST", url=url, headers=headers, body=sent.body, received_at=NOW)


def with_body(request: WebhookRequest, body: bytes) -> WebhookRequest:
    return WebhookRequest(request.source, request.method, request.url, request.headers, body, request.received_at)


@st.composite
def mangled(draw: st.DrawFn, body: bytes) -> bytes:
    """The sample cut short, with a slice replaced by hostile text, or with hostile text inserted anywhere."""
    cut = draw(st.integers(0, len(body)))
    match draw(st.integers(0, 3)):
        case 0:
            return body[:cut]
        case 1:
            end = draw(st.integers(cut, min(len(body), cut + 40)))
            return body[:cut] + draw(HOSTILE_TEXT).encode("utf-8", "surrogatepass") + body[end:]
        case 2:
            return body[:cut] + draw(st.binary(max_size=16)) + body[cut:]
    anything: bytes = draw(st.binary(max_size=256))
    return anything


@pytest.mark.parametrize("source", VENDORS)
@PROPERTY
@given(data=st.data())
def test_parse_reads_any_mangled_sample_into_carriable_events_or_a_refusal(source: str, data: st.DataObject) -> None:
    # Given the source as configured on the local stack and its vendor's sample, mangled
    configured, request = build(source), sample_request(source)
    body = data.draw(mangled(request.body))

    # When parsed, Then it is refused with the project's own error, or every event can be queued and stored
    events = refused_or_none(lambda: configured.parse(with_body(request, body)), InvalidPayload, ForbiddenSender)
    if events is not None:
        assert_carriable(events)


@pytest.mark.parametrize("source", VENDORS)
def test_parse_reads_the_unmangled_sample_into_carriable_events(source: str) -> None:
    # Given the vendor's sample, When parsed, Then it gives events that can be queued and stored
    events = build(source).parse(sample_request(source))
    assert events
    assert_carriable(events)


@pytest.mark.parametrize("source", VENDORS)
@PROPERTY
@given(data=st.data())
def test_verify_answers_any_headers_and_query_with_none_or_a_refusal(source: str, data: st.DataObject) -> None:
    # Given the sample's request with any of its headers and query replaced by anything, and any secrets
    configured, request = build(source), sample_request(source)
    headers = dict(request.headers)
    for header in data.draw(st.lists(st.sampled_from(sorted(headers)), max_size=3)):
        headers[header] = data.draw(HEADER_VALUE)
    query = data.draw(st.one_of(st.just(request.url.partition("?")[2]), HOSTILE_TEXT))
    url = request.url.partition("?")[0] + (f"?{query}" if query else "")
    changed = WebhookRequest(request.source, request.method, url, headers, request.body, request.received_at)
    secrets = data.draw(st.lists(HOSTILE_TEXT | st.just(vendor(source).local_secret), max_size=3))

    # When verified, Then it passes or is refused as unauthenticated, never anything else
    refused_or_none(lambda: configured.verify(changed, secrets), SignatureError)


@pytest.mark.parametrize("source", VENDORS)
@PROPERTY
@given(status=st.sampled_from([202, 400, 401, 403, 404, 413, 415, 500, 503]), message=HOSTILE_TEXT)
def test_answer_renders_any_outcome(source: str, status: int, message: str) -> None:
    # Given any status and a message of any text (an error message never holds a payload value, but may hold odd text)
    configured = build(source)
    document: dict[str, object] = (
        {"accepted": [], "duplicates": []} if status < 300 else {"error": {"code": "x", "message": message}}
    )

    # When rendered, Then an error keeps its status and a success stays a success (Salesforce's Ack is a 200),
    # and the answer is text that can be encoded for the wire
    answer = configured.answer(status, document)
    assert answer.status == status if status >= 300 else 200 <= answer.status < 300
    answer.body.encode("utf-8", "surrogatepass")
    assert answer.content_type
