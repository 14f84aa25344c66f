"""The adapter's domain: what a CRM event becomes, what is queued, and how it ends.

A CRM request is split into ``SourceEvent`` objects (one per CRM event id). Events about the same
contact are merged into one ``ContactChange`` — the body of one SQS FIFO message, grouped by
contact so one contact's changes are applied in order. Every event ends in one ``Status``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CORRELATION_ID",
    "MAX_CORRELATION_ID_CHARS",
    "MAX_EPOCH_MS",
    "MAX_VALUE_CHARS",
    "TERMINAL_STATUSES",
    "UNCARRIABLE_TEXT",
    "ContactChange",
    "ContactField",
    "FieldValue",
    "ReadCause",
    "ReadMode",
    "SourceEvent",
    "Status",
]


class ContactField(StrEnum):
    """The contact fields the adapter knows, whatever the CRM calls them."""

    EMAIL = "email"
    PHONE = "phone"
    MOBILE_PHONE = "mobile_phone"
    LINE1 = "line1"
    LINE2 = "line2"
    CITY = "city"
    STATE = "state"
    POSTAL_CODE = "postal_code"
    COUNTRY = "country"
    CUSTOMER_ID = "customer_id"


class Status(StrEnum):
    """Where an event stands. ``queued`` and ``retrying`` are on their way; the rest are final."""

    QUEUED = "queued"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    INCOMPLETE = "incomplete"
    IGNORED = "ignored"
    UNMAPPED = "unmapped"
    SUPERSEDED = "superseded"
    UNCHANGED = "unchanged"
    DEAD_LETTERED = "dead_lettered"
    REFUSED = "refused"
    """A request answered 4xx at receive (bad signature, bad payload), or one malformed event of an accepted
    HubSpot batch: recorded with why, never its body."""


class ReadCause(StrEnum):
    """Why an event cannot be delivered from what it carries: the CRM's current record must be read."""

    THIN = "thin"
    """The event names the record only (Attio, Keap, Zoho notifications)."""
    REDACTED = "redacted"
    """The CRM withheld a value (HubSpot's ``"REDACTED"`` for a sensitive property)."""
    MERGE = "merge"
    """Records were merged: the survivor holds the values now."""
    GAP = "gap"
    """The CRM lost track of changes (Salesforce CDC's gap and overflow events)."""


class ReadMode(StrEnum):
    """When deliver reads a source's current record from the CRM (``records``)."""

    PAYLOAD = "payload"
    """Never: what the events carry is all there is."""
    WHEN_INCOMPLETE = "fetch-when-incomplete"
    """When an event asks for it, or the events cannot make a complete request."""
    ALWAYS = "always-fetch"
    """Before every call."""


TERMINAL_STATUSES = frozenset(Status) - {Status.QUEUED, Status.RETRYING, Status.DEAD_LETTERED}
"""Statuses after which a redelivered message leaves the event alone (a dead-lettered one is redriven)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")

MAX_EPOCH_MS = 10**14
"""No CRM change time is later than this (epoch milliseconds: the year 5138); sources refuse later ones."""

MAX_CORRELATION_ID_CHARS = 128
"""Longest correlation id carried from receive to Sphere (API Gateway's request ids are far shorter)."""
CORRELATION_ID = re.compile(r"^[!-~]+$")
"""What a correlation id may hold: visible ASCII, what an HTTP header carries as is."""

MAX_VALUE_CHARS = 1024
"""Longest value (after trimming) a source or a read of the CRM's record passes on for a contact field.

A longer one is refused for that field.

Far above any real email, phone or address part, and low enough that a contact's state item (every
field's value, what Sphere accepted and what it refused: at most 4 bytes a character in UTF-8) stays
a small fraction of DynamoDB's 400 KB item limit.
"""


UNCARRIABLE_TEXT = re.compile("[\ud800-\udfff\ufffe\uffff]")
"""Characters JSON can escape but nothing downstream carries: lone surrogates have no UTF-8 encoding
(the queue message and the table item could not be written), and SQS refuses U+FFFE and U+FFFF."""


type FieldValue = str | None
"""A field's new value; ``None`` means the CRM cleared it."""


class SourceEvent(BaseModel):
    """One CRM event, verified and parsed, before it is stored.

    ``changes`` holds the mapped fields it carries. An event with nothing to deliver is settled at
    receive time: ``settled`` names its final status and ``reason`` says why. A field whose value
    the source refused (over ``MAX_VALUE_CHARS``) is in ``refused`` with its reason, never in
    ``changes``; ``reason`` then names the refusals too, even when other fields go on.
    """

    model_config = _FROZEN

    key: Annotated[str, Field(min_length=1, max_length=512)]
    """Dedup key, unique per source: the CRM's event identity (HubSpot's is more than its eventId)."""
    event_id: Annotated[str, Field(min_length=1, max_length=256)]
    contact_id: Annotated[str, Field(min_length=1, max_length=256)]
    occurred_at: Annotated[int, Field(ge=0, lt=MAX_EPOCH_MS)]
    """When the change happened in the CRM, epoch milliseconds: the order of changes per field."""
    kind: Annotated[str, Field(max_length=128)]
    changes: dict[ContactField, FieldValue] = Field(default_factory=dict)
    refused: dict[ContactField, str] = Field(default_factory=dict)
    """Fields whose value the source would not pass on (over the length cap), and why, never the value."""
    settled: Status | None = None
    reason: str | None = None
    read: ReadCause | None = None
    """Why deliver must read the CRM's record for this event (its ``changes`` alone cannot say what to send)."""
    replay: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """The operator's replay that queued this event again (``replay`` module): deliver sends the contact's whole
    current request, also what Sphere already has or refused, and records the outcome on the event, whatever its
    status was. Such an event carries no ``changes``: its values are the contact's state, the newest of each field."""

    @property
    def call_key(self) -> str:
        """What tells this delivery of the event from another: its key, and the replay that queued it again."""
        return self.key if self.replay is None else f"{self.key}@{self.replay}"


class ContactChange(BaseModel):
    """The queued unit: every new event of one request about one contact (one FIFO message)."""

    model_config = _FROZEN

    source: str
    contact_id: str
    received_at: int
    """When the adapter accepted the request, epoch milliseconds."""
    events: tuple[SourceEvent, ...]
    correlation_id: (
        Annotated[str, Field(max_length=MAX_CORRELATION_ID_CHARS, pattern=CORRELATION_ID.pattern)] | None
    ) = None
    """The request's id at receive (API Gateway's request id, EventBridge's event id): in deliver's log lines,
    the events' items and the header of the Sphere call (``None`` in messages queued before it existed)."""

    @property
    def group_id(self) -> str:
        """The FIFO message group: one per contact, so a contact's changes stay in order."""
        return f"{self.source}:{self.contact_id}"
