"""Reading the current record from the CRM: when deliver does it, and what a read gives.

A CRM event may not say enough to send Sphere a complete request: Attio, Keap and Zoho name the record
only, HubSpot redacts sensitive values and sends one property per event, Salesforce's Change Data Capture
sends only what changed and asks for a re-read after a gap. Per source, the read mode decides:

- ``payload``: never read; deliver sends what the events carry (an event that needs a read ends ``incomplete``);
- ``fetch-when-incomplete``: read when an event asks for it (``SourceEvent.read``) or when the merged state
  cannot make a complete request (no customer id known yet, an address with parts never received);
- ``always-fetch``: read before every call.

A read becomes one more event of the contact, dated by the record's modification time, and goes through the
same merge as every event: a field's newest change wins, so a read never overwrites a newer change still on
the queue, and a late event never overwrites a newer read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from webhook_adapter.model import ContactField, FieldValue, ReadMode, SourceEvent
from webhook_adapter.normalize import Group

if TYPE_CHECKING:
    from webhook_adapter.normalize import Plan

__all__ = ["READ_EVENT_ID", "CrmRecord", "ReadMode", "Reading", "RecordReader", "needs_read"]

READ_EVENT_ID = "crm-read"
"""The ``event_id`` of the event a read becomes (never recorded as an outcome of its own)."""


@dataclass(frozen=True, slots=True)
class CrmRecord:
    """A contact as the CRM's API gave it: the mapped fields it holds, and when it was last modified."""

    contact_id: str
    values: Mapping[ContactField, FieldValue]
    """The mapped fields the record holds (``None``: empty in the CRM); an unmapped or unreadable one is absent."""
    modified_at: int
    """The record's last modification, epoch milliseconds: every value is as of then."""

    def as_event(self) -> SourceEvent:
        """The read as an event of the contact, for the merge: its fields dated by the record's modification."""
        return SourceEvent(
            key=f"{READ_EVENT_ID}:{self.modified_at}",
            event_id=READ_EVENT_ID,
            contact_id=self.contact_id,
            occurred_at=self.modified_at,
            kind=READ_EVENT_ID,
            changes=dict(self.values),
        )


class RecordReader(Protocol):
    """Reads a source's contact from its CRM."""

    def read(self, contact_id: str) -> CrmRecord | None:
        """The contact's current record, or ``None`` when the CRM no longer has it.

        Raises:
            CrmUnavailable: the CRM could not answer now (429, 5xx, timeout, a token it keeps refusing).
            SecretUnavailable: the API token could not be read.
        """


@dataclass(frozen=True, slots=True)
class Reading:
    """A source's read mode and its reader (``None`` in ``payload`` mode: nothing is read)."""

    mode: ReadMode
    reader: RecordReader | None


def needs_read(mode: ReadMode, pending: Sequence[SourceEvent], plan: Plan) -> bool:
    """Whether to read the record before sending ``pending``, given the plan their merge makes without it."""
    if mode is ReadMode.ALWAYS:
        return True
    if mode is ReadMode.PAYLOAD:
        return False
    if any(event.read is not None for event in pending):
        return True
    address = plan.problems.get(Group.ADDRESS)
    return plan.customer_id is None or (address is not None and bool(address.missing))
