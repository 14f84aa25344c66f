"""Sphere's customer API client: ``PATCH /v2/customer/{id}`` over one httpx connection pool per container.

Answers are sorted into three kinds: accepted (``SphereResult`` with ``updatedAt`` and the KYC
profile), permanently refused (4xx: ``SphereRefused``), and worth retrying (429, 5xx, timeouts,
dropped connections, a 401 that a fresh token did not cure: ``SphereUnavailable``).

Each call carries the adapter's correlation id (``CORRELATION_HEADER``) and is counted with its time
per source and status class (``SphereCalls``, ``SphereLatency``); Sphere's own correlation id is kept
with every answer, accepted or not.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook_adapter.errors import SphereRefused, SphereUnavailable
from webhook_adapter.masking import redact_text, text_values
from webhook_adapter.outcome import SphereResult
from webhook_adapter.pace import CallPace, SphereCallsHeld
from webhook_adapter.telemetry import count, observe_ms

__all__ = [
    "CORRELATION_HEADER",
    "TIMED_OUT",
    "UNREACHABLE",
    "SphereCallsHeld",
    "SphereClient",
    "SphereRefused",
    "SphereUnavailable",
    "parse_retry_after",
    "status_class",
]

KYC_PROFILE = "kyc_profile_a"
_UNAUTHORIZED = 401
_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500
_MAX_DETAIL = 300
CORRELATION_HEADER = "X-Correlation-Id"
"""The header that carries the adapter's correlation id to Sphere and Sphere's own back (the spec names none
for requests: this is the one Sphere answers with)."""
_MAX_CORRELATION_ID = 128
TIMED_OUT = "timeout"
"""The status class of a call Sphere did not answer in time."""
UNREACHABLE = "unreachable"
"""The status class of a call that could not reach Sphere (connection refused, dropped)."""

type TokenSource = Callable[[bool], str]
"""Returns Sphere's API key; called with ``True`` to bypass the cache after a 401."""


class _Criteria(BaseModel):
    model_config = ConfigDict(extra="ignore")
    errors: list[Any] = Field(default_factory=list)


class _Profile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    status: str | None = None
    criteria: _Criteria = Field(default_factory=_Criteria)


class _Customer(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    updated_at: str | None = Field(default=None, alias="updatedAt")
    verification_profiles: list[_Profile] = Field(default_factory=list, alias="verificationProfiles")


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def status_class(status: int) -> str:
    """The metric dimension of an HTTP status: ``2xx``, ``4xx``, ``5xx``, and ``429`` on its own (Sphere's pace)."""
    return "429" if status == _TOO_MANY_REQUESTS else f"{status // 100}xx"


def _answered_correlation_id(response: httpx.Response) -> str | None:
    return response.headers.get(CORRELATION_HEADER, "")[:_MAX_CORRELATION_ID] or None


def _error_result(response: httpx.Response, sent: dict[str, Any]) -> SphereResult:
    """Sphere's error in either documented format, or just the status for a non-JSON body.

    Its ``detail`` is kept for the operator without what it may echo of ``sent`` (or any email or
    long number): it is recorded with the outcome, where contact details are never stored unmasked.
    """
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        return SphereResult(http_status=response.status_code, correlation_id=_answered_correlation_id(response))

    def text(*names: str) -> str | None:
        for name in names:
            if isinstance(body.get(name), (str, int)):
                return str(body[name])
        return None

    detail = text("detail", "message")
    code = text("code")
    return SphereResult(
        http_status=response.status_code,
        code=code[:_MAX_DETAIL] if code else None,
        detail=redact_text(detail, text_values(sent))[:_MAX_DETAIL] if detail else None,
        correlation_id=(text("correlationId", "correlation_id") or "")[:_MAX_CORRELATION_ID]
        or _answered_correlation_id(response),
    )


def _success_result(response: httpx.Response, sent: dict[str, Any]) -> SphereResult:
    try:
        customer = _Customer.model_validate(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
        return SphereResult(http_status=response.status_code, correlation_id=_answered_correlation_id(response))
    profile = next((p for p in customer.verification_profiles if p.name == KYC_PROFILE), None)
    errors = profile.criteria.errors if profile else []
    sent_values = list(text_values(sent)) if errors else []
    return SphereResult(
        http_status=response.status_code,
        updated_at=customer.updated_at,
        kyc_status=profile.status if profile else None,
        kyc_errors=[redact_text(str(error), sent_values)[:_MAX_DETAIL] for error in errors],
        correlation_id=_answered_correlation_id(response),
    )


class SphereClient:
    """Calls Sphere with explicit timeouts and one connection pool reused across invocations.

    Thread-safe: the deliver function calls it from one thread per contact. The pool keeps up to
    ``connections`` connections open (one per thread), so a warm container's later invocations reuse
    them instead of opening new ones; the API key is read by one thread at a time, so threads that
    start together on a cold container read it from Secrets Manager once. With a ``pace``, every call
    waits for it first and reports Sphere's answer to it (a 429 slows the whole container down).
    """

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        connect_timeout: float,
        timeout: float,
        connections: int = 1,
        pace: CallPace | None = None,
    ) -> None:
        self._token = token
        self._pace = pace
        self._token_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def update_customer(
        self,
        customer_id: str,
        body: dict[str, Any],
        *,
        source: str,
        correlation_id: str | None = None,
        max_wait: float | None = None,
    ) -> SphereResult:
        """PATCH the customer; on 401 fetch the key again once (it may have been rotated) and retry.

        Each call first waits for the container's pace (when it has one), at most ``max_wait`` seconds.
        ``source`` is the CRM the change came from (the calls' metric dimension); ``correlation_id``
        goes to Sphere in ``CORRELATION_HEADER``.

        Raises:
            SphereRefused: a permanent 4xx.
            SphereUnavailable: 429, 5xx, a timeout, a transport error, or a 401 with a fresh key too.
            SphereCallsHeld: the pace had no call for it within ``max_wait``; Sphere was not called.
        """
        call = partial(self._patch, customer_id, body, source=source, correlation_id=correlation_id, max_wait=max_wait)
        response = call(refresh=False)
        if response.status_code == _UNAUTHORIZED:
            response = call(refresh=True)
        status = response.status_code
        if status < 300:
            return _success_result(response, body)
        result = _error_result(response, body)
        if status == _UNAUTHORIZED:
            raise SphereUnavailable("Sphere refused the API key, also after reading it again", result=result)
        if status == _TOO_MANY_REQUESTS or status >= _SERVER_ERROR:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
            raise SphereUnavailable(f"Sphere answered {status}", retry_after=retry_after, result=result)
        raise SphereRefused(result)

    def _patch(
        self,
        customer_id: str,
        body: dict[str, Any],
        *,
        source: str,
        correlation_id: str | None,
        refresh: bool,
        max_wait: float | None,
    ) -> httpx.Response:
        with self._token_lock:
            token = self._token(refresh)
        headers = {"Authorization": f"Bearer {token}"}
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id
        pace = self._pace
        ticket = pace.acquire(max_wait) if pace is not None else None
        started = time.monotonic()
        try:
            response = self._http.patch(f"/v2/customer/{customer_id}", json=body, headers=headers)
        except httpx.TimeoutException as exc:
            _counted(source, TIMED_OUT, started)
            raise SphereUnavailable(f"Sphere did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            _counted(source, UNREACHABLE, started)
            raise SphereUnavailable(f"could not reach Sphere ({type(exc).__name__})") from exc
        _counted(source, status_class(response.status_code), started)
        if pace is not None and ticket is not None:
            if response.status_code == _TOO_MANY_REQUESTS:
                pace.throttled(ticket, parse_retry_after(response.headers.get("retry-after"), now=time.time()))
            elif response.status_code < _SERVER_ERROR:
                pace.answered()
        return response


def _counted(source: str, outcome: str, started: float) -> None:
    """Count one HTTP call to Sphere and its time, by how it ended (a status class, ``timeout``, ``unreachable``)."""
    count("SphereCalls", 1, source=source, status_class=outcome)
    observe_ms("SphereLatency", (time.monotonic() - started) * 1000, source=source, status_class=outcome)
