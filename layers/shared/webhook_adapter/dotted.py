"""Dotted paths (``address.city``) into JSON documents: where configurable mappings point."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "lookup"]

MISSING: Any = object()
"""What ``lookup`` returns for a path that is not in the document (``None`` is a JSON null)."""


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path (``address.city``) in nested JSON objects, or ``MISSING``."""
    node = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node
