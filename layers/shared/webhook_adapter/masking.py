"""PII masking for what is recorded: fixed request fields erased, contact details cut out of free text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from webhook_adapter.dotted import MISSING, lookup

__all__ = ["ERASED", "MASK", "MASKED_PATHS", "mask_request", "redact_text", "text_values"]

MASK = "***"
"""What replaces a contact detail inside a recorded text."""
ERASED = "*****"
"""What an erased request field holds (Powertools Data Masking's mask, which earlier records carry)."""
_EMAIL = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+")
_NUMBER = re.compile(r"\+?\d[\d\s().-]{4,}\d")
"""Six or more digits (phone numbers, tax numbers, postal codes with separators): never kept in a recorded text."""

MASKED_PATHS = ("email", "phone", "address.line1", "address.line2", "address.postalCode")
"""Request fields an operator does not need to read an outcome: contact details and the street."""


def mask_request(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Sphere request body with the personal fields erased (city, state, country stay).

    A field present in the body, null included, becomes ``ERASED`` (a list, one ``ERASED`` per item).
    """
    present = [path for path in MASKED_PATHS if lookup(body, path) is not MISSING]
    if not present:
        return dict(body)
    masked: dict[str, Any] = json.loads(json.dumps(body))  # a deep copy holding only JSON types
    for path in present:
        parent, _, name = path.rpartition(".")
        node = lookup(masked, parent) if parent else masked
        node[name] = [ERASED] * len(node[name]) if isinstance(node[name], list) else ERASED
    return masked


def text_values(value: Any) -> Iterable[str]:
    """Every string inside a JSON value (what a request sent, to find it echoed back)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from text_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from text_values(item)


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """``text`` (an error detail from Sphere) without the ``values`` it repeats, email addresses or long numbers."""
    for value in sorted({value for value in values if len(value) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(value), MASK, text, flags=re.IGNORECASE)
    return _NUMBER.sub(MASK, _EMAIL.sub(MASK, text))
