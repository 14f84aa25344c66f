"""Receive a webhook: check it, verify it, split it into events, queue the new ones, record the settled ones.

All or nothing: everything that can refuse the request (size, content type, signature, payload,
that every message encodes) runs before the first message is queued. The answer is 2xx only
once every new event to deliver is on the queue and every event settled on arrival (ignored,
incomplete, refused) is recorded; any failure before that answers 5xx and the CRM retries the
whole request: SQS's deduplication id drops what it already took within 5 minutes, and deliver
skips events that already have a final status after that. Events on their way have no item yet:
deliver writes each one once, when it ends (one write instead of two).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from webhook_adapter.enqueue import ChangeQueue, messages_for
from webhook_adapter.errors import (
    BodyTooLarge,
    InvalidPayload,
    SecretUnavailable,
    UnknownSource,
    VerificationUnavailable,
)
from webhook_adapter.model import CORRELATION_ID, MAX_CORRELATION_ID_CHARS, ContactChange, SourceEvent
from webhook_adapter.settings import ReceiveSettings
from webhook_adapter.sources import Source, WebhookRequest, get_source
from webhook_adapter.sources.base import Answer, Handshaking
from webhook_adapter.store import EventStore
from webhook_adapter.telemetry import count

__all__ = ["Receipt", "Receiver", "group_by_contact"]

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a request brought: the CRM event ids accepted now, already known, and settled on receipt."""

    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    settled: dict[str, list[str]] = field(default_factory=dict)
    handshake: Answer | None = None
    """The answer to a subscription handshake (Keap's ``X-Hook-Secret``): it carried no event, nothing is queued."""

    def as_json(self) -> dict[str, object]:
        """The ``202`` body."""
        body: dict[str, object] = {"accepted": self.accepted, "duplicates": self.duplicates}
        if self.settled:
            body["settled"] = self.settled
        return body


def group_by_contact(
    source: str, events: Sequence[SourceEvent], received_at: int, correlation_id: str | None = None
) -> list[ContactChange]:
    """Merge a request's events per contact (first-seen order), each contact's in change order."""
    by_contact: dict[str, list[SourceEvent]] = {}
    for event in events:
        by_contact.setdefault(event.contact_id, []).append(event)
    return [
        ContactChange(
            source=source,
            contact_id=contact_id,
            received_at=received_at,
            events=tuple(sorted(contact_events, key=lambda event: (event.occurred_at, event.key))),
            correlation_id=correlation_id,
        )
        for contact_id, contact_events in by_contact.items()
    ]


@dataclass(frozen=True, slots=True)
class Receiver:
    """The receive step with its collaborators."""

    settings: ReceiveSettings
    store: EventStore
    queue: ChangeQueue
    secrets: Callable[[str], list[str]]
    """Reads a source's verification secret values by secret id (cached by the caller)."""

    def source_for(self, name: str) -> Source:
        """The enabled source of this name.

        Raises:
            UnknownSource: not a source this deployment answers for.
        """
        if name not in self.settings.source_names:
            raise UnknownSource("no webhook source by that name is enabled")
        return get_source(name)

    def receive(self, request: WebhookRequest, *, correlation_id: str | None = None) -> Receipt:
        """Check, verify, parse, queue and record one webhook request.

        ``correlation_id`` (API Gateway's request id) goes with its changes to deliver and to Sphere.

        Raises:
            UnknownSource, BodyTooLarge, UnsupportedMediaType, SignatureError, InvalidPayload: bad input (4xx),
                raised before anything is queued or recorded.
            VerificationUnavailable, StorageUnavailable: the adapter could not take it now (5xx).
        """
        source = self.source_for(request.source)
        if len(request.body) > self.settings.max_body_bytes:
            raise BodyTooLarge(f"body is {len(request.body)} bytes; the limit is {self.settings.max_body_bytes}")
        source.check_media_type(request)
        try:
            secrets = self.secrets(source.secret_id)
        except SecretUnavailable as exc:
            raise VerificationUnavailable("the verification secret could not be read; retry later") from exc
        source.verify(request, secrets)
        if isinstance(source, Handshaking) and (answer := source.handshake(request)) is not None:
            return Receipt(handshake=answer)
        return self.accept(
            source.name,
            source.parse(request),
            received_at=int(request.received_at * 1000),
            correlation_id=correlation_id,
        )

    def accept(
        self, source: str, parsed: Sequence[SourceEvent], *, received_at: int, correlation_id: str | None = None
    ) -> Receipt:
        """Queue the new events to deliver and record the ones settled on arrival; the rest are duplicates.

        What every entry point does once its input is verified and parsed: a webhook request, or an event
        another AWS service delivered (``webhook_adapter.relay``).

        Raises:
            InvalidPayload: an event to record holds text that cannot be stored (raised before anything is queued).
            StorageUnavailable: the table or the queue could not take them now.
        """
        correlation_id = _carriable(correlation_id)
        unique: dict[str, SourceEvent] = {}
        for event in parsed:
            unique.setdefault(event.key, event)  # a batch may repeat an event: it counts once
        events = list(unique.values())
        known = self.store.known_events(source, events)
        new = [event for event in events if event.key not in known]
        settled = [event for event in new if event.settled is not None]
        _require_encodable(settled)
        messages = messages_for(
            group_by_contact(source, [event for event in new if event.settled is None], received_at, correlation_id)
        )
        if messages:
            self.queue.send(messages)
        if settled:
            self.store.record_settled(source, settled, now_ms=received_at, correlation_id=correlation_id)
        settled_ids: dict[str, list[str]] = {}
        for event in settled:
            settled_ids.setdefault(str(event.settled), []).append(event.event_id)
        receipt = Receipt(
            accepted=[event.event_id for event in new],
            duplicates=[event.event_id for event in events if event.key in known],
            settled=settled_ids,
        )
        count("EventsAccepted", len(receipt.accepted), source=source)
        count("EventsDuplicate", len(receipt.duplicates), source=source)
        for status, ids in settled_ids.items():
            count("EventOutcome", len(ids), source=source, status=status)
        # DEBUG: the outcome items are the per-event record; INFO lines per webhook were most of its log bytes.
        logger.debug(
            "webhook accepted",
            source=source,
            accepted=len(receipt.accepted),
            duplicates=len(receipt.duplicates),
            queued_messages=len(messages),
        )
        return receipt


def _carriable(correlation_id: str | None) -> str | None:
    """The correlation id as far as a message, an item and an HTTP header carry it; ``None`` if it has other text.

    API Gateway's and EventBridge's ids always qualify; a console test event may carry anything.
    """
    if not correlation_id:
        return None
    kept = correlation_id[:MAX_CORRELATION_ID_CHARS]
    return kept if CORRELATION_ID.fullmatch(kept) else None


def _require_encodable(events: Sequence[SourceEvent]) -> None:
    """Refuse the request, before anything is queued, if an event to record holds text that cannot be stored.

    Raises:
        InvalidPayload: an event holds a lone surrogate or other text that is not valid UTF-8.
    """
    for event in events:
        try:
            event.model_dump_json().encode()
        except (ValueError, UnicodeEncodeError) as exc:
            raise InvalidPayload("an event holds text that cannot be encoded as UTF-8") from exc
