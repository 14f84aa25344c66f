"""Deliver a contact's queued changes: decide what Sphere needs, call Sphere once, record each event.

Consecutive messages of one contact in a batch are delivered together (``coalesce``): their events
are merged as one change, so Sphere gets one call with the newest value of each field, and each
event still gets its own outcome, recorded with its own message's receive count.

The steps, in order — reads first, one pure decision, then the call and the writes:

1. Read the contact's state and its events' items in one call; skip events that already ended
   (a redelivered message, a CRM retry queued again after SQS's 5-minute deduplication window).
2. ``decide``: merge the rest into the contact's fields (newest change per field wins) and plan the
   request — only valid, complete request fields, only those that differ from what Sphere last
   accepted for this customer (``unchanged`` costs no call).
3. Call Sphere when there is a customer id and something to send.
4. Save the contact's state, then record every event's outcome.

Failures are raised, never recorded here: a ``TransientError`` (Sphere, DynamoDB, Secrets Manager)
goes to ``consume.deliver_batch``, which records ``retrying`` or ``dead_lettered`` and delays the
message; its FIFO group waits, so a contact's older change is never applied after a newer one.
When Sphere's answer is lost the merged fields are saved first, so a late older change of the
same field is superseded rather than sent over a value Sphere may already hold.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from webhook_adapter.errors import SphereRefused, SphereUnavailable, StaleContactState, StorageUnavailable
from webhook_adapter.masking import mask_request
from webhook_adapter.merge import ContactState, LastCall, MergeResult, digest, merge
from webhook_adapter.model import TERMINAL_STATUSES, ContactChange, ContactField, SourceEvent, Status
from webhook_adapter.normalize import Group, Plan, group_of, plan_request
from webhook_adapter.outcome import Outcome, SphereResult
from webhook_adapter.records import CrmRecord, Reading, needs_read
from webhook_adapter.settings import DeliverSettings
from webhook_adapter.sphere import SphereClient
from webhook_adapter.store import OPERATOR_STATUSES, EventStore, Loaded, MessageOutcomes
from webhook_adapter.telemetry import count, observe_ms

__all__ = [
    "Decision",
    "Delivered",
    "Delivery",
    "Received",
    "after_call",
    "backoff_seconds",
    "coalesce",
    "decide",
    "end_to_end_ms",
    "event_outcome",
    "outcomes_of",
]

logger = Logger(child=True)

SAVE_AFTER_CALL_PAUSES = (0.1, 0.4)
"""Pauses between tries to save a contact's state after Sphere answered (the SDK's own retries came first)."""

MAX_VISIBILITY_SECONDS = 43_200
"""SQS's ceiling for a message's visibility timeout (12 hours)."""
_STATUS_PRECEDENCE = (Status.REJECTED, Status.UNMAPPED, Status.INCOMPLETE, Status.DELIVERED, Status.UNCHANGED)
"""When one event touches several request fields, the outcome that most needs an operator wins."""


def backoff_seconds(
    attempt: int, *, base: int, cap: int, retry_after: float | None = None, rng: Callable[[], float] = random.random
) -> int:
    """Delay before the next attempt: Sphere's ``Retry-After`` when given, else exponential with jitter.

    "Equal jitter": half the exponential step is kept, half is random, so retries spread out without
    collapsing to zero; the result is capped at ``cap`` and at SQS's 12-hour visibility limit.
    """
    ceiling = min(cap, MAX_VISIBILITY_SECONDS)
    if retry_after is not None:
        return int(min(max(retry_after, 1.0), ceiling))
    step = min(ceiling, base * 2 ** max(attempt - 1, 0))
    return int(min(ceiling, step / 2 + rng() * step / 2))


def end_to_end_ms(event: SourceEvent, outcome: Outcome) -> float | None:
    """From the CRM's change to Sphere's ``updatedAt`` for it, in milliseconds; ``None`` without a readable time.

    Two clocks (the CRM's, Sphere's): a negative difference is skew, counted as zero.
    """
    updated_at = outcome.sphere.updated_at if outcome.sphere is not None else None
    if not updated_at:
        return None
    try:
        moment = datetime.fromisoformat(updated_at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() * 1000 - event.occurred_at)


@dataclass(frozen=True, slots=True)
class Received:
    """A contact change as one queue message brought it, with that message's receive count (from 1)."""

    change: ContactChange
    attempt: int


def coalesce(changes: Sequence[ContactChange]) -> ContactChange:
    """One change holding the events of consecutive changes of one contact, in their order, each event once.

    The merge orders values by the CRM's change time, not by position, so the result sends what
    delivering the changes one after the other would have left at Sphere: the newest value of each field.

    Raises:
        ValueError: no changes, or changes of more than one contact.
    """
    if not changes:
        raise ValueError("nothing to coalesce")
    first = changes[0]
    if any((change.source, change.contact_id) != (first.source, first.contact_id) for change in changes):
        raise ValueError("only one contact's changes can be coalesced")
    if len(changes) == 1:
        return first
    events: dict[str, SourceEvent] = {}
    for change in changes:
        for event in change.events:
            events.setdefault(event.key, event)  # a CRM retry queued twice: its first copy stands for both
    return first.model_copy(update={"events": tuple(events.values())})


def _request_fields(event: SourceEvent, won: frozenset[ContactField]) -> set[Group]:
    return {group for name in won if (group := group_of(name)) is not None}


def _read_fields(read_won: frozenset[ContactField], plan: Plan) -> set[Group]:
    """The request fields a read feeds an event that asked for it.

    A read brings the whole record, empty fields included: what the record lacks (a phone nobody entered)
    says nothing of the event, unless the read brought nothing else it could send.
    """
    groups = {group for name in read_won if (group := group_of(name)) is not None}
    sendable = {group for group in groups if (problem := plan.problems.get(group)) is None or problem.invalid}
    return sendable or groups


def event_outcome(
    event: SourceEvent,
    merged: MergeResult,
    plan: Plan,
    *,
    sent: dict[str, Any],
    result: SphereResult | None,
    refused: bool,
    skipped: frozenset[Group] = frozenset(),
    masked: dict[str, Any] | None = None,
    read_won: frozenset[ContactField] | None = None,
    unread: str | None = None,
) -> Outcome:
    """One event's outcome, from what it won in the merge, the plan, and what Sphere answered.

    Pure: ``sent`` is the body that was sent (empty if none), ``result`` Sphere's answer to it and
    ``refused`` whether that answer was a permanent refusal; ``skipped`` the request fields left
    out because Sphere refused the same value before; ``masked`` the sent body with PII erased, when
    the caller already made it (it is the same for every event of a change). An event that asked for
    the CRM's record (``SourceEvent.read``) shares what the read won (``read_won``; ``None``: no read,
    for the reason ``unread``). A note the source left on the event (how it read a field) leads the
    outcome's reason, as does the read an event asked for.
    """
    if event.read is not None and read_won is None and not merged.won[event.key]:
        reason = f"the CRM's record must be read ({event.read}) and was not: {unread or 'no read was made'}"
        return Outcome(status=Status.INCOMPLETE, reason=reason, customer_id=plan.customer_id)
    outcome = _event_outcome(
        event,
        merged,
        plan,
        sent=sent,
        result=result,
        refused=refused,
        skipped=skipped,
        masked=masked,
        also_won=read_won if event.read is not None and read_won is not None else frozenset(),
    )
    replay_note = f"replayed by the operator ({event.replay})" if event.replay is not None else None
    notes = [note for note in (replay_note, event.reason, _read_note(event, read_won)) if note]
    if not notes or event.refused:  # a refusal's reason already names what the source refused
        return outcome
    reason = "; ".join([*notes, *([outcome.reason] if outcome.reason else [])])
    return outcome.model_copy(update={"reason": reason})


def _read_note(event: SourceEvent, read_won: frozenset[ContactField] | None) -> str | None:
    return f"completed by reading the CRM's record ({event.read})" if event.read and read_won is not None else None


def _event_outcome(
    event: SourceEvent,
    merged: MergeResult,
    plan: Plan,
    *,
    sent: dict[str, Any],
    result: SphereResult | None,
    refused: bool,
    skipped: frozenset[Group],
    masked: dict[str, Any] | None,
    also_won: frozenset[ContactField],
) -> Outcome:
    won = merged.won[event.key] | also_won
    base = {"customer_id": plan.customer_id}
    if event.replay is not None:
        return _replay_outcome(plan, sent=sent, result=result, refused=refused, masked=masked)
    if event.refused:
        # A value the source refused on arrival (over the length cap) never entered the state: say so.
        reason = "; ".join(f"{name}: {why}" for name, why in sorted(event.refused.items()))
        return Outcome(status=Status.REJECTED, reason=reason, **base)
    if not won:
        return Outcome(
            status=Status.SUPERSEDED, reason="a newer change of the same fields was already received", **base
        )
    invalid = [plan.invalid_fields[name] for name in sorted(won) if name in plan.invalid_fields]
    if invalid:
        return Outcome(status=Status.REJECTED, reason="; ".join(invalid), **base)
    if ContactField.CUSTOMER_ID in won and plan.customer_id_problem:
        return Outcome(status=Status.REJECTED, reason=plan.customer_id_problem, **base)
    if plan.customer_id is None:
        return Outcome(status=Status.UNMAPPED, reason="no Sphere customer id is known for this contact yet", **base)
    groups = _request_fields(event, won - also_won) | _read_fields(also_won, plan)
    if ContactField.CUSTOMER_ID in won:
        groups |= {Group(name) for name in sent}
    if masked is None and sent:
        masked = mask_request(sent)
    candidates = [
        _group_outcome(group, plan, sent=sent, masked=masked, result=result, refused=refused, skipped=skipped)
        for group in groups
    ]
    if not candidates:
        return Outcome(status=Status.UNCHANGED, reason="nothing to send to Sphere", **base)
    return min(candidates, key=lambda outcome: _STATUS_PRECEDENCE.index(outcome.status))


def _replay_outcome(
    plan: Plan, *, sent: dict[str, Any], result: SphereResult | None, refused: bool, masked: dict[str, Any] | None
) -> Outcome:
    """A replayed event's outcome: what became of the contact's whole request (its values are the state's)."""
    base = {"customer_id": plan.customer_id}
    if plan.customer_id_problem:
        return Outcome(status=Status.REJECTED, reason=plan.customer_id_problem, **base)
    if plan.customer_id is None:
        return Outcome(status=Status.UNMAPPED, reason="no Sphere customer id is known for this contact yet", **base)
    if masked is None and sent:
        masked = mask_request(sent)
    candidates = [
        _group_outcome(group, plan, sent=sent, masked=masked, result=result, refused=refused, skipped=frozenset())
        for group in {*plan.desired, *plan.problems}
    ]
    if not candidates:
        return Outcome(status=Status.UNCHANGED, reason="the contact's state holds nothing to send", **base)
    return min(candidates, key=lambda outcome: _STATUS_PRECEDENCE.index(outcome.status))


def _group_outcome(
    group: Group,
    plan: Plan,
    *,
    sent: dict[str, Any],
    masked: dict[str, Any] | None,
    result: SphereResult | None,
    refused: bool,
    skipped: frozenset[Group],
) -> Outcome:
    """What became of one request field an event feeds."""
    base = {"customer_id": plan.customer_id}
    problem = plan.problems.get(group)
    if problem is not None:
        status = Status.REJECTED if problem.invalid else Status.INCOMPLETE
        return Outcome(status=status, reason=problem.reason, missing=list(problem.missing), **base)
    if group in skipped:
        reason = f"Sphere refused this {group} before; it is sent again once it changes in the CRM"
        return Outcome(status=Status.REJECTED, reason=reason, **base)
    if str(group) not in sent:
        return Outcome(status=Status.UNCHANGED, reason="Sphere already has these values", **base)
    if refused:
        answer = (result.code or result.http_status) if result else "no detail"
        reason = f"Sphere refused the update: {answer}"
        return Outcome(status=Status.REJECTED, reason=reason, request=masked, sphere=result, **base)
    return Outcome(status=Status.DELIVERED, request=masked, sphere=result, **base)


def _remember(snapshot: Mapping[str, str], customer_id: str, values: Mapping[str, Any]) -> dict[str, str]:
    """``snapshot`` (for ``customer_id``; another customer's is dropped) updated with the digests of ``values``."""
    base = snapshot if snapshot.get("customerId") == customer_id else {}
    return {**base, **{name: digest(value) for name, value in values.items()}, "customerId": customer_id}


def _call_digest(key: str) -> str:
    """A shorter digest of an event key for ``LastCall`` (it only tells one change's events from the next one's)."""
    return digest(key)[:8]


def _refused_fields(body: dict[str, Any], result: SphereResult) -> dict[str, Any]:
    """The part of the body a refusal is about: the field its code names (``address/invalid``), else all of it."""
    area = (result.code or "").split("/", 1)[0]
    return {area: body[area]} if area in body else dict(body)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a contact's pending events: the merged fields, the plan, and the body to send."""

    merged: MergeResult
    plan: Plan
    body: dict[str, Any]
    """The request body (empty when there is nothing to send or no customer id)."""
    skipped: frozenset[Group]
    """Request fields left out because Sphere refused the same value before."""
    replayed: LastCall | None = None
    """The earlier call these events were already sent in (its outcomes were not written): no new call."""
    calls: frozenset[str] = frozenset()
    """Short digests of the pending events' call keys (``SourceEvent.call_key``): what a call is remembered by."""
    read: SourceEvent | None = None
    """The CRM's record read for this call, as an event merged with the others (``None``: nothing was read)."""
    unread: str | None = None
    """Why the record was not read although an event asked for it (the source reads no records, the CRM no
    longer has it): such an event ends ``incomplete``."""


def decide(
    state: ContactState,
    pending: Sequence[SourceEvent],
    *,
    default_region: str,
    countries_requiring_state: frozenset[str],
    record: CrmRecord | None = None,
    unread: str | None = None,
) -> Decision:
    """Merge ``pending`` (and the CRM's ``record``, when one was read) into the state and plan the request.

    Pure, no I/O: the read, when there is one, happened before and is merged like any event, by its time.
    """
    read = record.as_event() if record is not None else None
    merged = merge(state, [*pending, read] if read is not None else pending)
    plan = plan_request(
        merged.fields, default_region=default_region, countries_requiring_state=countries_requiring_state
    )
    calls = frozenset(_call_digest(event.call_key) for event in pending)
    if plan.customer_id is None:
        return Decision(merged, plan, {}, frozenset(), calls=calls, read=read, unread=unread)
    won = frozenset[ContactField]().union(*merged.won.values())
    last = state.last_call
    replay = any(event.replay is not None for event in pending)
    if replay:
        # An operator's replay: the contact's whole current request, also what Sphere has or refused before.
        body = {str(group): value for group, value in plan.desired.items()}
        skipped = frozenset[Group]()
    else:
        # Only what these events changed is sent (all of it once the customer id itself changes): a request field
        # that differs from what Sphere accepted for another reason belongs to a change still on its way.
        fed = set(Group) if ContactField.CUSTOMER_ID in won else {group for name in won if (group := group_of(name))}
        body = {name: value for name, value in plan.changes_since(state.applied, state.refused).items() if name in fed}
        skipped = plan.refused_before(state.refused)
    if last is not None and calls <= last.events and (replay or not body):
        # These events' call was made and its outcomes were not written: say what it did, call no more.
        sent = {group: plan.desired[Group(group)] for group in last.groups if Group(group) in plan.desired}
        return Decision(merged, plan, sent, skipped, replayed=last, calls=calls, read=read, unread=unread)
    return Decision(merged, plan, body, skipped, calls=calls, read=read, unread=unread)


def after_call(state: ContactState, decision: Decision, result: SphereResult | None, *, refused: bool) -> ContactState:
    """The contact's state once Sphere answered (or was not called): its fields and what Sphere accepted or refused."""
    applied, refusals, last = dict(state.applied), dict(state.refused), state.last_call
    customer_id, body = decision.plan.customer_id, decision.body
    if customer_id and body and result is not None and decision.replayed is None:
        if refused:
            refusals = _remember(refusals, customer_id, _refused_fields(body, result))
        else:
            applied = _remember(applied, customer_id, body)
            refusals = {name: value for name, value in refusals.items() if name not in body}
        last = LastCall(
            events=decision.calls,
            groups=tuple(body),
            result=result.model_dump(exclude_none=True, exclude_defaults=True),
            refused=refused,
        )
    return ContactState(decision.merged.fields, applied, state.version, refusals, last)


def outcomes_of(
    pending: Sequence[SourceEvent], decision: Decision, result: SphereResult | None, *, refused: bool
) -> list[tuple[SourceEvent, Outcome]]:
    """Each pending event's outcome once Sphere answered (or was not called); a read has none of its own."""
    masked = mask_request(decision.body) if decision.body else None
    read_won = decision.merged.won[decision.read.key] if decision.read is not None else None
    return [
        (
            event,
            event_outcome(
                event,
                decision.merged,
                decision.plan,
                sent=decision.body,
                result=result,
                refused=refused,
                skipped=decision.skipped,
                masked=masked,
                read_won=read_won,
                unread=decision.unread,
            ),
        )
        for event in pending
    ]


def _per_message(
    received: Sequence[Received],
    outcomes: Sequence[tuple[SourceEvent, Outcome]],
    *,
    prior: Mapping[str, Mapping[str, Any]],
    now_ms: int,
) -> list[MessageOutcomes]:
    """The outcomes split back by message, with its change and receive count (a repeated event goes to the first)."""
    by_key = {event.key: (event, outcome) for event, outcome in outcomes}
    parts: list[MessageOutcomes] = []
    for item in received:
        mine = [by_key.pop(event.key) for event in item.change.events if event.key in by_key]
        parts.append(MessageOutcomes(item.change, mine, item.attempt, prior, now_ms))
    return parts


@dataclass(frozen=True, slots=True)
class Delivered:
    """A contact's changes Sphere has (or did not need): each message's outcomes, decided, not yet written."""

    source: str
    messages: list[MessageOutcomes]

    @property
    def outcomes(self) -> list[tuple[SourceEvent, Outcome]]:
        """Every event's outcome, in order."""
        return [pair for message in self.messages for pair in message.outcomes]


@dataclass(frozen=True, slots=True)
class Delivery:
    """The deliver step with its collaborators: the table, Sphere, the settings, a clock, and the CRMs' readers."""

    store: EventStore
    sphere: SphereClient
    settings: DeliverSettings
    now_ms: Callable[[], int]
    readings: Callable[[str], Reading | None] = lambda _source: None
    """A source's read mode and reader (``None``: the source reads no records)."""

    def retry_delay(self, attempt: int, retry_after: float | None = None) -> int:
        """Seconds to wait before the next attempt of a change that failed on ``attempt``."""
        return backoff_seconds(
            attempt,
            base=self.settings.retry_base_seconds,
            cap=self.settings.retry_max_seconds,
            retry_after=retry_after,
        )

    def read(self, runs: Sequence[Sequence[Received]]) -> dict[str, Loaded]:
        """What ``deliver`` reads first, for several contacts' runs at once (by ``contact_pk``).

        Raises:
            StorageUnavailable: a read failed.
        """
        return self.store.load_changes([coalesce([item.change for item in run]) for run in runs])

    def deliver(
        self, received: Sequence[Received], *, max_wait: float | None = None, loaded: Loaded | None = None
    ) -> Delivered:
        """Deliver consecutive changes of one contact in one Sphere call, save its state, decide each event's outcome.

        The outcomes are written by ``record``, with other calls' (each event with its own message's
        receive count and arrival time); until then, a retry finds the call in the contact's state and
        records what it did without calling again. ``max_wait`` is how long the call may wait for the
        container's pace toward Sphere (``None``: as long as it takes). ``loaded`` is what ``read``
        found for these changes, when it was read with other contacts' (it is read here otherwise).

        Raises:
            TransientError: Sphere, DynamoDB or Secrets Manager failed in a way worth retrying, or the
                pace held the call past ``max_wait``; nothing is recorded for the events (the caller
                records the failed attempt of each message).
            ValueError: ``received`` is empty or holds more than one contact's changes.
        """
        change = coalesce([item.change for item in received])
        state, prior = loaded if loaded is not None else self.store.load_change(change)
        pending = [
            event
            for event in change.events
            if event.replay is not None or prior.get(event.key, {}).get("status") not in TERMINAL_STATUSES
        ]
        if not pending:
            logger.debug("change already delivered", source=change.source, events=len(change.events))
            return Delivered(change.source, [])
        decision = self._read_and_decide(change, state, pending)
        result, refused = None, False
        if decision.replayed is not None:
            result, refused = SphereResult.model_validate(decision.replayed.result), decision.replayed.refused
        elif decision.body and decision.plan.customer_id:
            try:
                result = self.sphere.update_customer(
                    decision.plan.customer_id,
                    decision.body,
                    source=change.source,
                    correlation_id=change.correlation_id,
                    max_wait=max_wait,
                )
            except SphereRefused as exc:
                result, refused = exc.result, True
            except SphereUnavailable:
                # Sphere may have applied it and lost its answer: keep the merged fields, so a late older
                # change of the same field is superseded instead of sent over it (what Sphere accepted stays
                # as it was, so the retry sends the values again).
                if decision.merged.fields != state.fields:
                    kept = ContactState(
                        decision.merged.fields, state.applied, state.version, state.refused, state.last_call
                    )
                    self.store.save_contact(change.source, change.contact_id, kept, now_ms=self.now_ms())
                raise
        now = self.now_ms()
        saved = after_call(state, decision, result, refused=refused)
        if result is not None and decision.replayed is None:
            self._save_after_call(change, saved, now_ms=now)
        else:
            self.store.save_contact(change.source, change.contact_id, saved, now_ms=now)
        outcomes = outcomes_of(pending, decision, result, refused=refused)
        return Delivered(change.source, _per_message(received, outcomes, prior=prior, now_ms=now))

    def _read_and_decide(self, change: ContactChange, state: ContactState, pending: list[SourceEvent]) -> Decision:
        """Decide from the events; read the CRM's record first when the source's read mode asks for it.

        Raises:
            CrmUnavailable, SecretUnavailable: the read could not be made now (the change is retried).
        """
        decide_from = partial(
            decide,
            state,
            pending,
            default_region=self.settings.default_phone_region,
            countries_requiring_state=self.settings.countries_requiring_state,
        )
        decision = decide_from()
        if decision.replayed is not None:  # the call was made, its outcomes not written: no read, no new call
            return decision
        reading = self.readings(change.source)
        if reading is not None and reading.reader is not None and needs_read(reading.mode, pending, decision.plan):
            record = reading.reader.read(change.contact_id)
            count("RecordsRead", 1, source=change.source)
            return decide_from(record=record, unread=None if record else "the CRM no longer has this record")
        if any(event.read is not None for event in pending):
            unread = "this source reads no records" if reading is None else f"its read mode is {reading.mode}"
            return replace(decision, unread=unread)
        return decision

    def record(self, delivered: Sequence[Delivered]) -> None:
        """Write the outcomes of delivered calls, in as few batches as they fit, and count them.

        One metric line per source and status (a delivered event's end-to-end latency with it), and a
        log line only for outcomes an operator acts on: the success path stays quiet.

        Raises:
            StorageUnavailable: a write failed (the calls' messages are retried: their retry finds each
                call in its contact's state and records what it did).
        """
        self.store.record_outcomes([message for call in delivered for message in call.messages])
        counted = Counter((call.source, str(outcome.status)) for call in delivered for _, outcome in call.outcomes)
        for (source, status), number in counted.items():
            count("EventOutcome", number, source=source, status=status)
        for message in (message for call in delivered for message in call.messages):
            source = message.change.source
            for event, outcome in message.outcomes:
                # A replay's events changed in the CRM long ago: their time to Sphere is the operator's, not ours.
                fresh = outcome.status is Status.DELIVERED and event.replay is None
                if fresh and (latency := end_to_end_ms(event, outcome)) is not None:
                    observe_ms("EndToEndLatency", latency, source=source, status=str(outcome.status))
                log = logger.info if outcome.status in OPERATOR_STATUSES else logger.debug
                log(
                    "event settled",
                    source=source,
                    event_id=event.event_id,
                    status=str(outcome.status),
                    reason=outcome.reason,
                    correlation_id=message.change.correlation_id,
                )

    def _save_after_call(self, change: ContactChange, state: ContactState, *, now_ms: int) -> None:
        """Save the state once Sphere answered, trying again before giving up: what is at stake is a repeated call.

        Raises:
            StaleContactState: the state changed (or an earlier try was written though its answer was lost):
                the retry reads it again, finds the call recorded and sends nothing.
            StorageUnavailable: DynamoDB still refused it; the retry sends the same values again.
        """
        for pause in (*SAVE_AFTER_CALL_PAUSES, None):
            try:
                self.store.save_contact(change.source, change.contact_id, state, now_ms=now_ms)
            except StaleContactState:
                raise
            except StorageUnavailable:
                if pause is None:
                    raise
                logger.warning(
                    "could not save the contact state after Sphere answered; trying again", source=change.source
                )
                time.sleep(pause)
            else:
                return

    def record_failure(
        self, change: ContactChange, reason: str, *, attempt: int, last: bool, result: SphereResult | None = None
    ) -> None:
        """Record a failed attempt on the change's events that have not ended: ``retrying``, or ``dead_lettered``.

        Raises:
            StorageUnavailable: the record could not be written.
        """
        status = Status.DEAD_LETTERED if last else Status.RETRYING
        outcome = Outcome(
            status=status, reason=reason + ("; moved to the dead-letter queue" if last else ""), sphere=result
        )
        self.store.record_failure(change, change.events, outcome, attempts=attempt, now_ms=self.now_ms())
        count("EventOutcome", len(change.events), source=change.source, status=str(status))
