"""Per-field merge of a contact's changes: the newest value of each field wins, whatever the arrival order.

Pure: the stored state and the new events go in, the new state and which event won which field
come out. Order is the CRM's change time, then the event's digest (a stable tie-break).

The state keeps digests, not copies, of event keys and of what Sphere accepted or refused: it is
rewritten on every delivery, so it stays small (one DynamoDB write unit) and bounded whatever the
CRM sends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook_adapter.model import ContactField, FieldValue, SourceEvent

__all__ = ["ContactState", "FieldState", "LastCall", "MergeResult", "digest", "merge"]

_DIGEST_CHARS = 16
"""64 bits: collisions among one contact's values or same-millisecond events are out of reach."""


def digest(value: Any) -> str:
    """A short, stable fingerprint of a JSON value (an event key, a request field's value)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:_DIGEST_CHARS]


@dataclass(frozen=True, slots=True)
class FieldState:
    """A field's known value and the change it came from."""

    value: FieldValue
    occurred_at: int
    event: str
    """The ``digest`` of the key of the event the value came from."""

    @property
    def order(self) -> tuple[int, str]:
        """What decides which of two values of a field is newer."""
        return (self.occurred_at, self.event)


@dataclass(frozen=True, slots=True)
class ContactState:
    """What is known of a contact: its fields, what Sphere accepted and refused, and a version."""

    fields: Mapping[ContactField, FieldState] = field(default_factory=dict)
    applied: Mapping[str, str] = field(default_factory=dict)
    """Digests of the last values Sphere accepted, by request field, with the ``customerId`` they were sent to."""
    version: int = 0
    refused: Mapping[str, str] = field(default_factory=dict)
    """Digests of values Sphere refused for good (4xx), in the same shape: not sent again until they change."""
    last_call: LastCall | None = None
    """The latest call to Sphere, until its events' outcomes are written (then they are skipped as ended)."""


@dataclass(frozen=True, slots=True)
class LastCall:
    """What the latest call to Sphere was for and how it ended, kept in the state it was saved with.

    The state is saved before the events' outcomes are written: if that write fails, the retry finds
    the values already applied, and this says what the call did instead of ``unchanged``.
    """

    events: frozenset[str]
    """Short digests of the keys of the events the call was made for."""
    groups: tuple[str, ...]
    """The request fields sent."""
    result: Mapping[str, Any]
    """Sphere's answer (a ``SphereResult`` as a dict)."""
    refused: bool


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The merged fields, and for each event the fields it holds (won) or lost to a newer change."""

    fields: dict[ContactField, FieldState]
    won: dict[str, frozenset[ContactField]]
    lost: dict[str, frozenset[ContactField]]


def merge(state: ContactState, events: Iterable[SourceEvent]) -> MergeResult:
    """Merge events into the state's fields; a change wins a field only if it is newer than the stored one.

    An event already merged (a redelivery: same time and key) counts as holding its fields.
    """
    fields = dict(state.fields)
    events = list(events)
    digests = {event.key: digest(event.key) for event in events}
    for event in events:
        for name, value in event.changes.items():
            candidate = FieldState(value=value, occurred_at=event.occurred_at, event=digests[event.key])
            current = fields.get(name)
            if current is None or candidate.order > current.order:
                fields[name] = candidate
    won = {
        event.key: frozenset(name for name in event.changes if fields[name].event == digests[event.key])
        for event in events
    }
    lost = {event.key: frozenset(event.changes) - won[event.key] for event in events}
    return MergeResult(fields=fields, won=won, lost=lost)
