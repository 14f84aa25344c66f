"""Concurrent CRM requests against ``make run``'s stack: each answered and recorded as its own, as on Lambda."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from devstack.crm import generic_request, hubspot_event, hubspot_request
from devstack.stack import LocalStack, StackOptions

CLIENTS = 8
REQUESTS_PER_CLIENT = 16
PORTAL = 62515


@dataclass(frozen=True)
class Sent:
    """One request a client sent: its source, the event ids it carried and their stored keys."""

    source: str
    contact_id: str
    event_ids: tuple[str, ...]
    keys: tuple[str, ...]
    status: int
    answered: tuple[str, ...]


BATCH_DONE = threading.Condition()
"""Notified after each batch the local poller delivered: records are written when events end."""


def _notify(*_: object) -> None:
    with BATCH_DONE:
        BATCH_DONE.notify_all()


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """The local stack on free ports, as ``make run`` starts it (without the demo)."""
    options = StackOptions(
        port=0, environment={"RETRY_BASE_SECONDS": "0", "POWERTOOLS_LOG_LEVEL": "WARNING"}, on_batch=_notify
    )
    with LocalStack(options) as running:
        yield running


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads far more often than the default 5 ms, so a race between requests shows in few requests."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(previous)


def send(stack: LocalStack, client_number: int) -> list[Sent]:
    """One CRM client: alternately a generic webhook and a HubSpot batch, each about its own contact."""
    sent: list[Sent] = []
    now = int(time.time() * 1000)
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        for number in range(REQUESTS_PER_CLIENT):
            contact = client_number * 1000 + number
            ids: tuple[str, ...]
            keys: tuple[str, ...]
            if number % 2:
                msg_id = f"msg_c{client_number}_n{number}"
                payload = {"id": f"crm-{contact}", "email": f"c{contact}@example.com"}
                headers, body = generic_request(payload, secret=stack.secrets["GenericSecretArn"], msg_id=msg_id)
                answer = client.post("/webhooks/generic", headers=headers, content=body)
                ids, keys = (msg_id,), (msg_id,)
                source, contact_id = "generic", f"crm-{contact}"
            else:
                events = [
                    hubspot_event(contact, "email", f"h{contact}@example.com", occurred_at=now, event_id=contact * 10),
                    hubspot_event(contact, "city", "Lisbon", occurred_at=now, event_id=contact * 10 + 1),
                ]
                url = f"{stack.url}/webhooks/hubspot"
                headers, body = hubspot_request(events, secret=stack.secrets["HubSpotSecretArn"], url=url)
                answer = client.post("/webhooks/hubspot", headers=headers, content=body)
                ids = tuple(str(event["eventId"]) for event in events)
                keys = tuple(
                    f"{PORTAL}:{contact}:{event['propertyName']}:{event['occurredAt']}:{event['eventId']}"
                    for event in events
                )
                source, contact_id = "hubspot", f"{PORTAL}:{contact}"
            body_json = answer.json() if answer.status_code == 202 else {}
            answered = tuple(body_json.get("accepted", [])) + tuple(body_json.get("duplicates", []))
            sent.append(Sent(source, contact_id, ids, keys, answer.status_code, answered))
    return sent


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_webhooks_are_each_answered_and_recorded_as_their_own(stack: LocalStack) -> None:
    # Given eight CRM clients sending distinct signed webhooks at the same time, both sources mixed
    # When each sends its requests to the local stack over HTTP
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        sent = [request for client in pool.map(lambda n: send(stack, n), range(CLIENTS)) for request in client]

    # Then every request was accepted, and its 202 names exactly its own events
    assert len(sent) == CLIENTS * REQUESTS_PER_CLIENT
    mixed_up = [
        request for request in sent if request.status != 202 or sorted(request.answered) != sorted(request.event_ids)
    ]
    assert mixed_up == []

    # And every event is recorded under its own key once delivered (events are recorded when they end)
    def missing() -> list[tuple[str, str]]:
        return [
            (request.source, key)
            for request in sent
            for key in request.keys
            if stack.store.get_event(request.source, request.contact_id, key) is None
        ]

    with BATCH_DONE:
        BATCH_DONE.wait_for(lambda: not missing(), timeout=60)
    assert missing() == []
