"""SQS at the rim of the deliver step: a batch of FIFO messages in, the ones to retry out.

Also the deliver function's wiring: the step and its collaborators, built once per warm container.

``deliver_batch`` is the one place deliver's errors are handled. The batch's message groups (one
per contact) are delivered at once, one thread each (``DELIVER_THREADS``); within a group,
messages go in order, and consecutive ones go to Sphere together, as one call with the newest value
of each field (up to ``MAX_EVENTS_PER_CALL`` events; a message that is not a contact change ends a
run). Once a call fails, each of its messages is recorded as its own failed attempt, the group's
later messages in the batch are not tried, and every one of them is hidden for the same backoff
(Sphere's ``Retry-After`` when it gave one), so the contact's order holds and no message keeps the
queue's long default visibility. On a message's last allowed receive its events are recorded
``dead_lettered``: SQS then moves it to the dead-letter queue, and no event is left without a record.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from webhook_adapter import aws
from webhook_adapter.deliver import Delivered, Delivery, Received
from webhook_adapter.enqueue import ChangeQueue
from webhook_adapter.errors import PoisonMessage, SphereUnavailable, StorageUnavailable, TransientError
from webhook_adapter.model import ContactChange
from webhook_adapter.outcome import SphereResult
from webhook_adapter.pace import CallPace
from webhook_adapter.readers import reading
from webhook_adapter.runtime import cached, now_ms, on_reset
from webhook_adapter.secrets import read_secret
from webhook_adapter.settings import deliver_settings
from webhook_adapter.sphere import SphereClient
from webhook_adapter.store import EventStore, Loaded, contact_pk

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

__all__ = [
    "HELD_BEHIND_FAILURE",
    "MAX_EVENTS_PER_CALL",
    "OUT_OF_TIME",
    "change_queue",
    "deliver_batch",
    "delivery",
    "sphere_pace",
]

logger = Logger(child=True)

HELD_BEHIND_FAILURE = "an earlier change of this contact failed"
"""Why a message that was not tried is retried: its contact's earlier message failed in the same batch."""
OUT_OF_TIME = "the invocation had no time left to deliver it"
"""Why a message that was not tried is retried: the batch used the function's time (slow answers from Sphere)."""
_WRITES_MS = 2_000
"""Time kept for reading and writing the table around one Sphere call."""
MAX_EVENTS_PER_CALL = 100
"""The most events consecutive messages are coalesced into for one Sphere call: what one HubSpot request can
already put in one message, so the contact's state (a digest per event of its latest call) grows no larger."""


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
        pace=sphere_pace(),
    )
    on_reset(sphere.close)
    return Delivery(
        store=EventStore(aws.dynamodb(), settings.table_name, settings.outcome_ttl_days),
        sphere=sphere,
        settings=settings,
        now_ms=now_ms,
        readings=reading,
    )


@cached
def sphere_pace() -> CallPace:
    """This container's pace toward Sphere: its share of the adapter's ceiling, slowed down by 429s.

    Kept for the warm container's life, so a slow-down outlasts the invocation that met the 429.

    Raises:
        pydantic.ValidationError: the deliver settings are missing or invalid.
    """
    settings = deliver_settings()
    # A pause never outlasts the longest backoff: the messages it holds come back by then anyway.
    return CallPace(
        settings.sphere_calls_per_second, burst=settings.deliver_threads, max_pause=settings.retry_max_seconds
    )


@cached
def change_queue() -> ChangeQueue:
    """The queue the deliver function consumes (to delay a message it will retry)."""
    return ChangeQueue(aws.sqs(), deliver_settings().queue_url)


type _Message = tuple[SQSRecord, ContactChange | PoisonMessage]
"""A received message and its contact change, or why it is not one."""
type _Run = list[tuple[SQSRecord, ContactChange]]
"""Consecutive messages of one contact delivered in one Sphere call."""


@dataclass(frozen=True, slots=True)
class _Held:
    """A failed message group: how long its messages wait, and why."""

    delay_seconds: int
    reason: str


@dataclass(slots=True)
class _Done:
    """What delivering message groups came to: the ids to retry, and the calls whose outcomes are to write."""

    failed: set[str] = field(default_factory=set)
    delivered: list[tuple[_Run, Delivered]] = field(default_factory=list)

    def add(self, other: _Done) -> None:
        self.failed |= other.failed
        self.delivered += other.delivered


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
    groups: dict[str, list[_Message]] = {}
    for record in records:
        groups.setdefault(record.attributes.message_group_id or record.message_id, []).append((record, _read(record)))
    loaded = _read_first_runs(list(groups.values()))
    threads = min(deliver_settings().deliver_threads, len(groups))
    done = _Done()
    if threads <= 1:
        for messages in groups.values():
            done.add(_deliver_group(messages, remaining_ms, loaded))
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deliver") as pool:
            # Each thread runs in a copy of this context: keys a caller set per thread (Powertools'
            # ``thread_safe_append_keys``) stay on the log lines a group writes.
            futures = [
                pool.submit(contextvars.copy_context().run, _deliver_group, messages, remaining_ms, loaded)
                for messages in groups.values()
            ]
            for future in futures:
                done.add(future.result())
    failed = done.failed | _record(done.delivered)
    return [record.message_id for record in records if record.message_id in failed]


def _record(delivered: Sequence[tuple[_Run, Delivered]]) -> set[str]:
    """Write the outcomes of the batch's delivered calls at once; the ids to retry when that failed.

    Sphere has every one of these calls and each contact's state records it: the retry of a message
    whose outcome could not be written records what its call did, without calling Sphere again.
    """
    calls = [(run, call) for run, call in delivered if call.messages]
    if not calls:
        return set()
    try:
        delivery().record([call for _, call in calls])
    except TransientError as exc:
        reason, retry_after = exc.message, exc.retry_after
    except Exception:  # a fault here must still leave every message recorded and retried
        logger.exception("recording the outcomes failed unexpectedly")
        reason, retry_after = "delivery failed unexpectedly", None
    else:
        return set()
    failed: set[str] = set()
    for run, _ in calls:
        held = _Held(delivery().retry_delay(_attempt(run[0][0]), retry_after), reason)
        for record, change in run:
            _retry_later(record, change, held)
            failed.add(record.message_id)
    return failed


def _read_first_runs(groups: Sequence[Sequence[_Message]]) -> dict[str, Loaded]:
    """What the groups' first runs read first (their contacts' state and events), in one read for all.

    Empty when there is one run only, or when the read failed: each run then reads its own (and a
    failure is that run's, recorded and retried like any other).
    """
    runs = [run for messages in groups if (run := _run(messages))]
    if len(runs) < 2:  # one run reads its own, as it always did
        return {}
    try:
        return delivery().read([_received(run) for run in runs])
    except StorageUnavailable:
        logger.warning("could not read the batch's contacts at once; each is read on its own")
        return {}


def _deliver_group(
    messages: Sequence[_Message], remaining_ms: Callable[[], int] | None, loaded: Mapping[str, Loaded]
) -> _Done:
    """Deliver one message group's messages in order: the ids to retry (a failure holds back the rest), and the
    calls made (their outcomes are written for the whole batch at once).

    Consecutive changes go to Sphere together (``_run``); a run is started only if the invocation has
    the time for it, and what time it can spare beyond that bounds its wait for the pace toward Sphere.
    The first run uses what ``loaded`` holds for its contact (read with the batch's other contacts).
    """
    done = _Done()
    held: _Held | None = None
    start = 0
    while start < len(messages):
        record, change = messages[start]
        spare_ms = None if held is not None or remaining_ms is None else remaining_ms() - _time_needed_ms()
        if spare_ms is not None and spare_ms < 0:
            held = _Held(0, OUT_OF_TIME)
        if held is not None:
            _hold(record, change, held)
        elif isinstance(change, PoisonMessage):
            held = _reject(record, change)
        else:
            run = _run(messages[start:])
            known = loaded.get(contact_pk(change.source, change.contact_id)) if start == 0 else None
            outcome = _deliver(run, max_wait=None if spare_ms is None else spare_ms / 1000, loaded=known)
            if isinstance(outcome, _Held):
                held = outcome
                done.failed.update(record.message_id for record, _ in run)
            else:
                done.delivered.append((run, outcome))
            start += len(run)
            continue
        done.failed.add(record.message_id)
        start += 1
    return done


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


def _read(record: SQSRecord) -> ContactChange | PoisonMessage:
    """The message's contact change, or why it is not one."""
    try:
        return _change(record)
    except PoisonMessage as exc:
        return exc


def _run(messages: Sequence[_Message]) -> _Run:
    """The leading messages one Sphere call can take, the first one always.

    They are changes of one contact, no poison among them, with at most ``MAX_EVENTS_PER_CALL`` events
    in all unless the first alone holds more.
    """
    run: _Run = []
    events = 0
    for record, change in messages:
        if isinstance(change, PoisonMessage):
            break
        if run and (
            (change.source, change.contact_id) != (run[0][1].source, run[0][1].contact_id)
            or events + len(change.events) > MAX_EVENTS_PER_CALL
        ):
            break
        run.append((record, change))
        events += len(change.events)
    return run


def _reject(record: SQSRecord, poison: PoisonMessage) -> _Held:
    """A message that is not a contact change: no retry can help.

    It returns at once and reaches the dead-letter queue after its allowed receives; its group's later
    messages wait behind it (a poison message ends a run: it is never coalesced).
    """
    logger.error("message cannot be delivered", message_id=record.message_id, error=poison.message)
    _delay(record, 0)
    return _Held(0, poison.message)


def _received(run: _Run) -> list[Received]:
    return [Received(change, _attempt(record)) for record, change in run]


def _deliver(run: _Run, *, max_wait: float | None, loaded: Loaded | None) -> Delivered | _Held:
    """Deliver a run in one call: its outcomes (to write), or how long its group waits.

    ``max_wait`` is the time the invocation can spare for the call to wait for the container's pace
    toward Sphere (beyond the time one call and the writes may take).

    On failure each message of the run is recorded as its own failed attempt (its own receive count
    decides ``retrying`` or ``dead_lettered``), and all are delayed by the backoff of the run's first
    (oldest) message, as the messages held behind it are.
    """
    attempt = _attempt(run[0][0])
    result: SphereResult | None = None
    try:
        delivered = delivery().deliver(_received(run), max_wait=max_wait, loaded=loaded)
    except TransientError as exc:
        held = _Held(delivery().retry_delay(attempt, exc.retry_after), exc.message)
        result = exc.result if isinstance(exc, SphereUnavailable) else None
    except Exception:  # one contact's unforeseen fault must not fail the batch's other contacts
        logger.exception("delivery failed unexpectedly", message_id=run[0][0].message_id)
        held = _Held(delivery().retry_delay(attempt), "delivery failed unexpectedly")
    else:
        return delivered
    for record, change in run:
        _retry_later(record, change, held, result=result)
    return held


def _hold(record: SQSRecord, change: ContactChange | PoisonMessage, held: _Held) -> None:
    """A message behind its group's failure: not tried, delayed as long as the failed one."""
    if isinstance(change, PoisonMessage):
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
) -> None:
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
        correlation_id=change.correlation_id,
    )
    if last or record_unless_last:
        try:
            delivery().record_failure(change, held.reason, attempt=attempt, last=last, result=result)
        except StorageUnavailable as exc:
            logger.error("could not record the failed attempt", source=change.source, error=exc.message)
    # On the last receive the delay only keeps the change from the dead-letter queue: let it go now.
    _delay(record, 0 if last else held.delay_seconds)


def _delay(record: SQSRecord, seconds: int) -> None:
    try:
        change_queue().delay(record.receipt_handle, seconds)
    except StorageUnavailable:
        logger.warning("could not delay the message; it returns after the queue's visibility timeout")
