"""What the Salesforce Change Data Capture source and its reader share: the source's name and how a street splits.

A module of its own so that deliver's reader does not import the sources (receive's code).
"""

from __future__ import annotations

from webhook_adapter.model import FieldValue

__all__ = ["CDC_DETAIL_TYPE", "CDC_NAME", "CDC_PARTNER_SOURCE_PREFIX", "split_street"]

CDC_NAME = "salesforce-cdc"
"""The Change Data Capture source: its settings' prefix (``SALESFORCE_CDC_``), records and queue groups."""
CDC_DETAIL_TYPE = "ContactChangeEvent"
"""The EventBridge ``detail-type`` of the Contact change events Event Relay publishes."""
CDC_PARTNER_SOURCE_PREFIX = "aws.partner/salesforce.com"
"""How every Salesforce partner event source's name starts."""


def split_street(text: str | None) -> tuple[FieldValue, FieldValue]:
    """A Salesforce street as two address lines: its first line, then the others joined with ``", "``.

    As the Outbound Messages source reads ``MailingStreet``: a one-line street clears line 2 (the
    street is given whole, so there is no second line).
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None, None
    return lines[0], ", ".join(lines[1:]) or None
