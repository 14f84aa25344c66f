"""What the property suites share: their settings, hostile text and header strategies, and what "carriable" means."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import suppress

from boto3.dynamodb.types import TypeSerializer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from webhook_adapter.model import ContactChange, SourceEvent, Status
from webhook_adapter.sources.base import MAX_VALUE_CHARS

__all__ = [
    "FIELD_TEXT",
    "HEADER_VALUE",
    "HOSTILE_TEXT",
    "LONG_TEXT",
    "NOW",
    "NOW_MS",
    "PLANTED",
    "PROPERTY",
    "REALISTIC",
    "SQS_REFUSES",
    "TIMESTAMP_VALUE",
    "UNCARRIABLE",
    "URL",
    "assert_carriable",
    "refused_or_none",
]

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Every property here: a fixed example sequence, no wall-clock deadline, nothing written to disk."""

NOW = 1_700_000_000.0
NOW_MS = 1_700_000_000_000
URL = "https://hooks.example.test/webhooks/x"
PLANTED = "planted-7d2e9-value"
"""A recognisable value: a reason the source writes for a settled event must never hold it."""
SQS_REFUSES = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""What SQS refuses in a message body (its documented allowed set, inverted)."""
UNCARRIABLE = re.compile("[\ud800-\udfff\ufffe\uffff]")
"""Text that no JSON escaping makes carriable: lone surrogates (no UTF-8) and what SQS refuses even escaped."""

# ------------------------------------------------------------------------------------------- strategies

REALISTIC = [
    "+1 312 555 0123",
    "(312) 555-0123",
    "+44 20 7946 0958",
    "1 Main St",
    "Illinois",
    "US-IL",
    "São Paulo",
    "United States",
    "USA",
    "de",
    "60601",
    "jane@example.com",
    "jäne@exämple.de",
    "customer_abc123",
    "REDACTED",
]
ODD_CHARACTERS = st.sampled_from(
    ["\x00", "\r", "\n", "\t", "\x7f", "\u0085", "\u2028", "\u200b", "\ufeff", "\ufffe", "\uffff", "é", "日", "😀", ","]
)
HOSTILE_TEXT = st.text(
    st.one_of(st.characters(), st.characters(categories=["Cs"]), ODD_CHARACTERS), max_size=24
) | st.sampled_from([PLANTED, "", " "])
"""Any text, lone surrogates, control characters and noncharacters included."""
LONG_TEXT = st.integers(MAX_VALUE_CHARS - 2, MAX_VALUE_CHARS + 2).map(lambda size: " " + "x" * size + "\n")
"""Text around the value cap, with blanks around it (which do not count)."""
FIELD_TEXT = st.one_of(st.sampled_from(REALISTIC), st.text(max_size=24), HOSTILE_TEXT, LONG_TEXT)
"""What a contact field may hold: realistic values, any text, hostile text, text around the cap."""

TIMESTAMP_VALUE = st.one_of(
    st.integers(-400, 400).map(lambda offset: str(int(NOW) + offset)),
    st.integers(-400_000, 400_000).map(lambda offset: str(NOW_MS + offset)),
    st.sampled_from([20, 21, 309, 310, 4300, 4301, 100_000]).map(lambda digits: "1" * digits),
    st.integers(1, 5000).map(lambda digits: "9" * digits),
    st.text("0123456789", min_size=1, max_size=40),
)
"""Times near now (seconds and milliseconds) and digit strings of any length: what a timestamp header may be."""
HEADER_VALUE = st.one_of(
    HOSTILE_TEXT,
    TIMESTAMP_VALUE,
    st.lists(HOSTILE_TEXT | TIMESTAMP_VALUE, min_size=2, max_size=3).map(",".join),  # a repeated header, joined
)
"""A header as it may reach the function: anything, digits of any length, joined repeats, times near now."""


def assert_carriable(events: list[SourceEvent]) -> None:
    """Each event can be queued (SQS accepts its message) and stored (DynamoDB serializes it), and is bounded."""
    for event in events:
        change = ContactChange(source="test", contact_id=event.contact_id, received_at=NOW_MS, events=(event,))
        message = change.model_dump_json()
        assert not SQS_REFUSES.search(message)
        TypeSerializer().serialize(event.model_dump(mode="json"))
        for value in event.changes.values():
            assert value is None or (0 < len(value) <= MAX_VALUE_CHARS and value == value.strip())
        assert not (event.changes and event.settled)
        if event.settled is not Status.IGNORED:  # an ignored event names its unmapped property, which is no value
            assert PLANTED not in (event.reason or "")
        assert PLANTED not in repr(event.refused)


def refused_or_none[T](call: Callable[[], T], *errors: type[Exception]) -> T | None:
    """``call()``, or ``None`` when it raised one of the project's ``errors`` (anything else fails the test)."""
    with suppress(*errors):
        return call()
    return None
