"""Every source over real HTTP, as ``make run`` serves it: its vendor's sample, forgeries, broken bodies, noise.

Runs over every vendor kit (``devstack.vendors``), so a new source is held to the same checks: the sample becomes
the PATCH its vendor's kit expects and delivered outcomes, answered so the vendor counts it delivered; everything
else is answered in the vendor's own format and recorded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devstack.stack import LocalStack, StackOptions
from devstack.vendors import VENDORS, Vendor, VendorRequest, vendor
from webhook_adapter import runtime
from webhook_adapter.model import Status

BATCH_DONE = threading.Condition()


def batch_done(records: list[dict[str, Any]], failed: set[str]) -> None:
    with BATCH_DONE:
        BATCH_DONE.notify_all()


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[LocalStack, dict[str, str]]]:
    """One local stack for the module, every source on (as ``make run``), and the environment it set."""
    options = StackOptions(port=0, environment={"RETRY_BASE_SECONDS": "0"}, on_batch=batch_done)
    with LocalStack(options) as started:
        yield started, dict(os.environ)


@pytest.fixture
def stack(running: tuple[LocalStack, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The module's stack, its environment back in place (each test starts from a clean process environment)."""
    started, environment = running
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    return started


def wait_for[T](probe: Callable[[], T | None], *, timeout: float = 20.0) -> T:
    found: list[T] = []

    def ready() -> bool:
        value = probe()
        if value:
            found.append(value)
        return bool(value)

    with BATCH_DONE:
        if not BATCH_DONE.wait_for(ready, timeout=timeout):
            raise AssertionError(f"condition not met within {timeout} s")
    return found[-1]


def post(stack: LocalStack, request: VendorRequest) -> httpx.Response:
    return httpx.post(f"{stack.url}{request.path}", headers=dict(request.headers), content=request.body, timeout=10)


def secret_of(stack: LocalStack, kit: Vendor) -> str:
    return stack.secrets[kit.secret_parameter]


def scan(stack: LocalStack, status: Status) -> list[dict[str, Any]]:
    """Every item of the table in ``status`` (ignored events are not in the status index: a test may scan)."""
    assert stack.resources is not None
    pages = (
        stack.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=stack.resources.table_name,
            FilterExpression="#status = :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": {"S": str(status)}},
        )
    )
    return [
        {name: next(iter(value.values())) for name, value in item.items()} for page in pages for item in page["Items"]
    ]


def refused_since(stack: LocalStack, since_ms: int) -> list[dict[str, Any]]:
    return stack.store.events_by_status(Status.REFUSED, since_ms, int(time.time() * 1000) + 1000)


@pytest.mark.parametrize("source", VENDORS)
def test_the_vendors_sample_becomes_its_patch_and_delivered_outcomes_and_the_answer_it_needs(
    stack: LocalStack, source: str
) -> None:
    assert stack.standin is not None
    kit = vendor(source)
    expected = kit.sample_expectation()
    before = len(stack.standin.patches(expected.customer_id))

    # Given the vendor's documented sample, authenticated as the vendor does (and the record it names, in the CRM)
    request = kit.sample(secret=secret_of(stack, kit), base_url=stack.url, now_ms=int(time.time() * 1000))
    if expected.crm_record is not None:
        assert stack.crm is not None
        crm, record_id, values = expected.crm_record
        stack.crm.put_record(crm, record_id, values, modified_at_ms=int(time.time() * 1000) - 1000)

    # When it is POSTed to the local stack
    answer = post(stack, request)

    # Then the vendor counts it delivered
    assert kit.acknowledged(answer.status_code, answer.headers, answer.content), answer.text

    # And Sphere gets the expected PATCH, and every event of the sample ends delivered
    def delivered() -> list[dict[str, Any]] | None:
        history = stack.store.contact_history(source, expected.contact_id)
        done = [item for item in history if item["status"] == Status.DELIVERED]
        return history if history and len(done) == len(history) else None

    history = wait_for(delivered)
    patches = stack.standin.patches(expected.customer_id)[before:]
    assert [patch.body for patch in patches] == [expected.patch]
    assert len(history) == expected.queued
    if expected.event_ids:
        assert {item["event_id"] for item in history} == set(expected.event_ids)

    # When the vendor sends it again
    again = post(stack, request)

    # Then it is still acknowledged, and nothing more reaches Sphere
    assert kit.acknowledged(again.status_code, again.headers, again.content), again.text
    assert len(stack.standin.patches(expected.customer_id)) == before + 1


@pytest.mark.parametrize("source", VENDORS)
def test_forged_requests_are_refused_in_the_vendors_format_and_recorded(stack: LocalStack, source: str) -> None:
    kit = vendor(source)
    since = int(time.time() * 1000) - 1000
    genuine = kit.sample(secret=secret_of(stack, kit), base_url=stack.url, now_ms=int(time.time() * 1000))
    forgeries = kit.forged(genuine)
    assert forgeries

    for name, forged in forgeries.items():
        # When a forgery is POSTed
        answer = post(stack, forged)

        # Then it is refused as unauthenticated or foreign, in the vendor's format, naming the problem
        assert answer.status_code in {401, 403}, f"{name}: {answer.status_code} {answer.text}"
        assert kit.refusal(answer.status_code, answer.headers, answer.content), f"{name}: {answer.text}"
        assert not kit.acknowledged(answer.status_code, answer.headers, answer.content)

    # And each refusal is recorded
    assert len([item for item in refused_since(stack, since) if item["source"] == source]) >= len(forgeries)


@pytest.mark.parametrize("source", VENDORS)
def test_broken_and_hostile_bodies_get_a_4xx_in_the_vendors_format(stack: LocalStack, source: str) -> None:
    kit = vendor(source)
    broken = kit.malformed(secret=secret_of(stack, kit), base_url=stack.url, occurred_at_ms=int(time.time() * 1000))
    assert broken

    for name, request in broken.items():
        # When an authentic but broken body is POSTed
        answer = post(stack, request)

        # Then it is a client error in the vendor's format, never a server error the vendor would retry
        assert 400 <= answer.status_code < 500, f"{name}: {answer.status_code} {answer.text}"
        assert kit.refusal(answer.status_code, answer.headers, answer.content), f"{name}: {answer.text}"


@pytest.mark.parametrize("source", VENDORS)
def test_irrelevant_events_are_acknowledged_and_recorded_ignored(stack: LocalStack, source: str) -> None:
    assert stack.standin is not None
    kit = vendor(source)
    patches = len(stack.standin.requests)
    now = int(time.time() * 1000)

    # Given an authentic request about something the adapter does not deliver
    request = kit.irrelevant(event_id=now, occurred_at_ms=now - 1000, secret=secret_of(stack, kit), base_url=stack.url)

    # When it is POSTed
    answer = post(stack, request)

    # Then the vendor counts it delivered, nothing reaches Sphere, and the receipt says it was settled ignored
    assert kit.acknowledged(answer.status_code, answer.headers, answer.content), answer.text
    assert len(stack.standin.requests) == patches
    assert any(item["source"] == source and int(item["received_at"]) >= now for item in scan(stack, Status.IGNORED))
