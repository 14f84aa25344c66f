"""PII masking for what is recorded, with Powertools Data Masking."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_masking import DataMasking

from webhook_adapter.dotted import MISSING, lookup

__all__ = ["MASKED_PATHS", "mask_request"]

MASKED_PATHS = ("email", "phone", "address.line1", "address.line2", "address.postalCode")
"""Request fields an operator does not need to read an outcome: contact details and the street."""


@cache
def _masker() -> DataMasking:
    return DataMasking(raise_on_missing_field=False)


def mask_request(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Sphere request body with the personal fields erased (city, state, country stay)."""
    present = [path for path in MASKED_PATHS if lookup(body, path) is not MISSING]
    if not present:
        return dict(body)
    masked: dict[str, Any] = _masker().erase(body, fields=present)
    return masked
