"""The SQS event source mapping, locally: take batches off the FIFO queue in order, invoke deliver, delete successes.

Batches come from ``FifoQueue`` (moto's in-process queue read the way SQS FIFO hands messages
out), not from moto's ``ReceiveMessage``, which can hand a contact's later change out before an
earlier one (see ``devstack.fifo``). One deliver invocation runs at a time, as in one container.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devstack.fifo import FifoQueue
from devstack.lambda_events import LambdaContext, sqs_event, sqs_record

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["QueuePoller"]

log = logging.getLogger(__name__)

type Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
type BatchListener = Callable[[list[dict[str, Any]], set[str]], None]


class QueuePoller:
    """Feeds the deliver handler as Lambda's event source mapping would (``ReportBatchItemFailures``).

    ``visibility_timeout`` hides each received message that long (the queue's own by default, as
    the mapping does); ``wait_seconds`` is how long one poll waits for a message (a send wakes it).
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        wait_seconds: float = 1.0,
        visibility_timeout: int | None = None,
        on_batch: BatchListener | None = None,
    ) -> None:
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._queue = FifoQueue(self._queue_arn)
        self._handler = handler
        self._batch_size = batch_size
        self._wait_seconds = wait_seconds
        self._visibility_timeout = visibility_timeout
        self._on_batch = on_batch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-sqs-poller", daemon=True)
        self.batches = 0

    def start(self) -> None:
        """Poll in a background thread until ``stop``."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the batch in hand, then stop."""
        self._stop.set()
        self._thread.join(timeout=self._wait_seconds + 30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the poller outlives any one bad batch, as the real mapping does
                log.exception("local poller: batch failed")

    def poll_once(self) -> int:
        """Receive one batch, deliver it, delete its successes; the number of messages received."""
        messages = self._queue.receive(
            self._batch_size,
            visibility_timeout=self._visibility_timeout,
            wait_seconds=self._wait_seconds,
            stop=self._stop,
        )
        if not messages:
            return 0
        records = [
            sqs_record(
                message.body,
                queue_arn=self._queue_arn,
                group_id=message.group_id,
                receive_count=message.receive_count,
                message_id=message.message_id,
                receipt_handle=message.receipt_handle,
                dedup_id=message.deduplication_id,
                sequence_number=message.sequence_number,
                sent_timestamp=message.sent_timestamp,
                first_receive_timestamp=message.first_receive_timestamp,
            )
            for message in messages
        ]
        response = self._handler(sqs_event(records), LambdaContext(function_name="deliver"))
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        self._queue.delete(message.receipt_handle for message in messages if message.message_id not in failed)
        self.batches += 1
        if self._on_batch is not None:
            self._on_batch(records, failed)
        return len(messages)
