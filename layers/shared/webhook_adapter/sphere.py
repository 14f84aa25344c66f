"""Sphere's customer API client: ``PATCH /v2/customer/{id}`` over one httpx connection pool per container.

Answers are sorted into three kinds: accepted (``SphereResult`` with ``updatedAt`` and the KYC
profile), permanently refused (4xx: ``SphereRefused``), and worth retrying (429, 5xx, timeouts,
dropped connections, a 401 that a fresh token did not cure: ``SphereUnavailable``).
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook_adapter.errors import SphereRefused, SphereUnavailable
from webhook_adapter.masking import redact_text, text_values
from webhook_adapter.outcome import SphereResult
from webhook_adapter.pace import CallPace, SphereCallsHeld

__all__ = ["SphereCallsHeld", "SphereClient", "SphereRefused", "SphereUnavailable", "parse_retry_after"]

KYC_PROFILE = "kyc_profile_a"
_UNAUTHORIZED = 401
_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500
_MAX_DETAIL = 300

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
        return SphereResult(http_status=response.status_code)

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
        correlation_id=(text("correlationId", "correlation_id") or response.headers.get("x-correlation-id") or "")[
            :_MAX_DETAIL
        ]
        or None,
    )


def _success_result(response: httpx.Response, sent: dict[str, Any]) -> SphereResult:
    try:
        customer = _Customer.model_validate(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
        return SphereResult(http_status=response.status_code)
    profile = next((p for p in customer.verification_profiles if p.name == KYC_PROFILE), None)
    errors = profile.criteria.errors if profile else []
    sent_values = list(text_values(sent)) if errors else []
    return SphereResult(
        http_status=response.status_code,
        updated_at=customer.updated_at,
        kyc_status=profile.status if profile else None,
        kyc_errors=[redact_text(str(error), sent_values)[:_MAX_DETAIL] for error in errors],
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

    def update_customer(self, customer_id: str, body: dict[str, Any], *, max_wait: float | None = None) -> SphereResult:
        """PATCH the customer; on 401 fetch the key again once (it may have been rotated) and retry.

        Each call first waits for the container's pace (when it has one), at most ``max_wait`` seconds.

        Raises:
            SphereRefused: a permanent 4xx.
            SphereUnavailable: 429, 5xx, a timeout, a transport error, or a 401 with a fresh key too.
            SphereCallsHeld: the pace had no call for it within ``max_wait``; Sphere was not called.
        """
        response = self._patch(customer_id, body, refresh=False, max_wait=max_wait)
        if response.status_code == _UNAUTHORIZED:
            response = self._patch(customer_id, body, refresh=True, max_wait=max_wait)
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
        self, customer_id: str, body: dict[str, Any], *, refresh: bool, max_wait: float | None
    ) -> httpx.Response:
        with self._token_lock:
            token = self._token(refresh)
        headers = {"Authorization": f"Bearer {token}"}
        pace = self._pace
        ticket = pace.acquire(max_wait) if pace is not None else None
        try:
            response = self._http.patch(f"/v2/customer/{customer_id}", json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise SphereUnavailable(f"Sphere did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise SphereUnavailable(f"could not reach Sphere ({type(exc).__name__})") from exc
        if pace is not None and ticket is not None:
            if response.status_code == _TOO_MANY_REQUESTS:
                pace.throttled(ticket, parse_retry_after(response.headers.get("retry-after"), now=time.time()))
            elif response.status_code < _SERVER_ERROR:
                pace.answered()
        return response
