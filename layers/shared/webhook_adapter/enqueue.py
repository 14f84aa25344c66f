"""SQS FIFO data access: one message per contact change, grouped by contact."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.model import ContactChange

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

__all__ = ["ChangeQueue", "deduplication_id", "message_group_id"]

_BATCH_LIMIT = 10
_ID_LIMIT = 128


def message_group_id(change: ContactChange) -> str:
    """The contact's FIFO group (hashed when the contact's id would make it longer than SQS allows)."""
    group = change.group_id
    return group if len(group) <= _ID_LIMIT else hashlib.sha256(group.encode()).hexdigest()


def deduplication_id(change: ContactChange) -> str:
    """Same events, same id: SQS drops a re-send within its 5-minute window (the table covers the rest)."""
    keys = "\n".join(sorted(event.key for event in change.events))
    return hashlib.sha256(f"{change.source}\n{keys}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChangeQueue:
    """Sends contact changes to the FIFO queue that feeds the deliver function."""

    client: SQSClient
    url: str

    def send(self, changes: Sequence[ContactChange]) -> None:
        """Queue every change; returns only when SQS has taken all of them.

        Raises:
            StorageUnavailable: SQS failed, or refused any message.
        """
        for start in range(0, len(changes), _BATCH_LIMIT):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "MessageBody": change.model_dump_json(),
                    "MessageGroupId": message_group_id(change),
                    "MessageDeduplicationId": deduplication_id(change),
                }
                for index, change in enumerate(changes[start : start + _BATCH_LIMIT])
            ]
            try:
                answer = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                raise StorageUnavailable("could not queue the change on SQS") from exc
            if answer.get("Failed"):
                raise StorageUnavailable(f"SQS refused {len(answer['Failed'])} of {len(entries)} messages")

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Hide a received message for ``seconds`` before it is delivered again (backoff, ``Retry-After``).

        Raises:
            StorageUnavailable: SQS refused the change (the message then returns after the queue's default).
        """
        try:
            self.client.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not delay the message on SQS") from exc
