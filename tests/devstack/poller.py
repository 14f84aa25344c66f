"""The SQS event source mapping, locally: poll the FIFO queue, invoke the deliver handler, delete what succeeded."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devstack.lambda_events import LambdaContext, sqs_event, sqs_record

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["QueuePoller"]

log = logging.getLogger(__name__)

type Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
type BatchListener = Callable[[list[dict[str, Any]], set[str]], None]


class QueuePoller:
    """Feeds the deliver handler as Lambda's event source mapping would (``ReportBatchItemFailures``)."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        wait_seconds: int = 1,
        on_batch: BatchListener | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._handler = handler
        self._batch_size = batch_size
        self._wait_seconds = wait_seconds
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
        answer = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_seconds,
            MessageSystemAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        records = [
            sqs_record(
                message["Body"],
                queue_arn=self._queue_arn,
                group_id=message["Attributes"]["MessageGroupId"],
                receive_count=int(message["Attributes"].get("ApproximateReceiveCount", "1")),
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                dedup_id=message["Attributes"].get("MessageDeduplicationId"),
                sequence_number=message["Attributes"].get("SequenceNumber", "0"),
            )
            for message in messages
        ]
        response = self._handler(sqs_event(records), LambdaContext(function_name="deliver"))
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        done = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
            if message["MessageId"] not in failed
        ]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=done)  # type: ignore[arg-type]
        self.batches += 1
        if self._on_batch is not None:
            self._on_batch(records, failed)
        return len(messages)
