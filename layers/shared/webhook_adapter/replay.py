"""Operator replays: queue contacts' changes again through deliver, from the Lambda console's Test tab or the CLI.

A replay names what to run again — explicit events, the events in a status within a time window, one contact,
or the dead-letter queue — and queues it on the changes queue, where deliver handles it like any change: same
merge, same pace toward Sphere, same records. There is no second path to Sphere.

What is replayed is the contact's **current state**, not the old event's values. An event item keeps its field
names only; the values live in the contact's state, the newest of each field (rejected, incomplete and unmapped
events' values are merged there too). Re-sending an old value would overwrite a newer one, so a replayed event
(``SourceEvent.replay``) carries no values and makes deliver send the contact's whole current request — also what
Sphere already accepted or refused before, since the operator asks for it — and records the new outcome on the
event. A source that reads records reads the contact first when the state cannot make a complete request.

Which events may run again, by status:

- ``rejected``, ``incomplete``, ``unmapped``: yes (after a fix to the mapping, normalization, Sphere's customer).
- ``delivered``, ``unchanged``, ``superseded``: only with ``force`` (re-sent on purpose).
- ``dead_lettered``: through the dead-letter form, which moves the queue's messages back (they hold the values
  deliver never merged); ``queued``/``retrying``: no, deliver is still on them.
- ``ignored`` (nothing mapped) and ``refused`` (the request was never stored): no, the CRM must send them again.

``dryRun`` queues nothing: it shows, per contact, the request a replay would send (masked) against what Sphere
last accepted. Messages are queued at most ``REPLAY_MESSAGES_PER_SECOND`` a second.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from webhook_adapter import aws
from webhook_adapter.deliver import decide
from webhook_adapter.enqueue import ChangeQueue, QueueMessage, messages_for
from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.masking import mask_request
from webhook_adapter.merge import digest
from webhook_adapter.model import ContactChange, SourceEvent, Status
from webhook_adapter.runtime import cached, now_ms
from webhook_adapter.settings import replay_settings
from webhook_adapter.sources.base import describe_validation_error
from webhook_adapter.store import OPERATOR_STATUSES, EventStore

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = Logger(child=True)

__all__ = [
    "FORCED_STATUSES",
    "REPLAYABLE_STATUSES",
    "ContactPreview",
    "ContactRef",
    "DeadLetters",
    "EventRef",
    "ReplayRequest",
    "ReplaySummary",
    "Replayer",
    "Skipped",
    "replay_event",
    "replayer",
    "why_not_replayed",
]

REPLAYABLE_STATUSES = frozenset({Status.REJECTED, Status.INCOMPLETE, Status.UNMAPPED})
"""Statuses a replay runs again by default: an operator fixes what they wait for."""
FORCED_STATUSES = frozenset({Status.DELIVERED, Status.UNCHANGED, Status.SUPERSEDED})
"""Statuses a replay runs again only when forced: Sphere has (or had) the values."""
REPLAY_KIND = "operator.replay"
"""The kind of the event a replay of a whole contact records."""
_WHY_NOT: Mapping[str, str] = {
    Status.IGNORED: "ignored: it carries no field the adapter maps; nothing to replay",
    Status.REFUSED: "refused on arrival: the request was never stored; the CRM must send it again",
    Status.DEAD_LETTERED: "its values are in the dead-letter queue's message: replay the dead-letter queue",
    Status.QUEUED: "still on its way: deliver has not finished it",
    Status.RETRYING: "still on its way: deliver retries it",
}

_MODEL = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ContactRef(BaseModel):
    """A contact as the adapter knows it: its source and the CRM's id."""

    model_config = _MODEL

    source: Annotated[str, Field(min_length=1, max_length=64)]
    contact_id: Annotated[str, Field(min_length=1, max_length=256)]


class EventRef(ContactRef):
    """One recorded event: its contact and its key (the table's ``event_key``)."""

    key: Annotated[str, Field(min_length=1, max_length=512)]


class ReplayRequest(BaseModel):
    """The replay function's test event (and the CLI's ``replay`` options): one form, and how.

    Forms: ``events`` (explicit events), ``status`` with ``since`` and optionally ``until`` and ``source``, ``contact``,
    or ``deadLetters: true``.
    """

    model_config = _MODEL

    events: list[EventRef] = Field(default_factory=list)
    status: Status | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """With ``status``: only this source's events."""
    contact: ContactRef | None = None
    dead_letters: bool = False
    dry_run: bool = False
    force: bool = False
    """Also run again events Sphere has (``delivered``, ``unchanged``, ``superseded``)."""
    limit: Annotated[int, Field(ge=1, le=10_000)] = 1000
    """Most events (or dead-letter messages) one replay takes; the summary says when more matched."""
    replay_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,36}$")] | None = None
    """Names the replay in the events' outcomes (default: a new one); the same id twice is one replay."""

    @model_validator(mode="after")
    def _one_form(self) -> ReplayRequest:
        forms = [bool(self.events), self.status is not None, self.contact is not None, self.dead_letters]
        if sum(forms) != 1:
            raise ValueError("name exactly one of events, status (with since), contact or deadLetters")
        if self.status is not None:
            if self.status not in OPERATOR_STATUSES:
                names = ", ".join(sorted(OPERATOR_STATUSES))
                raise ValueError(f"status must be one the table indexes by time: {names}")
            if self.since is None:
                raise ValueError("status needs since (and optionally until): the time window to look in")
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


class Skipped(BaseModel):
    """An event (or contact) matched but not replayed, and why."""

    model_config = _MODEL

    source: str
    contact_id: str
    key: str | None
    reason: str


class ContactPreview(BaseModel):
    """What a replay would send for one contact (a dry run): the request, masked, against what Sphere has."""

    model_config = _MODEL

    source: str
    contact_id: str
    events: list[str]
    customer_id: str | None
    request: dict[str, Any]
    """The body a replay would send, contact details masked."""
    compared: dict[str, str]
    """Per request field: how the value sent compares with what Sphere last accepted for this customer."""
    problems: dict[str, str]
    """Request fields that cannot be sent, and why."""


class ReplaySummary(BaseModel):
    """What a replay did (or, dry, would do)."""

    model_config = _MODEL

    replay_id: str
    dry_run: bool
    matched: int
    queued: int
    """Events queued again (dead-letter form: messages moved back)."""
    messages: int
    skipped: list[Skipped]
    contacts: list[ContactPreview] = Field(default_factory=list)
    truncated: bool = False
    """More matched than ``limit``: replay again for the rest."""


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """The changes queue's dead-letter queue, as a replay moves its messages back."""

    client: SQSClient
    url: str

    def take(self, limit: int) -> list[Mapping[str, Any]]:
        """Up to ``limit`` messages, hidden for 5 minutes while they are moved (or shown again on a dry run).

        Raises:
            StorageUnavailable: SQS failed.
        """
        taken: list[Mapping[str, Any]] = []
        while len(taken) < limit:
            try:
                answer = self.client.receive_message(
                    QueueUrl=self.url,
                    MaxNumberOfMessages=min(10, limit - len(taken)),
                    VisibilityTimeout=300,
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["MessageGroupId"],
                )
            except (BotoCoreError, ClientError) as exc:
                raise StorageUnavailable("could not read the dead-letter queue") from exc
            batch = answer.get("Messages", [])
            if not batch:
                break
            taken += batch
        return taken

    def release(self, messages: Sequence[Mapping[str, Any]], *, delete: bool) -> None:
        """Delete the messages (moved) or show them again at once (a dry run).

        Raises:
            StorageUnavailable: SQS failed.
        """
        try:
            for message in messages:
                if delete:
                    self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    self.client.change_message_visibility(
                        QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not release the dead-letter queue's messages") from exc


@dataclass(frozen=True, slots=True)
class Replayer:
    """Runs replays: finds what the request names, then queues it for deliver (or previews it)."""

    store: EventStore
    queue: ChangeQueue
    dead_letters: DeadLetters
    default_region: str
    countries_requiring_state: frozenset[str]
    messages_per_second: float
    now_ms: Callable[[], int]
    sleep: Callable[[float], None] = time.sleep
    on_sent: Callable[[int, int], None] | None = None
    """Told after each batch queued: how many messages so far, of how many (the CLI's progress bar)."""

    def run(self, request: ReplayRequest) -> ReplaySummary:
        """Replay what ``request`` names.

        Raises:
            StorageUnavailable: DynamoDB or SQS failed (nothing of the failed step was queued; run it again: a
                replay id already used queues nothing twice within SQS's 5-minute deduplication window).
        """
        replay_id = request.replay_id or uuid.uuid4().hex[:12]
        if request.dead_letters:
            return self._dead_letters(request, replay_id)
        items, truncated = self._matched(request)
        changes, skipped = self._changes(request, items, replay_id)
        matched = len(items) if request.contact is None else 1
        common = {"replay_id": replay_id, "dry_run": request.dry_run, "matched": matched, "truncated": truncated}
        if request.dry_run:
            queued = sum(len(change.events) for change in changes)
            previews = [self._preview(change) for change in changes]
            return ReplaySummary(**common, queued=queued, messages=0, skipped=skipped, contacts=previews)
        messages = messages_for(changes)
        self._send(messages)
        queued = sum(len(change.events) for change in changes)
        return ReplaySummary(**common, queued=queued, messages=len(messages), skipped=skipped)

    # ------------------------------------------------------------------ matching

    def _matched(self, request: ReplayRequest) -> tuple[list[Mapping[str, Any] | EventRef], bool]:
        """The recorded items the request names (an ``EventRef`` where no item exists), and whether more matched."""
        if request.contact is not None:
            return [], False
        if request.events:
            found: list[Mapping[str, Any] | EventRef] = []
            for ref in request.events[: request.limit]:
                item = self.store.get_event(ref.source, ref.contact_id, ref.key)
                found.append(item if item is not None else ref)
            return found, len(request.events) > request.limit
        if request.status is None or request.since is None:  # the request's validator makes this unreachable
            return [], False
        until = _ms(request.until) if request.until is not None else self.now_ms()
        items = self.store.events_by_status(request.status, _ms(request.since), until)
        if request.source is not None:
            items = [item for item in items if item.get("source") == request.source]
        return list(items[: request.limit]), len(items) > request.limit

    def _changes(
        self, request: ReplayRequest, items: Sequence[Mapping[str, Any] | EventRef], replay_id: str
    ) -> tuple[list[ContactChange], list[Skipped]]:
        """One change per contact with its events to run again; the others, skipped with why."""
        now = self.now_ms()
        if request.contact is not None:
            key = f"replay:{replay_id}"
            event = SourceEvent(
                key=key,
                event_id=key,
                contact_id=request.contact.contact_id,
                occurred_at=now,
                kind=REPLAY_KIND,
                replay=replay_id,
            )
            return [
                ContactChange(
                    source=request.contact.source, contact_id=event.contact_id, received_at=now, events=(event,)
                )
            ], []
        by_contact: dict[tuple[str, str], list[SourceEvent]] = defaultdict(list)
        skipped: list[Skipped] = []
        for item in items:
            if isinstance(item, EventRef):
                skipped.append(
                    Skipped(
                        source=item.source, contact_id=item.contact_id, key=item.key, reason="no such event is recorded"
                    )
                )
                continue
            source, contact_id, key = str(item["source"]), str(item["contact_id"]), str(item["event_key"])
            why = why_not_replayed(Status(str(item["status"])), force=request.force)
            if why is not None:
                skipped.append(Skipped(source=source, contact_id=contact_id, key=key, reason=why))
                continue
            by_contact[(source, contact_id)].append(
                SourceEvent(
                    key=key,
                    event_id=str(item["event_id"]),
                    contact_id=contact_id,
                    occurred_at=int(item["occurred_at"]),
                    kind=str(item.get("kind") or REPLAY_KIND),
                    replay=replay_id,
                )
            )
        changes = [
            ContactChange(source=source, contact_id=contact_id, received_at=now, events=tuple(events))
            for (source, contact_id), events in by_contact.items()
        ]
        return changes, skipped

    # ------------------------------------------------------------------ dry run

    def _preview(self, change: ContactChange) -> ContactPreview:
        """The request a replay of ``change`` would send now, from the contact's state (no CRM read)."""
        state = self.store.load_contact(change.source, change.contact_id)
        decision = decide(
            state,
            change.events,
            default_region=self.default_region,
            countries_requiring_state=self.countries_requiring_state,
        )
        plan = decision.plan
        accepted = state.applied if state.applied.get("customerId") == plan.customer_id else {}
        refused = state.refused if state.refused.get("customerId") == plan.customer_id else {}
        compared: dict[str, str] = {}
        for name, value in decision.body.items():
            if accepted.get(name) == digest(value):
                compared[name] = "the same as Sphere last accepted"
            elif refused.get(name) == digest(value):
                compared[name] = "Sphere refused this value before"
            elif name in accepted:
                compared[name] = "differs from what Sphere last accepted"
            else:
                compared[name] = "never sent to this customer"
        return ContactPreview(
            source=change.source,
            contact_id=change.contact_id,
            events=[event.key for event in change.events],
            customer_id=plan.customer_id,
            request=mask_request(decision.body) if decision.body else {},
            compared=compared,
            problems={str(group): problem.reason for group, problem in plan.problems.items()},
        )

    # ------------------------------------------------------------------ queueing

    def _send(self, messages: Sequence[QueueMessage]) -> None:
        """Queue ``messages`` ten at a time, at most ``messages_per_second``."""
        pause = 10 / self.messages_per_second
        for start in range(0, len(messages), 10):
            if start:
                self.sleep(pause)
            self.queue.send(messages[start : start + 10])
            if self.on_sent is not None:
                self.on_sent(min(start + 10, len(messages)), len(messages))

    def _dead_letters(self, request: ReplayRequest, replay_id: str) -> ReplaySummary:
        """Move the dead-letter queue's messages back to the changes queue (or list them, dry)."""
        taken = self.dead_letters.take(request.limit + 1)
        truncated = len(taken) > request.limit
        batch, rest = taken[: request.limit], taken[request.limit :]
        skipped: list[Skipped] = []
        moving: list[tuple[Mapping[str, Any], QueueMessage]] = []
        for message in batch:
            try:
                change = ContactChange.model_validate_json(message["Body"])
            except ValueError:
                skipped.append(
                    Skipped(
                        source="?",
                        contact_id="?",
                        key=None,
                        reason="a message that is no contact change: left in the dead-letter queue",
                    )
                )
                continue
            dedup = hashlib.sha256(f"{replay_id}\n{message['MessageId']}".encode()).hexdigest()
            group = message.get("Attributes", {}).get("MessageGroupId") or change.group_id
            moving.append((message, QueueMessage(message["Body"], group, dedup)))
        moved = {str(message["MessageId"]) for message, _ in moving}
        keep = [message for message in batch if str(message["MessageId"]) not in moved]
        if request.dry_run:
            self.dead_letters.release(taken, delete=False)
            return ReplaySummary(
                replay_id=replay_id,
                dry_run=True,
                matched=len(batch),
                queued=len(moving),
                messages=0,
                skipped=skipped,
                truncated=truncated,
            )
        self._send([message for _, message in moving])
        self.dead_letters.release([message for message, _ in moving], delete=True)
        self.dead_letters.release([*keep, *rest], delete=False)
        return ReplaySummary(
            replay_id=replay_id,
            dry_run=False,
            matched=len(batch),
            queued=len(moving),
            messages=len(moving),
            skipped=skipped,
            truncated=truncated,
        )


def why_not_replayed(status: Status, *, force: bool) -> str | None:
    """Why an event in ``status`` is not replayed (``None``: it is)."""
    if status in REPLAYABLE_STATUSES or (force and status in FORCED_STATUSES):
        return None
    if status in FORCED_STATUSES:
        return f"{status}: Sphere has these values; set force to send the contact's current values again"
    return _WHY_NOT.get(status, f"{status}: not replayable")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@cached
def replayer() -> Replayer:
    """This container's replayer, from the replay function's settings.

    Raises:
        pydantic.ValidationError: the settings are missing or invalid.
    """
    settings = replay_settings()
    return Replayer(
        store=EventStore(aws.dynamodb(), settings.table_name, settings.outcome_ttl_days),
        queue=ChangeQueue(aws.sqs(), settings.queue_url),
        dead_letters=DeadLetters(aws.sqs(), settings.dead_letter_queue_url),
        default_region=settings.default_phone_region,
        countries_requiring_state=settings.countries_requiring_state,
        messages_per_second=settings.replay_messages_per_second,
        now_ms=now_ms,
    )


def replay_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The replay function's answer to a test event: the summary, or an error naming what is wrong in the event.

    Raises:
        StorageUnavailable: DynamoDB or SQS failed (the invocation fails; run it again).
    """
    try:
        request = ReplayRequest.model_validate(event)
    except ValidationError as exc:
        message = f"invalid replay request: {describe_validation_error(exc)}"
        logger.warning("replay refused", reason=message)
        return {"error": {"code": "invalid_request", "message": message}}
    summary = replayer().run(request)
    logger.info(
        "replay done",
        replay_id=summary.replay_id,
        dry_run=summary.dry_run,
        matched=summary.matched,
        queued=summary.queued,
        skipped=len(summary.skipped),
    )
    return summary.model_dump(mode="json", by_alias=True)
