"""SQS FIFO receive and delete on moto's own queue objects, keeping every message group's order.

The local stack runs moto in this process (``ThreadedMotoServer``, or ``mock_aws`` in the
integration tests), so the local event source mapping reads the queue moto keeps in memory
instead of calling ``ReceiveMessage``. moto 5.2.5's ``ReceiveMessage`` gets FIFO order wrong:

- it frees a message group lazily, message by message in queue order: when two in-flight messages
  of a group become visible again (a retried change and the change skipped behind it), the earlier
  one is checked while the later one still marks the group busy and is passed over; the later one
  then frees the group and is handed out first;
- its ``SequenceNumber`` is 20 random digits, not an order;
- ``DeleteMessage`` rebuilds the message list without the lock ``SendMessage`` appends under, so a
  change sent during a delete can vanish from the queue;
- every call walks the whole queue several times, so it slows sharply past about a thousand messages.

``FifoQueue`` does what SQS FIFO does instead, under the queue's own lock: a group with a message
in flight (received and hidden, by the visibility timeout or a ``ChangeMessageVisibility``
backoff) or delayed gives nothing; other groups give their messages in the order they were sent,
several of a group in one batch if they are next. Receive counts, receipt handles, visibility and
the redrive to the dead-letter queue stay moto's, so ``ChangeMessageVisibility`` and
``GetQueueAttributes`` over the API see the same queue.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from moto.core.utils import unix_time_millis
from moto.sqs.models import sqs_backends

__all__ = ["FifoQueue", "ReceivedMessage"]

RECHECK_SECONDS = 0.05
"""Longest wait before looking again: a visibility timeout runs out without waking anyone (a send does)."""


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message as received: what an SQS event record carries."""

    message_id: str
    receipt_handle: str
    body: str
    group_id: str
    deduplication_id: str | None
    sequence_number: str
    receive_count: int
    sent_timestamp: int
    first_receive_timestamp: int


class FifoQueue:
    """The FIFO queue ``queue_arn`` names, in moto's in-process backend."""

    def __init__(self, queue_arn: str) -> None:
        _, _, _, self._region, self._account, self._name = queue_arn.split(":", 5)
        self._numbers = itertools.count(1)
        self._sequence: dict[str, str] = {}
        """Sequence numbers handed out, by message id: in the order the messages were sent."""

    def _queue(self) -> Any:
        return sqs_backends[self._account][self._region].get_queue(self._name)

    def receive(
        self,
        max_messages: int,
        *,
        visibility_timeout: int | None = None,
        wait_seconds: float = 0.0,
        stop: threading.Event | None = None,
    ) -> list[ReceivedMessage]:
        """Up to ``max_messages`` messages, each group's in order; waits up to ``wait_seconds`` for one.

        ``visibility_timeout`` defaults to the queue's, as the event source mapping uses it; a set
        ``stop`` ends the wait early (with nothing).
        """
        queue = self._queue()
        hidden_for = int(queue.visibility_timeout) if visibility_timeout is None else visibility_timeout
        deadline = time.monotonic() + wait_seconds
        with queue._messages_lock:
            while True:
                received = self._take(queue, max_messages, hidden_for)
                remaining = deadline - time.monotonic()
                if received or remaining <= 0 or (stop is not None and stop.is_set()):
                    return received
                queue._messages_lock.wait(timeout=min(remaining, RECHECK_SECONDS))

    def _take(self, queue: Any, max_messages: int, hidden_for: int) -> list[ReceivedMessage]:
        """Receive what SQS FIFO would hand out now; call with the queue's lock held."""
        now = unix_time_millis()
        messages = list(queue._messages)
        for message in messages:
            if message.id not in self._sequence:
                message.sequence_number = self._sequence[message.id] = f"{next(self._numbers):020d}"
        # As moto's Message.visible and .delayed decide it: in flight while now <= visible_at
        busy = {message.group_id for message in messages if now <= message.visible_at or now < message.delayed_until}
        policy = queue.redrive_policy if queue.dead_letter_queue is not None else None
        received: list[ReceivedMessage] = []
        dead: list[Any] = []
        for message in messages:
            if len(received) >= max_messages:
                break
            if message.group_id in busy:
                continue
            if policy and message.approximate_receive_count >= policy["maxReceiveCount"]:
                dead.append(message)  # received as often as the redrive policy allows: its group moves on
                continue
            message.mark_received(visibility_timeout=hidden_for)
            queue.pending_messages.add(message)
            received.append(_received(message))
        for message in dead:
            queue._messages.remove(message)
            queue.pending_messages.discard(message)
            self._sequence.pop(message.id, None)
            queue.dead_letter_queue.add_message(message)
        return received

    def delete(self, receipt_handles: Iterable[str]) -> None:
        """Delete the received messages these handles name (as ``DeleteMessageBatch``), under the queue's lock.

        Raises:
            moto.sqs.exceptions.ReceiptHandleIsInvalid: a handle no message of the queue ever had.
        """
        queue = self._queue()
        with queue._messages_lock:
            for handle in receipt_handles:
                for message in queue._messages:
                    if message.had_receipt_handle(handle):
                        self._sequence.pop(message.id, None)
                queue.delete_message(handle)


def _received(message: Any) -> ReceivedMessage:
    return ReceivedMessage(
        message_id=message.id,
        receipt_handle=message.receipt_handle,
        body=message.body,
        group_id=message.group_id,
        deduplication_id=message.deduplication_id,
        sequence_number=message.sequence_number,
        receive_count=message.approximate_receive_count,
        sent_timestamp=int(message.sent_timestamp),
        first_receive_timestamp=int(message.approximate_first_receive_timestamp),
    )
