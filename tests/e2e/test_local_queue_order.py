"""The local event source mapping keeps each message group's order exactly as SQS FIFO does.

The deliver function's correctness rests on it: a contact's older change must never reach Sphere
after a newer one. These tests drive the local poller on the same embedded AWS as ``make run``
with a recording handler in place of the deliver function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from devstack.poller import QueuePoller
from devstack.resources import create_resources
from devstack.stack import free_port

GROUPS = 30
MESSAGES_PER_GROUP = 10
FIRST = "contact-0"
WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Queue:
    """The template's FIFO queue on an embedded moto server."""

    sqs: Any
    url: str


@pytest.fixture
def queue() -> Iterator[Queue]:
    """moto on a free loopback port with the template's resources, as ``make run`` starts it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    try:

        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")  # type: ignore[call-overload]

        resources = create_resources(
            dynamodb=client("dynamodb"), sqs=client("sqs"), secretsmanager=client("secretsmanager")
        )
        yield Queue(client("sqs"), resources.queue_url)
    finally:
        server.stop()


def send(queue: Queue, messages: list[tuple[str, int]]) -> None:
    """Queue ``(group, index)`` messages, ten per call, in the order given."""
    for start in range(0, len(messages), 10):
        queue.sqs.send_message_batch(
            QueueUrl=queue.url,
            Entries=[
                {
                    "Id": str(number),
                    "MessageBody": json.dumps({"group": group, "index": index}),
                    "MessageGroupId": group,
                    "MessageDeduplicationId": f"{group}-{index}",
                }
                for number, (group, index) in enumerate(messages[start : start + 10])
            ],
        )


type Message = tuple[str, int]
"""A message's group and its index within the group (its place in the group's order)."""


@dataclass(frozen=True)
class Batch:
    """What the handler was given, in order, and which of it it reported failed."""

    messages: list[Message]
    failed: set[Message]


@dataclass
class RecordingHandler:
    """Stands in for the deliver function: records each batch, fails what ``fail_once`` names the first time.

    A failed message is delayed as the deliver function delays it (``ChangeMessageVisibility``, 0 s
    with ``RETRY_BASE_SECONDS=0``), the rest of its group in the batch is reported failed too
    (``skip_group_on_error``) and delayed by ``skipped_delay`` seconds (the shipped deliver function
    leaves those to the queue's visibility timeout; either way the poller must keep the order).
    """

    queue: Queue
    fail_once: set[Message]
    skipped_delay: int = 1
    batches: list[Batch] = field(default_factory=list)
    succeeded: int = 0
    progress: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        batch = Batch([], set())
        failures: list[str] = []
        for record in event["Records"]:
            body = json.loads(record["body"])
            message = (body["group"], body["index"])
            batch.messages.append(message)
            skipped = any(group == message[0] for group, _ in batch.failed)
            if message in self.fail_once or skipped:
                self.fail_once.discard(message)
                batch.failed.add(message)
                failures.append(record["messageId"])
                self.queue.sqs.change_message_visibility(
                    QueueUrl=self.queue.url,
                    ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=self.skipped_delay if skipped else 0,
                )
        with self.progress:
            self.batches.append(batch)
            self.succeeded += len(batch.messages) - len(batch.failed)
            self.progress.notify_all()
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}

    def wait_for(self, succeeded: int) -> None:
        """Block until ``succeeded`` messages were handled without failure.

        Raises:
            AssertionError: not within ``WAIT_SECONDS``.
        """
        with self.progress:
            if not self.progress.wait_for(lambda: self.succeeded >= succeeded, timeout=WAIT_SECONDS):
                raise AssertionError(f"{self.succeeded} of {succeeded} messages delivered within {WAIT_SECONDS} s")

    def delivered(self) -> dict[str, list[int]]:
        """Each group's messages handled without failure, in the order they were."""
        done: dict[str, list[int]] = {}
        for batch in self.batches:
            for group, index in batch.messages:
                if (group, index) not in batch.failed:
                    done.setdefault(group, []).append(index)
        return done


def out_of_order(batches: list[Batch]) -> list[str]:
    """Each hand-over of a message while an earlier message of its group was still on the queue.

    A message leaves the queue when it is handled without failure; within a batch, a group's
    messages must come in their order.
    """
    done: dict[str, set[int]] = {}
    problems: list[str] = []
    for number, batch in enumerate(batches):
        for position, (group, index) in enumerate(batch.messages):
            before = {i for g, i in batch.messages[:position] if g == group}
            waiting = set(range(index)) - done.get(group, set()) - before
            if waiting:
                problems.append(f"batch {number}: {group}#{index} handed over while #{min(waiting)} was still queued")
        for group, index in batch.messages:
            if (group, index) not in batch.failed:
                done.setdefault(group, set()).add(index)
    return problems


def test_a_contacts_later_messages_wait_while_its_first_one_is_retried_under_load(queue: Queue) -> None:
    # Given a contact's first two changes queued, the first failing once and retried at once,
    # the second skipped with it and delayed by a second;
    # and every third other contact failing once on its fourth change
    send(queue, [(FIRST, 0), (FIRST, 1)])
    fail_once = {(FIRST, 0)} | {(f"contact-{group}", 3) for group in range(1, GROUPS, 3)}
    handler = RecordingHandler(queue, fail_once=set(fail_once))
    poller = QueuePoller(queue.sqs, queue.url, handler, wait_seconds=1)

    # When the local event source mapping drains the queue while 30 contacts' changes keep arriving
    poller.start()
    try:
        load = [(f"contact-{group}", index) for index in range(MESSAGES_PER_GROUP) for group in range(GROUPS)]
        send(queue, [message for message in load if message not in {(FIRST, 0), (FIRST, 1)}])
        handler.wait_for(GROUPS * MESSAGES_PER_GROUP)
    finally:
        poller.stop()

    # Then no message was handed over while an earlier one of its contact was still on the queue
    assert out_of_order(handler.batches) == []
    # And every message was delivered once, in its contact's order, the failed ones after their retry
    assert handler.delivered() == {f"contact-{group}": list(range(MESSAGES_PER_GROUP)) for group in range(GROUPS)}
    assert {message for batch in handler.batches for message in batch.failed} >= fail_once
