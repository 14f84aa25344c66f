"""Dataverse over real HTTP: the local stack ``make run`` starts, called as a Dataverse webhook calls it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.stack import LocalStack, StackOptions
from devstack.vendors.dataverse import VENDOR

BATCH_DONE = threading.Condition()
"""Notified by the local poller after each delivered batch: the test waits on it instead of sleeping."""


def batch_done(records: list[dict[str, Any]], failed: set[str]) -> None:
    with BATCH_DONE:
        BATCH_DONE.notify_all()


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """The local stack on free ports, as ``make run`` starts it (without the demo)."""
    options = StackOptions(port=0, environment={"RETRY_BASE_SECONDS": "0"}, on_batch=batch_done)
    with LocalStack(options) as running:
        yield running


def test_a_dataverse_webhook_key_in_the_query_reaches_sphere_as_one_patch(stack: LocalStack) -> None:
    assert stack.standin is not None
    # Given the kit's sample, authenticated the "WebhookKey" way (?code=<key>) instead of the x-api-key header
    sample = VENDOR.sample(
        secret=stack.secrets["DataverseSecretArn"], base_url=stack.url, now_ms=int(time.time() * 1000)
    )
    headers = {name: value for name, value in sample.headers.items() if name != "x-api-key"}
    expected = VENDOR.sample_expectation()

    # When it is POSTed to the local stack over HTTP
    answer = httpx.post(
        f"{stack.url}/webhooks/dataverse",
        params={"code": stack.secrets["DataverseSecretArn"]},
        headers=headers,
        content=sample.body,
        timeout=10,
    )

    # Then it is acknowledged with its event id, and Sphere receives exactly the expected PATCH once
    assert answer.status_code == 202
    assert answer.json() == {"accepted": list(expected.event_ids), "duplicates": []}
    standin = stack.standin
    with BATCH_DONE:
        assert BATCH_DONE.wait_for(lambda: standin.patches(expected.customer_id), timeout=15)
    assert [patch.body for patch in standin.patches(expected.customer_id)] == [expected.patch]

    # When a wrong code is sent, Then it is a 401 in JSON and nothing more reaches Sphere
    wrong = httpx.post(
        f"{stack.url}/webhooks/dataverse", params={"code": "wrong"}, headers=headers, content=sample.body, timeout=10
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert len(standin.patches(expected.customer_id)) == 1
