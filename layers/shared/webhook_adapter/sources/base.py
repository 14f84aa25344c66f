"""What every source plug-in implements, and the request it is given."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from webhook_adapter.errors import InvalidPayload, UnsupportedMediaType
from webhook_adapter.model import SourceEvent

__all__ = [
    "JSON_MEDIA_TYPE",
    "Source",
    "WebhookRequest",
    "describe_validation_error",
    "field_map_or",
    "parse_json",
    "require_media_type",
]

JSON_MEDIA_TYPE = "application/json"
_MAX_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP request as the CRM sent it: raw body bytes, lower-cased header names, the public URL."""

    source: str
    method: str
    url: str
    """The URL the CRM was configured with (signature schemes that sign the URL cover this one)."""
    headers: Mapping[str, str]
    body: bytes
    received_at: float
    """When the request arrived, epoch seconds: the ``now`` of timestamp checks."""

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name, or ``None``."""
        return self.headers.get(name.lower())


class Source(Protocol):
    """A CRM webhook source: how to check its requests and what events they carry."""

    name: str
    secret_id: str
    """Secrets Manager id of the verification secret (whitespace-separated values allow key rotation)."""

    def check_media_type(self, request: WebhookRequest) -> None:
        """Raises ``UnsupportedMediaType`` when the request's content type is not the one this source sends."""

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Raises ``SignatureError`` unless the request is authentic. Called before anything reads the body."""

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The request's events, in the order the CRM sent them. Raises ``InvalidPayload``."""


def require_media_type(request: WebhookRequest, expected: str) -> None:
    """Check the request's content type, ignoring parameters such as ``charset``.

    Raises:
        UnsupportedMediaType: the content type is missing or another one.
    """
    given = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if given != expected:
        shown = given[:64] or "none"
        raise UnsupportedMediaType(f"content type must be {expected}, got {shown}")


def field_map_or[T](default: Mapping[Any, T]) -> Callable[[Any], Any]:
    """A validator for a ``*_FIELD_MAP`` setting: JSON text, where empty (the template's default) means ``default``."""

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else dict(default)
        return value

    return parse


def _depth(value: Any) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def parse_json(body: bytes) -> Any:
    """Decode a JSON body (UTF-8), refusing invalid text, ``NaN``/``Infinity`` and absurd nesting.

    Raises:
        InvalidPayload: the body is empty, not UTF-8, not JSON, or nested too deeply.
    """
    if not body.strip():
        raise InvalidPayload("request body is empty")
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InvalidPayload("request body is not valid UTF-8") from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidPayload("request body is not valid JSON") from exc
    if _depth(value) > _MAX_JSON_DEPTH:
        raise InvalidPayload(f"request body is nested deeper than {_MAX_JSON_DEPTH} levels")
    return value


def describe_validation_error(exc: ValidationError, *, limit: int = 3) -> str:
    """Name what is wrong in a payload (field path and problem) without echoing any value.

    Pydantic's own message repeats the input, which may be PII; this keeps locations and reasons only.
    """
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)[:limit]
    ]
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
