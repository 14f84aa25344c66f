"""Deliver one queued contact change: merge it, decide what Sphere needs, call Sphere, record each event.

The steps, in order:

1. Skip events that already ended (a redelivered message, a CRM retry re-queued after 5 minutes).
2. Merge the rest into the contact's stored fields (newest change per field wins).
3. Plan the request from the merged state: only valid, complete request fields, only those that
   differ from what Sphere last accepted for this customer (``unchanged`` costs no call).
4. Call Sphere when there is a customer id and something to send.
5. Save the contact's state, then record every event's outcome.

A transient failure raises ``RetryLater`` after recording ``retrying`` (or ``dead_lettered`` on the
last allowed receive): the handler delays the message and reports it failed, and the FIFO group
waits, so a contact's older change is never applied after a newer one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.masking import mask_request
from webhook_adapter.merge import ContactState, MergeResult, merge
from webhook_adapter.model import TERMINAL_STATUSES, ContactChange, ContactField, SourceEvent, Status
from webhook_adapter.normalize import Group, Plan, group_of, plan_request
from webhook_adapter.outcome import Outcome, SphereResult
from webhook_adapter.settings import DeliverSettings
from webhook_adapter.sphere import SphereClient, SphereRefused, SphereUnavailable
from webhook_adapter.store import EventStore, StaleContactState
from webhook_adapter.telemetry import count

__all__ = ["Delivery", "RetryLater", "backoff_seconds", "event_outcome"]

logger = Logger(child=True)

MAX_VISIBILITY_SECONDS = 43_200
"""SQS's ceiling for a message's visibility timeout (12 hours)."""
_STATUS_PRECEDENCE = (Status.REJECTED, Status.UNMAPPED, Status.INCOMPLETE, Status.DELIVERED, Status.UNCHANGED)
"""When one event touches several request fields, the outcome that most needs an operator wins."""


class RetryLater(Exception):
    """The change could not be delivered now; hide the message for ``delay_seconds`` and try again."""

    def __init__(self, reason: str, delay_seconds: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_seconds = delay_seconds


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


def _request_fields(event: SourceEvent, won: frozenset[ContactField]) -> set[Group]:
    return {group for name in won if (group := group_of(name)) is not None}


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
) -> Outcome:
    """One event's outcome, from what it won in the merge, the plan, and what Sphere answered.

    Pure: ``sent`` is the body that was sent (empty if none), ``result`` Sphere's answer to it and
    ``refused`` whether that answer was a permanent refusal; ``skipped`` the request fields left
    out because Sphere refused the same value before; ``masked`` the sent body with PII erased, when
    the caller already made it (it is the same for every event of a change).
    """
    won = merged.won[event.key]
    base = {"customer_id": plan.customer_id}
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
    groups = _request_fields(event, won)
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


def _remember(snapshot: dict[str, Any], customer_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """``snapshot`` (for ``customer_id``; another customer's is dropped) updated with ``values``."""
    base = snapshot if snapshot.get("customerId") == customer_id else {}
    return {**base, **values, "customerId": customer_id}


def _refused_fields(body: dict[str, Any], result: SphereResult) -> dict[str, Any]:
    """The part of the body a refusal is about: the field its code names (``address/invalid``), else all of it."""
    area = (result.code or "").split("/", 1)[0]
    return {area: body[area]} if area in body else dict(body)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The deliver step with its collaborators: the table, Sphere, the settings and a clock."""

    store: EventStore
    sphere: SphereClient
    settings: DeliverSettings
    now_ms: Callable[[], int]

    def deliver(self, change: ContactChange, *, attempt: int) -> list[tuple[SourceEvent, Outcome]]:
        """Deliver one contact change (``attempt`` counts from 1) and record each event's outcome.

        Raises:
            RetryLater: Sphere or DynamoDB failed in a way worth retrying.
        """
        try:
            return self._deliver(change, attempt=attempt)
        except StorageUnavailable as exc:
            raise RetryLater(str(exc), self._delay(attempt)) from exc
        except StaleContactState as exc:
            raise RetryLater(str(exc), 1) from exc

    def _delay(self, attempt: int, retry_after: float | None = None) -> int:
        return backoff_seconds(
            attempt,
            base=self.settings.retry_base_seconds,
            cap=self.settings.retry_max_seconds,
            retry_after=retry_after,
        )

    def _deliver(self, change: ContactChange, *, attempt: int) -> list[tuple[SourceEvent, Outcome]]:
        statuses = self.store.event_statuses(change.source, [event.key for event in change.events])
        pending = [event for event in change.events if statuses.get(event.key) not in TERMINAL_STATUSES]
        if not pending:
            logger.info("change already delivered", source=change.source, events=len(change.events))
            return []
        state = self.store.load_contact(change.source, change.contact_id)
        merged = merge(state, pending)
        plan = plan_request(
            merged.fields,
            default_region=self.settings.default_phone_region,
            countries_requiring_state=self.settings.countries_requiring_state,
        )
        body = plan.changes_since(state.applied, state.refused) if plan.customer_id else {}
        skipped = plan.refused_before(state.refused) if plan.customer_id else frozenset()
        result, refused, applied, refusals = None, False, dict(state.applied), dict(state.refused)
        if plan.customer_id and body:
            try:
                result = self.sphere.update_customer(plan.customer_id, body)
            except SphereRefused as exc:
                result, refused = exc.result, True
                refusals = _remember(refusals, plan.customer_id, _refused_fields(body, exc.result))
            except SphereUnavailable as exc:
                self._record_retry(change, pending, plan, exc, attempt=attempt)
                raise RetryLater(exc.reason, self._delay(attempt, exc.retry_after)) from exc
            else:
                applied = _remember(applied, plan.customer_id, body)
                refusals = {name: value for name, value in refusals.items() if name not in body}
        now = self.now_ms()
        self.store.save_contact(
            change.source,
            change.contact_id,
            ContactState(merged.fields, applied, state.version, refusals),
            now_ms=now,
        )
        masked = mask_request(body) if body else None
        outcomes = [
            (
                event,
                event_outcome(
                    event, merged, plan, sent=body, result=result, refused=refused, skipped=skipped, masked=masked
                ),
            )
            for event in pending
        ]
        for event, outcome in outcomes:
            self.store.record_outcome(change, event, outcome, attempts=attempt, now_ms=now)
            count("EventOutcome", 1, source=change.source, status=str(outcome.status))
            logger.info(
                "event delivered" if outcome.status is Status.DELIVERED else "event settled",
                source=change.source,
                event_id=event.event_id,
                status=str(outcome.status),
                reason=outcome.reason,
            )
        return outcomes

    def _record_retry(
        self, change: ContactChange, events: list[SourceEvent], plan: Plan, exc: SphereUnavailable, *, attempt: int
    ) -> None:
        last = attempt >= self.settings.max_receive_count
        status = Status.DEAD_LETTERED if last else Status.RETRYING
        reason = exc.reason + ("; moved to the dead-letter queue" if last else "")
        outcome = Outcome(status=status, reason=reason, customer_id=plan.customer_id, sphere=exc.result)
        now = self.now_ms()
        for event in events:
            self.store.record_outcome(change, event, outcome, attempts=attempt, now_ms=now)
        count("EventOutcome", len(events), source=change.source, status=str(status))
        logger.warning(
            "delivery failed, will retry" if not last else "delivery failed, dead-lettered",
            source=change.source,
            events=len(events),
            attempt=attempt,
            reason=exc.reason,
        )
