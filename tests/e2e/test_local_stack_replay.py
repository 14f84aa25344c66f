"""The replay function on the local stack ``make run`` starts: each form, dry and real, through deliver."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.crm import generic_request
from devstack.sign_events import EVENTS_DIR
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.stack import LocalStack
from e2e.support import stack_with, wait_for
from webhook_adapter.model import Status

MISSING_CUSTOMER = "customer_0000000000000000000000000000beef"


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """The local stack, a change dead-lettered on its second failed receive."""
    yield from stack_with(MAX_RECEIVE_COUNT="2")


def wait_until(probe: Callable[[], bool], timeout: float = 15.0) -> None:
    wait_for(probe, timeout=timeout)


def post_contact(stack: LocalStack, contact: str, customer_id: str, email: str) -> str:
    """A generic webhook for ``contact``; the event's key (its webhook-id)."""
    payload = {"id": contact, "sphereCustomerId": customer_id, "email": email, "updatedAt": int(time.time() * 1000)}
    headers, body = generic_request(payload, secret=stack.secrets["GenericSecretArn"])
    answer = httpx.post(f"{stack.url}/webhooks/generic", content=body, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    return headers["webhook-id"]


def status_of(stack: LocalStack, contact: str, key: str) -> str | None:
    item = stack.store.get_event("generic", contact, key)
    return None if item is None else str(item["status"])


def sphere_calls(stack: LocalStack) -> list[Any]:
    """Every PATCH Sphere's stand-in received, whatever it answered."""
    assert stack.standin is not None
    return [request for request in stack.standin.requests if request.method == "PATCH"]


def queue_is_empty(stack: LocalStack) -> bool:
    """Nothing waits on the changes queue, nor is being delivered."""
    assert stack.resources is not None
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    answer = stack.client("sqs").get_queue_attributes(QueueUrl=stack.resources.queue_url, AttributeNames=names)
    return all(answer["Attributes"][name] == "0" for name in names)


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"since": (now - timedelta(minutes=5)).isoformat(), "until": (now + timedelta(minutes=1)).isoformat()}


def test_a_rejected_change_is_replayed_by_status_once_sphere_is_fixed(stack: LocalStack) -> None:
    assert stack.standin is not None
    # Given a change Sphere refused: the customer did not exist in Sphere yet
    key = post_contact(stack, "crm-r1", MISSING_CUSTOMER, "late@example.com")
    wait_until(lambda: status_of(stack, "crm-r1", key) == Status.REJECTED)

    # When the operator previews the rejected events of the last minutes
    preview = stack.replay({"status": "rejected", **window(), "dryRun": True})

    # Then the dry run names the contact and the request it would send, masked, against Sphere's refusal
    assert (preview["dryRun"], preview["matched"], preview["queued"], preview["messages"]) == (True, 1, 1, 0)
    [contact] = preview["contacts"]
    assert (contact["contactId"], contact["customerId"], contact["events"]) == ("crm-r1", MISSING_CUSTOMER, [key])
    assert contact["request"]["email"] != "late@example.com"
    assert contact["compared"] == {"email": "Sphere refused this value before"}
    # And the dry run sent nothing: only the first, refused, call reached Sphere
    assert len(sphere_calls(stack)) == 1

    # When the customer is created in Sphere, and the operator replays the rejected events for real
    stack.standin.add_customer(MISSING_CUSTOMER)
    summary = stack.replay({"status": "rejected", **window()})

    # Then the change went through deliver: Sphere got the email once more, and the event now says delivered by it
    assert (summary["matched"], summary["queued"], summary["messages"], summary["skipped"]) == (1, 1, 1, [])
    wait_until(lambda: status_of(stack, "crm-r1", key) == Status.DELIVERED)
    calls = sphere_calls(stack)
    assert len(calls) == 2
    assert calls[-1].body == {"email": "late@example.com"}
    assert stack.standin.customer(MISSING_CUSTOMER)["email"] == "late@example.com"
    item = stack.store.get_event("generic", "crm-r1", key)
    assert item is not None
    assert f"replayed by the operator ({summary['replayId']})" in item["reason"]
    assert item["fields"] == ["customer_id", "email"]  # as the CRM sent them, kept by the replay
    assert [entry["status"] for entry in item["history"]][-1] == Status.DELIVERED


def test_a_delivered_change_is_skipped_unless_forced_then_sent_again_once(stack: LocalStack) -> None:
    assert stack.standin is not None
    # Given a delivered change
    key = post_contact(stack, "crm-r2", SEED_INDIVIDUAL_ID, "ada@example.com")
    wait_until(lambda: status_of(stack, "crm-r2", key) == Status.DELIVERED)
    event = {"source": "generic", "contactId": "crm-r2", "key": key}

    # When it is replayed by id without force
    skipped = stack.replay({"events": [event]})

    # Then nothing is queued, and the summary says why
    assert (skipped["matched"], skipped["queued"]) == (1, 0)
    assert "set force" in skipped["skipped"][0]["reason"]

    # When it is replayed with force, twice under the same replay id (an operator's double click)
    first = stack.replay({"events": [event], "force": True, "replayId": "resend-1"})
    again = stack.replay({"events": [event], "force": True, "replayId": "resend-1"})
    assert first["queued"] == again["queued"] == 1
    standin = stack.standin
    wait_until(lambda: len(standin.patches(SEED_INDIVIDUAL_ID)) >= 2 and queue_is_empty(stack))

    # Then Sphere got the contact's values once more, not twice
    assert [patch.body for patch in stack.standin.patches(SEED_INDIVIDUAL_ID)] == [{"email": "ada@example.com"}] * 2


def test_a_contact_is_replayed_whole_and_recorded_as_its_own_event(stack: LocalStack) -> None:
    assert stack.standin is not None
    # Given a delivered contact
    key = post_contact(stack, "crm-r3", SEED_INDIVIDUAL_ID, "grace@example.com")
    wait_until(lambda: status_of(stack, "crm-r3", key) == Status.DELIVERED)

    # When the operator replays the contact
    summary = stack.replay({"contact": {"source": "generic", "contactId": "crm-r3"}, "replayId": "whole-contact"})

    # Then one replay event is recorded in its history, delivered, and Sphere got the contact's current request
    assert (summary["matched"], summary["queued"]) == (1, 1)
    wait_until(lambda: status_of(stack, "crm-r3", "replay:whole-contact") == Status.DELIVERED)
    assert stack.standin.patches(SEED_INDIVIDUAL_ID)[-1].body == {"email": "grace@example.com"}


def test_the_dead_letter_queue_is_moved_back_and_delivered_without_duplicates(stack: LocalStack) -> None:
    assert stack.standin is not None
    # Given a change dead-lettered while Sphere was down (two receives allowed)
    stack.standin.fail_next(10, 503)
    key = post_contact(stack, "crm-r4", SEED_INDIVIDUAL_ID, "dlq@example.com")
    wait_until(lambda: status_of(stack, "crm-r4", key) == Status.DEAD_LETTERED, timeout=30)
    stack.standin.fail_next(0, 503)

    # When the operator looks first, then moves the dead-letter queue back
    dry = stack.replay({"deadLetters": True, "dryRun": True})
    moved = stack.replay({"deadLetters": True})

    # Then the dry run saw the message and left it; the replay moved it, deliver delivered it once, the DLQ is empty
    assert (dry["matched"], dry["queued"], dry["messages"]) == (1, 1, 0)
    assert (moved["matched"], moved["queued"], moved["messages"]) == (1, 1, 1)
    wait_until(lambda: status_of(stack, "crm-r4", key) == Status.DELIVERED)
    assert [patch.body for patch in stack.standin.patches(SEED_INDIVIDUAL_ID)] == [{"email": "dlq@example.com"}]
    assert stack.replay({"deadLetters": True, "dryRun": True})["matched"] == 0


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({}, "name exactly one of"),
        ({"status": "rejected"}, "needs since"),
        ({"status": "delivered", "since": "2026-11-26T00:00:00Z"}, "status must be one the table indexes"),
        ({"contact": {"source": "generic"}}, "contact.contactId"),
        ({"deadLetters": True, "limit": 0}, "limit"),
    ],
)
def test_a_malformed_replay_request_is_answered_with_what_is_wrong(
    stack: LocalStack, event: dict[str, Any], problem: str
) -> None:
    # When the replay function gets a test event it cannot read
    answer = stack.replay(event)

    # Then it answers an error naming the problem, and queues nothing
    assert answer["error"]["code"] == "invalid_request"
    assert problem in answer["error"]["message"]


@pytest.mark.parametrize("form", ["events", "status", "contact", "dead-letters"])
def test_each_ready_replay_event_runs_as_the_console_would_run_it(stack: LocalStack, form: str) -> None:
    # Given the committed test event of one replay form (a dry run: an operator sets dryRun to false to replay)
    event = json.loads((EVENTS_DIR / f"replay-{form}.json").read_text(encoding="utf-8"))
    assert event["dryRun"] is True

    # When the replay function is invoked with it, as the Lambda console's Test tab does
    answer = stack.replay(event)

    # Then it answers a dry run's summary (on this fresh stack nothing matches, or the named event is not recorded)
    assert "error" not in answer
    assert answer["dryRun"] is True
    assert answer["queued"] == answer["messages"] == 0 or form == "contact"
