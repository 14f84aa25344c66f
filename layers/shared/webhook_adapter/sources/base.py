"""What every source plug-in implements, the request it is given, and the JSON reading they share."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from webhook_adapter.errors import InvalidPayload, UnsupportedMediaType
from webhook_adapter.model import MAX_VALUE_CHARS, UNCARRIABLE_TEXT, ContactField, FieldValue, SourceEvent
from webhook_adapter.settings import field_map_or

__all__ = [
    "JSON_MEDIA_TYPE",
    "MAX_INTEGER_DIGITS",
    "MAX_VALUE_CHARS",
    "Answer",
    "Handshaking",
    "PayloadModel",
    "Source",
    "Unusable",
    "WebhookRequest",
    "canonical_json",
    "describe_validation_error",
    "field_map_or",
    "field_text",
    "first_unusable",
    "json_answer",
    "over_cap",
    "parse_json",
    "require_media_type",
]

JSON_MEDIA_TYPE = "application/json"
_MAX_JSON_DEPTH = 32
MAX_INTEGER_DIGITS = 64
"""Longest integer literal read as a number: more digits than any id (64-bit ids have 20) or time a CRM sends.

Bounded before conversion: Python refuses to convert more than 4,300 digits (a ``ValueError`` no
JSON error handler expects), and converting fewer still costs quadratic time.
"""


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


@dataclass(frozen=True, slots=True)
class Answer:
    """The HTTP answer to a CRM, in the form that CRM reads: JSON unless its source says otherwise."""

    status: int
    body: str
    content_type: str = JSON_MEDIA_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)


def json_answer(status: int, document: Mapping[str, Any]) -> Answer:
    """The default answer: the document as JSON (a receipt on success, ``{"error": {code, message}}`` otherwise)."""
    return Answer(status, json.dumps(document))


class Source(Protocol):
    """A CRM webhook source: how to trust its requests, what events they carry, how it wants to be answered."""

    name: str
    secret_id: str
    """Secrets Manager id of the source's credential: whitespace-separated values allow rotation. What a value is
    (an HMAC key, an endpoint token, a ``user:password``) is the source's business: only ``verify`` reads it."""

    def answer(self, status: int, document: Mapping[str, Any]) -> Answer:
        """Render the adapter's answer in the CRM's format (most sources: ``json_answer``).

        ``document`` is the receipt (status 2xx) or ``{"error": {"code", "message"}}``.
        """

    def check_media_type(self, request: WebhookRequest) -> None:
        """Raises ``UnsupportedMediaType`` when the request's content type is not the one this source sends."""

    def verify(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        """Raises ``SignatureError`` (or ``Forbidden``) unless the request is authentic; compares in constant time.

        Called before anything else reads the body, except a source whose trust rests on a value inside the
        body (Salesforce's ``OrganizationId``): that check belongs in ``parse``.
        """

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """The request's events, in the order the CRM sent them. Raises ``InvalidPayload``."""


@runtime_checkable
class Handshaking(Protocol):
    """A source whose CRM confirms a subscription with a request that carries no event and wants its own answer."""

    def handshake(self, request: WebhookRequest) -> Answer | None:
        """The answer to a verified handshake request, or ``None`` for a request that carries events.

        Raises:
            InvalidPayload: a handshake request the source cannot answer.
        """


class JsonSource:
    """What a source posting JSON inherits: the ``application/json`` check and JSON answers."""

    answer = staticmethod(json_answer)

    def check_media_type(self, request: WebhookRequest) -> None:
        """The CRM posts ``application/json`` (a ``charset`` parameter is allowed).

        Raises:
            UnsupportedMediaType: another content type.
        """
        require_media_type(request, JSON_MEDIA_TYPE)


def require_media_type(request: WebhookRequest, expected: str) -> None:
    """Check the request's content type, ignoring parameters such as ``charset``.

    The answer does not repeat what was sent: a header is as untrusted as the body.

    Raises:
        UnsupportedMediaType: the content type is missing or another one.
    """
    given = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if given != expected:
        raise UnsupportedMediaType(f"content type must be {expected}, got {'another' if given else 'none'}")


@dataclass(frozen=True, slots=True)
class Unusable:
    """Stands where a JSON value was that no source may pass on; ``problem`` says why, never what it was.

    ``parse_json`` puts markers in place of such values instead of refusing the body, so a source
    decides: a HubSpot batch refuses only the event whose field holds one; the generic source, one
    event per request, refuses the request.
    """

    problem: str


class PayloadModel(BaseModel):
    """A part of a CRM's body read with pydantic: unknown keys left alone, an ``Unusable`` value a field error.

    ``parse_json`` marks a value nothing downstream can carry (``Unusable``): reading it names the problem.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _usable(cls, value: Any) -> Any:
        if isinstance(value, Unusable):
            raise ValueError(value.problem)  # noqa: TRY004 - pydantic turns ValueError into a field error
        return value


_HUGE_INTEGER = Unusable(f"an integer of more than {MAX_INTEGER_DIGITS} digits")
_HUGE_NUMBER = Unusable("a number too large for a float")
_UNCARRIABLE = Unusable("text with a lone surrogate or a noncharacter (U+FFFE, U+FFFF)")
_REPEATED_KEY = Unusable("a key that appears twice in its object")


def _integer(literal: str) -> int | Unusable:
    return int(literal) if len(literal.removeprefix("-")) <= MAX_INTEGER_DIGITS else _HUGE_INTEGER


def _number(literal: str) -> float | Unusable:
    value = float(literal)
    return value if math.isfinite(value) else _HUGE_NUMBER


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) < len(pairs):  # JSON parsers disagree on which of the values counts: none does
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                document[key] = _REPEATED_KEY
            seen.add(key)
    return document


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


type _Node = dict[str, Any] | list[Any]


def _checked(value: Any, level: int, pending: list[tuple[_Node, int]]) -> Any:
    """``value`` itself, queued for a visit when it is a container; a marker when it is uncarriable text."""
    if isinstance(value, (dict, list)):
        pending.append((value, level))
    elif isinstance(value, str) and UNCARRIABLE_TEXT.search(value):
        return _UNCARRIABLE
    return value


def _check_tree(document: Any) -> Any:
    """Replace uncarriable text by markers, in place, in one walk that also bounds the nesting.

    Raises:
        InvalidPayload: the document is nested deeper than ``_MAX_JSON_DEPTH`` (a scalar counts as a level).
    """
    pending: list[tuple[_Node, int]] = []
    document = _checked(document, 1, pending)
    while pending:
        node, level = pending.pop()
        if node and level >= _MAX_JSON_DEPTH:
            raise InvalidPayload(f"request body is nested deeper than {_MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            for key, child in node.items():
                node[key] = _checked(child, level + 1, pending)
        else:
            for index, child in enumerate(node):
                node[index] = _checked(child, level + 1, pending)
    return document


def parse_json(body: bytes) -> Any:
    """Decode a JSON body (UTF-8), refusing invalid text, ``NaN``/``Infinity`` and absurd nesting.

    Values that are JSON but cannot be carried on (an integer of more than ``MAX_INTEGER_DIGITS``
    digits, a number beyond a float, text with a lone surrogate or U+FFFE/U+FFFF, the value of a
    repeated key) come back as ``Unusable`` markers for the source to refuse where it reads them.

    Raises:
        InvalidPayload: the body is empty, not UTF-8, not JSON, or nested too deeply.
    """
    if not body.strip():
        raise InvalidPayload("request body is empty")
    try:
        document = json.loads(
            body.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_int=_integer,
            parse_float=_number,
            object_pairs_hook=_object,
        )
    except UnicodeDecodeError as exc:
        raise InvalidPayload("request body is not valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise InvalidPayload("request body is not valid JSON") from exc
    except RecursionError as exc:  # thousands of levels: deeper than the decoder goes
        raise InvalidPayload(f"request body is nested deeper than {_MAX_JSON_DEPTH} levels") from exc
    return _check_tree(document)


def first_unusable(document: Any) -> Unusable | None:
    """The first ``Unusable`` marker anywhere in a document ``parse_json`` read, or ``None``."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, Unusable):
            return node
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def canonical_json(document: Any) -> str:
    """One ASCII text per JSON document, whatever its key order, spacing or escapes (markers included).

    What a dedup key is derived from when a document has no usable identity of its own.
    """
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=repr)


def field_text(value: Any, where: str) -> str:
    """A JSON field's value as trimmed text: ``""`` for null, a number as written (JSON sources' contact fields).

    Raises:
        InvalidPayload: something else than text, a number or null (an ``Unusable`` marker included); the
            message names ``where``, never the value.
    """
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Unusable):
        raise InvalidPayload(f"{where} holds {value.problem}")
    if not isinstance(value, str):
        raise InvalidPayload(f"{where} must be text, a number or null")
    return value.strip()


@dataclass(slots=True)
class FieldChanges:
    """The mapped fields one event carries: values passed on, and values refused for their length (with why)."""

    changes: dict[ContactField, FieldValue] = field(default_factory=dict)
    refused: dict[ContactField, str] = field(default_factory=dict)

    def put(self, target: ContactField, value: FieldValue, name: str) -> None:
        """Pass ``value`` on for ``target``, or refuse it when over ``MAX_VALUE_CHARS`` (``name``: the CRM's field)."""
        if value is not None and (problem := over_cap(value, name)):
            self.refused[target] = problem
        else:
            self.changes[target] = value

    def put_street(self, lines: tuple[FieldValue, FieldValue], name: str) -> None:
        """A street's two lines: both go on, or both are refused (half a street is a wrong address)."""
        problems = [problem for line in lines if line and (problem := over_cap(line, name))]
        if problems:
            self.refused[ContactField.LINE1] = self.refused[ContactField.LINE2] = problems[0]
        else:
            self.changes[ContactField.LINE1], self.changes[ContactField.LINE2] = lines


def over_cap(value: str, name: str) -> str | None:
    """Why a contact field's (trimmed) value is refused, naming the field as the CRM calls it, or ``None``."""
    return f"{name} is longer than {MAX_VALUE_CHARS} characters" if len(value) > MAX_VALUE_CHARS else None


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
