"""SQS at the rim of the deliver step: a batch of FIFO messages in, the ones to retry out.

Also the deliver function's wiring: the step and its collaborators, built once per warm container.

``deliver_batch`` is the one place deliver's errors are handled. The batch's message groups (one
per contact) are delivered at once, one thread each (``DELIVER_THREADS``); within a group,
messages go in order; once one fails, the group's later messages in the batch are not tried, and
every one of them is hidden for the same backoff (Sphere's ``Retry-After`` when it gave one), so
the contact's order holds and no message keeps the queue's long default visibility. On a
message's last allowed receive its events are recorded ``dead_lettered``: SQS then moves it to the
dead-letter queue, and no event is left without a record.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from webhook_adapter import aws
from webhook_adapter.deliver import Delivery
from webhook_adapter.enqueue import ChangeQueue
from webhook_adapter.errors import PoisonMessage, SphereUnavailable, StorageUnavailable, TransientError
from webhook_adapter.model import ContactChange
from webhook_adapter.outcome import SphereResult
from webhook_adapter.runtime import cached, now_ms, on_reset
from webhook_adapter.secrets import read_secret
from webhook_adapter.settings import deliver_settings
from webhook_adapter.sphere import SphereClient
from webhook_adapter.store import EventStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

__all__ = ["HELD_BEHIND_FAILURE", "OUT_OF_TIME", "change_queue", "deliver_batch", "delivery"]

logger = Logger(child=True)

HELD_BEHIND_FAILURE = "an earlier change of this contact failed"
"""Why a message that was not tried is retried: its contact's earlier message failed in the same batch."""
OUT_OF_TIME = "the invocation had no time left to deliver it"
"""Why a message that was not tried is retried: the batch used the function's time (slow answers from Sphere)."""
_WRITES_MS = 2_000
"""Time kept for reading and writing the table around one Sphere call."""


@cached
def delivery() -> Delivery:
    """The deliver step of this container, with its pooled Sphere client.

    Raises:
        pydantic.ValidationError: the deliver settings are missing or invalid.
    """
    settings = deliver_settings()

    def token(refresh: bool) -> str:
        return read_secret(settings.sphere_token_secret_id, max_age=settings.secret_max_age_seconds, refresh=refresh)

    sphere = SphereClient(
        str(settings.sphere_api_url),
        token,
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
        connections=settings.deliver_threads,
    )
    on_reset(sphere.close)
    return Delivery(
        store=EventStore(aws.dynamodb(), settings.table_name, settings.outcome_ttl_days),
        sphere=sphere,
        settings=settings,
        now_ms=now_ms,
    )


@cached
def change_queue() -> ChangeQueue:
    """The queue the deliver function consumes (to delay a message it will retry)."""
    return ChangeQueue(aws.sqs(), deliver_settings().queue_url)


@dataclass(frozen=True, slots=True)
class _Held:
    """A failed message group: how long its messages wait, and why."""

    delay_seconds: int
    reason: str


def deliver_batch(records: Sequence[SQSRecord], remaining_ms: Callable[[], int] | None = None) -> list[str]:
    """Deliver a batch, its contacts at once and each contact's messages in order; the message ids to retry.

    Never raises for a message's failure: each one is recorded and delayed, and the other groups go on.
    ``remaining_ms`` is the invocation's time left: a message is not started unless one Sphere call
    (with its refetch after a 401) and the writes can still finish, so a batch of slow calls ends
    with its untried messages returned to the queue instead of a timeout that forgets them all.
    The failed ids keep the batch's order.
    """
    # Built here, before any thread starts: the cached builders are not locks, and boto3 clients must not be
    # created by several threads at once (using one from several threads is safe).
    delivery()
    change_queue()
    groups: dict[str, list[SQSRecord]] = {}
    for record in records:
        groups.setdefault(record.attributes.message_group_id or record.message_id, []).append(record)
    threads = min(deliver_settings().deliver_threads, len(groups))
    failed: set[str] = set()
    if threads <= 1:
        for group in groups.values():
            failed |= _deliver_group(group, remaining_ms)
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deliver") as pool:
            # Each thread runs in a copy of this context: keys a caller set per thread (Powertools'
            # ``thread_safe_append_keys``) stay on the log lines a group writes.
            futures = [
                pool.submit(contextvars.copy_context().run, _deliver_group, group, remaining_ms)
                for group in groups.values()
            ]
            for future in futures:
                failed |= future.result()
    return [record.message_id for record in records if record.message_id in failed]


def _deliver_group(records: Sequence[SQSRecord], remaining_ms: Callable[[], int] | None) -> set[str]:
    """Deliver one message group's messages in order; the ids of those to retry (a failure holds back the rest)."""
    failed: set[str] = set()
    held: _Held | None = None
    for record in records:
        if held is None and remaining_ms is not None and remaining_ms() < _time_needed_ms():
            held = _Held(0, OUT_OF_TIME)
        if held is not None:
            _hold(record, held)
        else:
            held = _deliver(record)
            if held is None:
                continue
        failed.add(record.message_id)
    return failed


def _time_needed_ms() -> int:
    settings = delivery().settings
    per_call = settings.sphere_connect_timeout_seconds + settings.sphere_timeout_seconds
    return int(2 * per_call * 1000) + _WRITES_MS


def _attempt(record: SQSRecord) -> int:
    return int(record.attributes.approximate_receive_count or "1")


def _change(record: SQSRecord) -> ContactChange:
    """The message's contact change.

    Raises:
        PoisonMessage: the body is not a contact change.
    """
    try:
        return ContactChange.model_validate_json(record.body)
    except ValidationError as exc:
        raise PoisonMessage(f"message {record.message_id} is not a contact change") from exc


def _deliver(record: SQSRecord) -> _Held | None:
    """Deliver one message; ``None`` when done, else how long its group waits (the failure is recorded)."""
    try:
        change = _change(record)
    except PoisonMessage as exc:
        # No retry can help: it returns at once and reaches the dead-letter queue after its allowed receives.
        logger.error("message cannot be delivered", message_id=record.message_id, error=exc.message)
        _delay(record, 0)
        return _Held(0, exc.message)
    attempt = _attempt(record)
    try:
        delivery().deliver(change, attempt=attempt)
    except TransientError as exc:
        held = _Held(delivery().retry_delay(attempt, exc.retry_after), exc.message)
        return _retry_later(record, change, held, result=exc.result if isinstance(exc, SphereUnavailable) else None)
    except Exception:  # one message's unforeseen fault must not fail the batch's other contacts
        logger.exception("delivery failed unexpectedly", message_id=record.message_id)
        return _retry_later(record, change, _Held(delivery().retry_delay(attempt), "delivery failed unexpectedly"))
    return None


def _hold(record: SQSRecord, held: _Held) -> None:
    """A message behind its group's failure: not tried, delayed as long as the failed one."""
    try:
        change = _change(record)
    except PoisonMessage:
        _delay(record, held.delay_seconds)
        return
    reason = held.reason if held.reason == OUT_OF_TIME else HELD_BEHIND_FAILURE
    _retry_later(record, change, _Held(held.delay_seconds, reason), record_unless_last=False)


def _retry_later(
    record: SQSRecord,
    change: ContactChange,
    held: _Held,
    *,
    result: SphereResult | None = None,
    record_unless_last: bool = True,
) -> _Held:
    """Record the failed attempt (``dead_lettered`` on the last allowed receive) and delay the message."""
    attempt = _attempt(record)
    last = attempt >= delivery().settings.max_receive_count
    logger.warning(
        "delivery failed, dead-lettered" if last else "delivery failed, will retry",
        source=change.source,
        events=len(change.events),
        attempt=attempt,
        reason=held.reason,
        delay_seconds=0 if last else held.delay_seconds,
    )
    if last or record_unless_last:
        try:
            delivery().record_failure(change, held.reason, attempt=attempt, last=last, result=result)
        except StorageUnavailable as exc:
            logger.error("could not record the failed attempt", source=change.source, error=exc.message)
    # On the last receive the delay only keeps the change from the dead-letter queue: let it go now.
    _delay(record, 0 if last else held.delay_seconds)
    return held


def _delay(record: SQSRecord, seconds: int) -> None:
    try:
        change_queue().delay(record.receipt_handle, seconds)
    except StorageUnavailable:
        logger.warning("could not delay the message; it returns after the queue's visibility timeout")
