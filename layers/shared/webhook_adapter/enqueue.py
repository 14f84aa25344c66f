"""SQS FIFO data access: contact changes become messages grouped by contact, sent in batches of ten.

Messages are built (``messages_for``) before anything is sent, so a change that cannot be encoded
refuses the request before the first message is queued: a request is accepted or refused whole.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic_core import PydanticSerializationError

from webhook_adapter.errors import InvalidPayload, StorageUnavailable
from webhook_adapter.model import ContactChange

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

__all__ = ["MESSAGE_LIMIT_BYTES", "ChangeQueue", "QueueMessage", "deduplication_id", "messages_for"]

MESSAGE_LIMIT_BYTES = 64 * 1024
"""SQS bills each started 64 KB of a message as one request: a contact's change over it is split in order."""
_BATCH_LIMIT = 10
_GROUP_ID = re.compile(r"[!-~]{1,128}")
"""What SQS accepts as a message group id: visible ASCII, at most 128 characters."""


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """One FIFO message, ready to send."""

    body: str
    group_id: str
    deduplication_id: str


def message_group_id(change: ContactChange) -> str:
    """The contact's FIFO group, hashed when the contact's id would not make one SQS accepts (``_GROUP_ID``)."""
    group = change.group_id
    return group if _GROUP_ID.fullmatch(group) else hashlib.sha256(group.encode()).hexdigest()


def deduplication_id(change: ContactChange) -> str:
    """Same events, same id: SQS drops a re-send within its 5-minute window (deliver's status check covers the rest).

    An operator's replay of the same events is another delivery (``SourceEvent.call_key``): never dropped as one.
    """
    keys = "\n".join(sorted(event.call_key for event in change.events))
    return hashlib.sha256(f"{change.source}\n{keys}".encode()).hexdigest()


def messages_for(changes: Sequence[ContactChange]) -> list[QueueMessage]:
    """The messages for ``changes``: one per change, split in event order where a body would pass 64 KB.

    Raises:
        InvalidPayload: a change holds text that cannot be encoded (refuse the request before queueing any of it).
    """
    messages: list[QueueMessage] = []
    for change in changes:
        try:
            body = change.model_dump_json()
            size = len(body.encode())
        except (PydanticSerializationError, UnicodeEncodeError) as exc:
            raise InvalidPayload("an event holds text that cannot be encoded as UTF-8") from exc
        if size > MESSAGE_LIMIT_BYTES and len(change.events) > 1:
            half = len(change.events) // 2
            messages += messages_for(
                [
                    change.model_copy(update={"events": change.events[:half]}),
                    change.model_copy(update={"events": change.events[half:]}),
                ]
            )
        else:
            messages.append(QueueMessage(body, message_group_id(change), deduplication_id(change)))
    return messages


@dataclass(frozen=True, slots=True)
class ChangeQueue:
    """Sends contact changes to the FIFO queue that feeds the deliver function, and delays the ones it retries."""

    client: SQSClient
    url: str

    def send(self, messages: Sequence[QueueMessage]) -> None:
        """Queue every message, ten a call; returns only when SQS has taken all of them.

        Raises:
            StorageUnavailable: SQS failed, or refused any message (the caller answers 5xx; a retry re-sends
                them all, and SQS drops the ones it took within its deduplication window).
        """
        for start in range(0, len(messages), _BATCH_LIMIT):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "MessageBody": message.body,
                    "MessageGroupId": message.group_id,
                    "MessageDeduplicationId": message.deduplication_id,
                }
                for index, message in enumerate(messages[start : start + _BATCH_LIMIT])
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
