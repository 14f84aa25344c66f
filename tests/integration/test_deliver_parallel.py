"""Deliver in parallel: a batch's contacts go to Sphere at once, each contact's messages still in order.

Through the deliver handler (or ``consume.deliver_batch``) on moto and the Sphere stand-in:

- the calls of a batch's contacts are in flight together (a sequential loop would never meet);
- a failing contact holds back only its own later messages, and the failed ids keep the batch's order;
- a group that starts late (all threads busy) is checked against the invocation's time when it starts;
- log lines written in the threads carry the invocation's context;
- one connection pool serves the container's invocations: it opens at most one connection per thread;
- a 429 holds the container's later calls until its Retry-After has passed;
- the batch's contacts are read in one call and their outcomes written in one, and either failing
  loses nothing.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SQSEvent

from devstack.kit import (
    SOURCE,
    HubSpotEvent,
    contact,
    fail_once,
    invoke_deliver,
    log_to_stdout,
    now_ms,
    post,
    queue_arn,
    received_records,
    record_holding,
    status_of,
    stored,
)
from devstack.lambda_events import LambdaContext, sqs_event, sqs_record
from devstack.pipeline import Pipeline
from webhook_adapter import aws, consume, runtime
from webhook_adapter.errors import SphereCallsHeld, StorageUnavailable
from webhook_adapter.sphere import SphereClient
from webhook_adapter.store import EventStore

BATCH = 10


def customer(number: int) -> str:
    """A Sphere customer id of the stand-in, one per contact."""
    return f"customer_par{number:04d}"


def contacts(pipeline: Pipeline, first: int, count: int = BATCH) -> list[list[HubSpotEvent]]:
    """``count`` contacts known to Sphere, each with one email change queued (one message each)."""
    start = now_ms()
    queued = []
    for number in range(first, first + count):
        pipeline.standin.add_customer(customer(number))
        events = contact(number, at=start, sphere_customer_id=customer(number), email=f"c{number}@example.com")
        post(pipeline, *events)
        queued.append(events)
    return queued


def one_batch(pipeline: Pipeline, queued: list[list[HubSpotEvent]]) -> list[dict[str, Any]]:
    """The queued messages as one event-source-mapping batch, in the order the contacts were queued."""
    records: list[dict[str, Any]] = []
    while len(records) < len(queued):
        records += received_records(pipeline)
    return [record_holding(records, events[0]) for events in queued]


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline) -> None:
    """The deliver function with two threads (set before its settings are read)."""
    monkeypatch.setenv("DELIVER_THREADS", "2")
    runtime.reset()


def test_a_batchs_contacts_are_delivered_at_once(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given ten contacts' changes in one batch, and Sphere calls that wait until all ten are in flight
    batch = one_batch(pipeline, queued := contacts(pipeline, 1))
    meeting = threading.Barrier(BATCH, timeout=20)
    original = SphereClient.update_customer

    def update_when_all_are_in_flight(self: SphereClient, customer_id: str, body: dict[str, Any], **kw: Any) -> Any:
        meeting.wait()  # one contact at a time would never get past this: the barrier breaks
        return original(self, customer_id, body, **kw)

    monkeypatch.setattr(SphereClient, "update_customer", update_when_all_are_in_flight)

    # When the deliver handler gets the batch
    failed = invoke_deliver(pipeline, batch)

    # Then every contact is delivered
    assert failed == set()
    assert sorted(str(request.customer_id) for request in pipeline.standin.patches()) == [
        customer(number) for number in range(1, BATCH + 1)
    ]
    assert status_of(pipeline, *(event for events in queued for event in events)) == ["delivered"] * 2 * BATCH


def test_failed_ids_keep_the_batchs_order_and_only_failing_contacts_are_held(pipeline: Pipeline) -> None:
    # Given contacts A (two changes) and B, a message that is not a contact change, and Sphere failing A's call
    start = now_ms()
    for number in (1, 2):
        pipeline.standin.add_customer(customer(number))
    a1 = contact(1, at=start, sphere_customer_id=customer(1), email="a1@example.com")
    b1 = contact(2, at=start, sphere_customer_id=customer(2), email="b1@example.com")
    a2 = contact(1, at=start + 5_000, email="a2@example.com")
    for events in (a1, b1, a2):
        post(pipeline, *events)
    records = received_records(pipeline)
    poison = sqs_record("not a change", queue_arn=queue_arn(pipeline), group_id=f"{SOURCE}:62515:999")
    batch = [record_holding(records, a1[0]), record_holding(records, b1[0]), poison, record_holding(records, a2[0])]
    pipeline.standin.fail_next(1, 503, customer_id=customer(1))

    # When the handler gets A1, B1, the poison message and A2 (three groups, delivered at once)
    response = pipeline.deliver_handler(sqs_event(batch), LambdaContext(function_name="deliver"))

    # Then A1, the poison message and A2 are reported failed, in the batch's order, and B1 is delivered
    reported = [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
    assert reported == [batch[0]["messageId"], batch[2]["messageId"], batch[3]["messageId"]]
    assert status_of(pipeline, *b1) == ["delivered", "delivered"]
    assert status_of(pipeline, *a1) == ["retrying", "retrying"]


@pytest.mark.usefixtures("threads")
def test_a_contact_that_starts_late_is_checked_against_the_time_left_when_it_starts(pipeline: Pipeline) -> None:
    # Given three contacts' changes, two threads, and an invocation that runs out of time after two contacts started
    batch = one_batch(pipeline, queued := contacts(pipeline, 1, 3))
    time_left = iter([30_000, 30_000])

    def remaining_ms() -> int:
        return next(time_left, 0)

    # When the batch is delivered
    failed = consume.deliver_batch(list(SQSEvent(sqs_event(batch)).records), remaining_ms)

    # Then the two first contacts are delivered; the third, which waited for a thread, is returned untried
    assert failed == [batch[2]["messageId"]]
    assert [request.customer_id for request in pipeline.standin.patches()].count(customer(3)) == 0
    assert status_of(pipeline, *queued[0], *queued[1]) == ["delivered"] * 4
    with pytest.raises(KeyError):
        status_of(pipeline, queued[2][0])


def test_log_lines_written_in_threads_carry_the_invocations_context(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two contacts, one whose call fails (a warning is written in its thread), and a key set for this thread
    log_to_stdout(monkeypatch)
    queued = contacts(pipeline, 1, 2)
    batch = one_batch(pipeline, queued)
    pipeline.standin.fail_next(1, 503, customer_id=customer(1))
    logger = Logger()
    logger.thread_safe_append_keys(tenant="tenant-7")

    # When the deliver handler gets both
    try:
        pipeline.deliver_handler(sqs_event(batch), LambdaContext(function_name="deliver", aws_request_id="req-42"))
    finally:
        logger.thread_safe_clear_keys()

    # Then the failure's warning names the invocation and carries the caller's thread key
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"level"')]
    [warning] = [line for line in lines if line["message"] == "delivery failed, will retry"]
    assert warning["function_request_id"] == "req-42"
    assert warning["tenant"] == "tenant-7"


def test_two_invocations_share_one_connection_pool(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given twenty contacts' changes, Sphere answering after 200 ms, and calls that all go out together
    first = one_batch(pipeline, contacts(pipeline, 1))
    second = one_batch(pipeline, contacts(pipeline, 101))
    pipeline.standin.set_latency(0.2)
    meeting = threading.Barrier(BATCH, timeout=20)
    original = SphereClient.update_customer

    def update_when_all_are_in_flight(self: SphereClient, customer_id: str, body: dict[str, Any], **kw: Any) -> Any:
        meeting.wait()
        return original(self, customer_id, body, **kw)

    monkeypatch.setattr(SphereClient, "update_customer", update_when_all_are_in_flight)
    before = pipeline.standin.connection_count

    # When two invocations of ten contacts each are delivered by the same warm container
    assert invoke_deliver(pipeline, first) == set()
    assert invoke_deliver(pipeline, second) == set()

    # Then twenty calls went over at most one connection per thread: the second invocation reused the first's
    assert len(pipeline.standin.patches()) == 2 * BATCH
    assert pipeline.standin.connection_count - before <= BATCH


def test_a_429_holds_the_containers_later_calls_until_its_retry_after(
    pipeline: Pipeline, visibility_changes: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given contacts A and B, and Sphere answering A's call 429 with Retry-After: 7
    # (the container's pace on a clock that stands still: no time passes between the two invocations)
    pace = consume.sphere_pace()
    still = pace._clock()
    monkeypatch.setattr(pace, "_clock", lambda: still)
    queued = contacts(pipeline, 1, 2)
    a, b = one_batch(pipeline, queued)
    pipeline.standin.fail_next(1, 429, retry_after=7, customer_id=customer(1))
    assert invoke_deliver(pipeline, [a]) == {a["messageId"]}

    # When the same container gets B in an invocation that cannot wait 7 seconds (2 to spare beyond its calls)
    context = LambdaContext(function_name="deliver", deadline_ms=now_ms() + 12_000)
    response = pipeline.deliver_handler(sqs_event([b]), context)

    # Then B is not sent: it goes back to the queue until the pause has passed, recorded as retrying
    assert [failure["itemIdentifier"] for failure in response["batchItemFailures"]] == [b["messageId"]]
    assert [(request.customer_id, request.status) for request in pipeline.standin.requests] == [(customer(1), 429)]
    [seconds] = [seconds for handle, seconds in visibility_changes if handle == b["receiptHandle"]]
    assert 7 <= seconds <= 8
    item = stored(pipeline, queued[1][1])
    assert (item["status"], item["reason"]) == ("retrying", SphereCallsHeld(retry_after=7).message)


@pytest.fixture
def dynamodb_calls(pipeline: Pipeline) -> Counter[str]:
    """Every DynamoDB operation the deliver function makes, counted by name."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    aws.dynamodb().meta.events.register("before-call.dynamodb", count)
    return calls


def test_a_batchs_contacts_are_read_in_one_call_and_their_outcomes_written_in_one(
    pipeline: Pipeline, dynamodb_calls: Counter[str]
) -> None:
    # Given ten contacts' changes in one batch
    queued = contacts(pipeline, 1)
    batch = one_batch(pipeline, queued)
    dynamodb_calls.clear()  # receive's

    # When the deliver handler gets the batch
    assert invoke_deliver(pipeline, batch) == set()

    # Then the ten contacts were read at once and their outcomes written at once; each state on its own
    # (a conditional write per contact)
    assert dynamodb_calls == Counter({"BatchGetItem": 1, "PutItem": BATCH, "BatchWriteItem": 1})
    assert status_of(pipeline, *(event for events in queued for event in events)) == ["delivered"] * 2 * BATCH


def test_when_the_batchs_read_fails_each_contact_is_read_on_its_own(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three contacts' changes, and DynamoDB failing the batch's read of all three
    queued = contacts(pipeline, 1, 3)
    batch = one_batch(pipeline, queued)
    failure = StorageUnavailable("could not read events from DynamoDB")
    monkeypatch.setattr(EventStore, "load_changes", fail_once(EventStore.load_changes, failure))

    # When the deliver handler gets the batch
    failed = invoke_deliver(pipeline, batch)

    # Then each contact was read on its own, and delivered
    assert failed == set()
    assert status_of(pipeline, *(event for events in queued for event in events)) == ["delivered"] * 6


def test_when_the_batchs_outcomes_cannot_be_written_every_call_is_recorded_on_retry_without_calling_again(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three contacts' changes, and DynamoDB failing once to write their outcomes, after Sphere applied them
    queued = contacts(pipeline, 1, 3)
    batch = one_batch(pipeline, queued)
    failure = StorageUnavailable("could not record events in DynamoDB")
    monkeypatch.setattr(EventStore, "record_outcomes", fail_once(EventStore.record_outcomes, failure))

    # When the deliver handler gets the batch
    failed = invoke_deliver(pipeline, batch)

    # Then every message is reported failed and recorded retrying, though Sphere has every change
    assert failed == {record["messageId"] for record in batch}
    assert len(pipeline.standin.patches()) == 3
    events = [event for events in queued for event in events]
    assert status_of(pipeline, *events) == ["retrying"] * 6

    # When they come back
    for record in batch:
        pipeline.sqs.change_message_visibility(
            QueueUrl=pipeline.resources.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
        )
    pipeline.drain()

    # Then each is recorded delivered, with Sphere's answer, and Sphere was not called again
    assert len(pipeline.standin.patches()) == 3
    assert status_of(pipeline, *events) == ["delivered"] * 6
    assert all(stored(pipeline, event)["sphere"]["http_status"] == 200 for event in events)
