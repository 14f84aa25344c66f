"""Sphere API stand-in: a loopback HTTP server that speaks the customer-update contract.

The real Sphere API is not reachable from our machines, so tests and the local stack talk to this
server instead. It implements ``PATCH /v2/customer/{id}`` as written in
``spec/sphere-customer-update.md``: path pattern, bearer token, body fields, the three cross-field
rules, the error format ``{"status", "detail", "code", "correlationId"}`` and the full customer
object on success. Customers live in memory, seeded with two individuals and one business.

Tests observe it (every request received is recorded, refused ones too, with the fault injected
and whether it applied; accepted TCP connections and injected faults are counted) and perturb it
(latency, failures such as 429 with ``Retry-After`` or a non-JSON 502, timeouts, dropped
connections, updates applied and then failed, a seeded random failure rate for chaos loads, a
rotated token; see ``devstack.sphere_faults``). The same controls are served over HTTP under
``/_standin/`` for out-of-process use; control requests are neither recorded nor faulted.

Run it standalone (loopback only) until Ctrl-C::

    python -m devstack.sphere_standin --port 8081 --token local-sphere-token
"""

from __future__ import annotations

import argparse
import copy
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from devstack.sphere_faults import FaultPlan
from devstack.standin_server import (
    JSON_MEDIA_TYPE,
    ApiRequest,
    BodyError,
    Exchange,
    LoopbackStandIn,
    Reply,
    control_body,
    fault_control_actions,
    format_timestamp,
    json_bytes,
    parse_json_or_none,
    serve_until_signal,
)

__all__ = [
    "CORRELATION_ID_HEADER",
    "CUSTOMER_ID_PATTERN",
    "DEFAULT_PORT",
    "DEFAULT_TOKEN",
    "SEED_BUSINESS_ID",
    "SEED_INDIVIDUAL_ID",
    "SEED_KYC_SUBMITTED_ID",
    "ErrorCode",
    "RecordedRequest",
    "SphereStandIn",
    "main",
]

_logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------- constants

DEFAULT_PORT: Final = 8081
"""Port of the standalone server (``main``); tests pass ``port=0`` for a free one."""

DEFAULT_TOKEN: Final = "local-sphere-token"
"""Bearer token accepted until rotated."""

CORRELATION_ID_HEADER: Final = "X-Correlation-Id"
"""Response header carrying a fresh correlation id on every answer (error bodies repeat it)."""

CUSTOMER_ID_PATTERN: Final = re.compile(r"^customer_[a-z0-9]+$")
"""Shape of a Sphere customer id."""

SEED_INDIVIDUAL_ID: Final = "customer_f31121c389624d3697cbf3ea8830b7a4"
"""Seeded individual with names and date of birth but no email, phone or address; KYC not submitted."""

SEED_KYC_SUBMITTED_ID: Final = "customer_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
"""Seeded individual with contact details and address whose KYC is submitted (identity fields locked)."""

SEED_BUSINESS_ID: Final = "customer_b0000000000000000000000000000001"
"""Seeded business customer: this endpoint refuses it."""

_CUSTOMER_PATH: Final = re.compile(r"^/v2/customer/(?P<customer_id>[^/]+)$")
_CONTROL_CUSTOMER_PATH: Final = re.compile(r"^/_standin/customers/(?P<customer_id>[^/]+)$")
_E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_EMAIL_LENGTH: Final = 254
_ALPHA3: Final = re.compile(r"^[A-Z]{3}$")
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HTML_MEDIA_TYPE: Final = "text/html; charset=utf-8"
_INVALID_PARAMETERS: Final = "Invalid request parameters"

_UPDATABLE_FIELDS: Final = frozenset({"address", "email", "phone", "personalInformation", "meta"})
"""Top-level body fields the endpoint accepts."""

_ADDRESS_REQUIRED_FIELDS: Final = ("line1", "city", "postalCode", "country")
_ADDRESS_OPTIONAL_FIELDS: Final = ("line2", "state")

COUNTRIES_REQUIRING_STATE: Final = frozenset({"USA", "CAN", "BRA"})
"""Countries (alpha-3) whose addresses must carry ``state``."""

_TAX_REQUIRED_FIELDS: Final = (
    "taxIdentificationNumber",
    "taxIdentificationNumberType",
    "taxIdentificationNumberCountry",
)
_TAX_FIELDS: Final = frozenset({*_TAX_REQUIRED_FIELDS, "taxIdentificationNumberDescription"})
_TOP_LEVEL_IDENTITY_FIELDS: Final = ("firstName", "lastName", "dateOfBirth")
"""``personalInformation`` fields that the customer object shows at top level."""

_PERSONAL_INFORMATION_FIELDS: Final = frozenset(
    {
        *_TAX_FIELDS,
        *_TOP_LEVEL_IDENTITY_FIELDS,
        "gender",
        "countryOfBirth",
        "nationality",
        "middleName",
        "occupationSocCode",
        "residencyCountry",
        "sourceOfFunds",
    }
)
_PERSONAL_COUNTRY_FIELDS: Final = frozenset(
    {"taxIdentificationNumberCountry", "countryOfBirth", "nationality", "residencyCountry"}
)
_LOCKED_AFTER_KYC_FIELDS: Final = frozenset({*_TAX_FIELDS, *_TOP_LEVEL_IDENTITY_FIELDS, "middleName"})
"""Identity fields refused once the customer's KYC is submitted."""

_NEVER_ECHOED_FIELDS: Final = frozenset({"taxIdentificationNumber"})

_CUSTOMER_TYPES: Final = frozenset({"individual", "business"})
_CUSTOMER_FIELDS: Final = frozenset(
    {
        "email",
        "phone",
        "firstName",
        "lastName",
        "dateOfBirth",
        "address",
        "meta",
        "tosStatus",
        "personalInformation",
        "kyc_submitted",
    }
)
"""Fields ``add_customer`` accepts besides id and type."""

KYC_PROFILE_NAME: Final = "kyc_profile_a"
KYB_PROFILE_NAME: Final = "kyb_profile_a"
_CONTACT_CRITERIA: Final = (("email_address", "email"), ("phone_number", "phone"), ("residential_address", "address"))
"""Verification criteria and the stored field that completes each."""


class ErrorCode(StrEnum):
    """``code`` values of the stand-in's error bodies."""

    NOT_FOUND = "resource/not-found"
    UNAUTHORIZED = "auth/unauthorized"
    METHOD_NOT_ALLOWED = "request/method-not-allowed"
    UNSUPPORTED_MEDIA_TYPE = "request/unsupported-media-type"
    MALFORMED_REQUEST = "request/malformed"
    BODY_TOO_LARGE = "request/too-large"
    VALIDATION_FAILED = "validation/failed"
    ADDRESS_INVALID = "address/invalid"
    ADDRESS_REQUIRED = "personal-information/address-required"
    TAX_IDENTIFICATION_INCOMPLETE = "personal-information/tax-identification-incomplete"
    IDENTITY_LOCKED = "customer/identity-locked"
    BUSINESS_NOT_SUPPORTED = "customer/business-not-supported"
    RATE_LIMITED = "rate-limit/exceeded"
    SERVER_ERROR = "server/error"
    INTERNAL_ERROR = "server/internal-error"
    BAD_GATEWAY = "server/bad-gateway"
    UNAVAILABLE = "server/unavailable"
    GATEWAY_TIMEOUT = "server/gateway-timeout"


_FAULT_CODES: Final[Mapping[int, ErrorCode]] = {
    HTTPStatus.TOO_MANY_REQUESTS: ErrorCode.RATE_LIMITED,
    HTTPStatus.INTERNAL_SERVER_ERROR: ErrorCode.INTERNAL_ERROR,
    HTTPStatus.BAD_GATEWAY: ErrorCode.BAD_GATEWAY,
    HTTPStatus.SERVICE_UNAVAILABLE: ErrorCode.UNAVAILABLE,
    HTTPStatus.GATEWAY_TIMEOUT: ErrorCode.GATEWAY_TIMEOUT,
    HTTPStatus.UNAUTHORIZED: ErrorCode.UNAUTHORIZED,
    HTTPStatus.NOT_FOUND: ErrorCode.NOT_FOUND,
}
"""Error code of an injected failure, by status; other statuses get ``server/error``."""


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the stand-in received on the Sphere API (control requests are not recorded).

    Appended just before the answer is written, so a client that got its answer finds the record;
    a request held by latency or a timeout fault appears when it is answered or dropped.

    Attributes:
        method: HTTP method, e.g. ``PATCH``.
        path: request target as sent, query string included.
        headers: request headers with lower-cased names (read-only mapping).
        body: the body parsed as JSON, or ``None`` when empty or not JSON.
        status: status answered, or ``None`` when the connection was dropped without an answer.
        received_at: when the request line and headers had been read (UTC).
        correlation_id: correlation id sent with the answer, ``None`` when dropped.
        connection_id: sequence number of the TCP connection it came on (1 for the first accepted).
        fault: the injected fault's kind (``FaultKind`` values, ``held``, a status), ``None`` when none.
        applied: whether the request changed the customer (a 200, or a fault that applies first).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    status: int | None
    received_at: datetime
    correlation_id: str | None
    connection_id: int
    fault: str | None = None
    applied: bool = False

    @property
    def customer_id(self) -> str | None:
        """The ``{id}`` of a ``/v2/customer/{id}`` path, else ``None``."""
        match = _CUSTOMER_PATH.match(urlsplit(self.path).path)
        return match["customer_id"] if match else None

    def to_json(self) -> dict[str, Any]:
        """This record as a JSON-ready object (camelCase keys), as ``GET /_standin/requests`` lists it."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": dict(self.headers),
            "body": copy.deepcopy(self.body),
            "status": self.status,
            "receivedAt": format_timestamp(self.received_at),
            "correlationId": self.correlation_id,
            "connectionId": self.connection_id,
            "fault": self.fault,
            "applied": self.applied,
        }


# ---------------------------------------------------------------------------------------------- internals


class _ApiError(Exception):
    """A refusal answered in Sphere's error format."""

    def __init__(self, status: int, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def _new_correlation_id() -> str:
    return uuid.uuid4().hex


def _json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status=int(status), body=json_bytes(payload), correlation_id=_new_correlation_id(), headers=headers)


def _error_reply(error: _ApiError, headers: tuple[tuple[str, str], ...] = (), *, close: bool = False) -> Reply:
    correlation_id = _new_correlation_id()
    payload = {
        "status": int(error.status),
        "detail": error.detail,
        "code": str(error.code),
        "correlationId": correlation_id,
    }
    return Reply(
        status=int(error.status),
        body=json_bytes(payload),
        correlation_id=correlation_id,
        headers=headers,
        close=close,
    )


def _fault_reply(plan: FaultPlan) -> Reply:
    """The answer of an injected failure: error JSON by default, else the body given."""
    headers = (("Retry-After", plan.fail_retry_after),) if plan.fail_retry_after is not None else ()
    if plan.fail_body is None:
        code = _FAULT_CODES.get(plan.fail_status, ErrorCode.SERVER_ERROR)
        return _error_reply(_ApiError(plan.fail_status, code, f"Injected failure {plan.fail_status}"), headers)
    if isinstance(plan.fail_body, str):
        return Reply(
            status=plan.fail_status,
            body=plan.fail_body.encode(),
            correlation_id=_new_correlation_id(),
            content_type=_HTML_MEDIA_TYPE,
            headers=headers,
        )
    return _json_reply(plan.fail_status, plan.fail_body, headers)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


# ---------------------------------------------------------------------------------------------- validation


def _validation_error(detail: str) -> _ApiError:
    return _ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, ErrorCode.VALIDATION_FAILED, detail)


def _address_error(reason: str) -> _ApiError:
    # Sphere answers every address problem with the same fixed detail; the reason is only logged.
    _logger.info("address refused reason=%s", reason)
    return _ApiError(HTTPStatus.BAD_REQUEST, ErrorCode.ADDRESS_INVALID, _INVALID_PARAMETERS)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _validate_email(value: Any) -> None:
    """Raises: _ApiError: 422 when ``value`` is not a plausible email address."""
    if not isinstance(value, str) or len(value) > _MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(value):
        raise _validation_error("Invalid field: email")


def _validate_phone(value: Any) -> None:
    """Raises: _ApiError: 422 when ``value`` is not an E.164 number."""
    if not isinstance(value, str) or not _E164.fullmatch(value):
        raise _validation_error("Invalid field: phone (E.164 expected)")


def _validate_meta(value: Any) -> None:
    """Raises: _ApiError: 422 when ``value`` is not an object."""
    if not isinstance(value, dict):
        raise _validation_error("Invalid field: meta (object expected)")


def _validate_address(value: Any) -> None:
    """Raises: _ApiError: 400 ``address/invalid`` for any incomplete or malformed address."""
    if not isinstance(value, dict):
        raise _address_error("not an object")
    unknown = sorted(set(value) - {*_ADDRESS_REQUIRED_FIELDS, *_ADDRESS_OPTIONAL_FIELDS})
    if unknown:
        raise _address_error(f"unknown fields {','.join(unknown)}")
    missing = [name for name in _ADDRESS_REQUIRED_FIELDS if not _is_text(value.get(name))]
    if missing:
        raise _address_error(f"missing {','.join(missing)}")
    for name in _ADDRESS_OPTIONAL_FIELDS:
        if value.get(name) is not None and not _is_text(value[name]):
            raise _address_error(f"blank or non-text {name}")
    if not _ALPHA3.fullmatch(value["country"]):
        raise _address_error("country is not ISO 3166-1 alpha-3")
    if value["country"] in COUNTRIES_REQUIRING_STATE and value.get("state") is None:
        raise _address_error("state required for this country")


def _validate_personal_information(value: Any, *, has_address: bool, kyc_submitted: bool) -> None:
    """Field checks, then the three cross-field rules of the spec.

    Raises:
        _ApiError: 422 for an unknown or malformed field; 400 when ``address`` is missing, the tax
            identification is incomplete, or an identity field is sent after KYC submission.
    """
    if not isinstance(value, dict):
        raise _validation_error("Invalid field: personalInformation (object expected)")
    unknown = sorted(set(value) - _PERSONAL_INFORMATION_FIELDS)
    if unknown:
        raise _validation_error(f"Unknown field: {', '.join(f'personalInformation.{name}' for name in unknown)}")
    for name, field_value in value.items():
        if not _is_text(field_value):
            raise _validation_error(f"Invalid field: personalInformation.{name}")
        if name in _PERSONAL_COUNTRY_FIELDS and not _ALPHA3.fullmatch(field_value):
            raise _validation_error(f"Invalid field: personalInformation.{name} (ISO 3166-1 alpha-3 expected)")
    if "dateOfBirth" in value and not _is_iso_date(value["dateOfBirth"]):
        raise _validation_error("Invalid field: personalInformation.dateOfBirth (YYYY-MM-DD expected)")
    if not has_address:
        raise _ApiError(
            HTTPStatus.BAD_REQUEST, ErrorCode.ADDRESS_REQUIRED, "address is required with personalInformation"
        )
    if _TAX_FIELDS & set(value):
        missing = [name for name in _TAX_REQUIRED_FIELDS if name not in value]
        if missing:
            raise _ApiError(
                HTTPStatus.BAD_REQUEST,
                ErrorCode.TAX_IDENTIFICATION_INCOMPLETE,
                f"Tax identification requires number, type and country; missing: {', '.join(missing)}",
            )
    if kyc_submitted:
        locked = sorted(_LOCKED_AFTER_KYC_FIELDS & set(value))
        if locked:
            raise _ApiError(
                HTTPStatus.BAD_REQUEST,
                ErrorCode.IDENTITY_LOCKED,
                f"Identity fields cannot change after KYC submission: {', '.join(locked)}",
            )


def _is_iso_date(value: str) -> bool:
    if not _ISO_DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _validate_update(body: Mapping[str, Any], customer: Mapping[str, Any]) -> None:
    """Check a PATCH body against the contract.

    Raises:
        _ApiError: 422 ``validation/failed`` for unknown or malformed fields, 400 for an invalid
            address or a broken cross-field rule.
    """
    unknown = sorted(set(body) - _UPDATABLE_FIELDS)
    if unknown:
        raise _validation_error(f"Unknown field: {', '.join(unknown)}")
    if "email" in body:
        _validate_email(body["email"])
    if "phone" in body:
        _validate_phone(body["phone"])
    if "meta" in body:
        _validate_meta(body["meta"])
    if "address" in body:
        _validate_address(body["address"])
    if "personalInformation" in body:
        _validate_personal_information(
            body["personalInformation"],
            has_address="address" in body,
            kyc_submitted=bool(customer["kyc_submitted"]),
        )


def _apply_update(customer: dict[str, Any], body: Mapping[str, Any], updated_at: str) -> None:
    """Apply a validated body: ``meta`` and ``address`` replace, ``personalInformation`` merges."""
    for name in ("email", "phone"):
        if name in body:
            customer[name] = body[name]
    if "address" in body:
        customer["address"] = {name: value for name, value in body["address"].items() if value is not None}
    if "meta" in body:
        customer["meta"] = copy.deepcopy(body["meta"])
    if "personalInformation" in body:
        information = dict(body["personalInformation"])
        for name in _TOP_LEVEL_IDENTITY_FIELDS:
            if name in information:
                customer[name] = information.pop(name)
        customer["personalInformation"] = {**customer["personalInformation"], **information}
    customer["updatedAt"] = updated_at


def _customer_view(customer: Mapping[str, Any]) -> dict[str, Any]:
    """The customer object Sphere answers with (tax number never echoed, criteria computed)."""
    complete = [criterion for criterion, name in _CONTACT_CRITERIA if customer.get(name)]
    required = [criterion for criterion, name in _CONTACT_CRITERIA if not customer.get(name)]
    is_individual = customer["type"] == "individual"
    return {
        "id": customer["id"],
        "type": customer["type"],
        "email": customer.get("email"),
        "phone": customer.get("phone"),
        "firstName": customer.get("firstName"),
        "lastName": customer.get("lastName"),
        "dateOfBirth": customer.get("dateOfBirth"),
        "address": copy.deepcopy(customer.get("address")),
        "meta": copy.deepcopy(customer["meta"]),
        "tosStatus": customer["tosStatus"],
        "createdAt": customer["createdAt"],
        "updatedAt": customer["updatedAt"],
        "personalInformation": {
            name: value for name, value in customer["personalInformation"].items() if name not in _NEVER_ECHOED_FIELDS
        },
        "verificationProfiles": [
            {
                "name": KYC_PROFILE_NAME if is_individual else KYB_PROFILE_NAME,
                "status": "incomplete" if required else "pending",
                "criteria": {"complete": complete, "pending": [], "required": required, "errors": []},
            }
        ],
    }


# ---------------------------------------------------------------------------------------------- the stand-in


class SphereStandIn(LoopbackStandIn["RecordedRequest"]):
    """In-memory Sphere API on loopback, observable and perturbable from tests.

    Use as a context manager (or call ``start()`` / ``stop()``); the server listens as soon as
    ``start()`` returns. All methods are thread-safe. The server, the lifecycle and the fault
    controls are ``devstack.standin_server``'s; this class speaks the Sphere contract.

    Args:
        token: the bearer token accepted until ``rotate_token``.
        port: TCP port on 127.0.0.1; 0 picks a free one (read it back from ``base_url``).
        seed: start with the seeded customers (``SEED_*_ID``); ``False`` starts empty.

    Raises:
        ValueError: empty token or port out of range.
    """

    name = "sphere-standin"
    server_version = "SphereStandIn/1.0"
    correlation_header = CORRELATION_ID_HEADER

    def __init__(self, token: str = DEFAULT_TOKEN, port: int = 0, *, seed: bool = True) -> None:
        if not token:
            raise ValueError("token must not be empty")
        super().__init__(port)
        self._initial_token = token
        self._tokens: frozenset[str] = frozenset({token})
        self._customers: dict[str, dict[str, Any]] = {}
        self._last_timestamp: datetime | None = None
        if seed:
            self._seed()

    # -- customers ------------------------------------------------------------------------------

    def add_customer(self, customer_id: str, type: str = "individual", **fields: Any) -> dict[str, Any]:
        """Add (or replace) a customer; ``fields`` use the customer object's names plus ``kyc_submitted``.

        Accepted fields: email, phone, firstName, lastName, dateOfBirth, address, meta, tosStatus,
        personalInformation (may hold the tax number; it is stored, never echoed), kyc_submitted.

        Returns:
            A copy of the stored customer.

        Raises:
            ValueError: malformed id, unknown type, or unknown field.
        """
        if not CUSTOMER_ID_PATTERN.fullmatch(customer_id):
            raise ValueError(f"customer id must match {CUSTOMER_ID_PATTERN.pattern}")
        if type not in _CUSTOMER_TYPES:
            raise ValueError(f"customer type must be one of {sorted(_CUSTOMER_TYPES)}")
        unknown = sorted(set(fields) - _CUSTOMER_FIELDS)
        if unknown:
            raise ValueError(f"unknown customer fields: {', '.join(unknown)}")
        with self._lock:
            created_at = self._next_timestamp()
            customer: dict[str, Any] = {
                "id": customer_id,
                "type": type,
                "email": None,
                "phone": None,
                "firstName": None,
                "lastName": None,
                "dateOfBirth": None,
                "address": None,
                "meta": {},
                "tosStatus": "approved",
                "personalInformation": {},
                "createdAt": created_at,
                "updatedAt": created_at,
                "kyc_submitted": False,
            }
            customer.update(copy.deepcopy(fields))
            self._customers[customer_id] = customer
            return copy.deepcopy(customer)

    def customer(self, customer_id: str) -> dict[str, Any]:
        """A copy of the stored customer, including what the API never echoes and ``kyc_submitted``.

        Raises:
            KeyError: no such customer.
        """
        with self._lock:
            return copy.deepcopy(self._customers[customer_id])

    # -- observation ----------------------------------------------------------------------------

    def patches(self, customer_id: str | None = None) -> list[RecordedRequest]:
        """The successful (200) PATCH requests, optionally only those for ``customer_id``."""
        return [
            record
            for record in self.requests
            if record.method == "PATCH"
            and record.status == HTTPStatus.OK
            and (customer_id is None or record.customer_id == customer_id)
        ]

    # -- faults ---------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: int | str | None = None,
        body: str | Mapping[str, Any] | None = None,
        *,
        customer_id: str | None = None,
    ) -> None:
        """Answer the next ``n`` API requests with ``status`` instead of processing them.

        The body is Sphere's error JSON unless ``body`` is given: a string is sent as ``text/html``
        (a gateway page), a mapping as JSON (e.g. the older ``{"ts", "error"}`` format).
        ``retry_after`` becomes a ``Retry-After`` header. ``customer_id`` limits the failures to the
        requests for that customer (the deliver function calls Sphere for several contacts at once, in
        no fixed order). Replaces any pending failure instruction.

        Raises:
            ValueError: ``n`` < 0 or ``status`` outside 400..599.
        """
        self._set_fail(n, status, retry_after, body, customer_id)

    def rotate_token(self, new_token: str) -> None:
        """Accept only ``new_token`` from now on; every earlier token is refused with 401.

        Raises:
            ValueError: empty token.
        """
        if not isinstance(new_token, str) or not new_token:
            raise ValueError("new_token must be a non-empty string")
        with self._lock:
            self._tokens = frozenset({new_token})
        _logger.info("sphere stand-in token rotated")

    # -- what the shared server asks -------------------------------------------------------------

    def _reset_tokens(self) -> None:
        self._tokens = frozenset({self._initial_token})

    def _fault_key(self, path: str) -> str | None:
        """The customer id of a ``/v2/customer/{id}`` path: ``fail_next(..., customer_id=...)`` matches on it."""
        route = _CUSTOMER_PATH.match(path)
        return route["customer_id"] if route else None

    def _fault_reply(self, plan: FaultPlan, path: str) -> Reply:
        return _fault_reply(plan)

    def _body_error_reply(self, error: BodyError) -> Reply:
        too_large = error.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        code = ErrorCode.BODY_TOO_LARGE if too_large else ErrorCode.MALFORMED_REQUEST
        return _error_reply(_ApiError(error.status, code, error.detail), close=True)

    def _make_record(self, exchange: Exchange) -> RecordedRequest:
        return RecordedRequest(
            method=exchange.method,
            path=exchange.target,
            headers=MappingProxyType(dict(exchange.headers)),
            body=parse_json_or_none(exchange.raw_body),
            status=exchange.status,
            received_at=exchange.received_at,
            correlation_id=exchange.correlation_id,
            connection_id=exchange.connection_id,
            fault=exchange.fault,
            applied=exchange.applied,
        )

    def _answer(self, request: ApiRequest) -> Reply:
        return self._handle_api(request.method, request.path, request.headers, request.raw_body)

    def _answer_control(self, method: str, path: str, raw_body: bytes) -> Reply:
        return self._handle_control(method, path, raw_body)

    # -- internals ----------------------------------------------------------------------------------

    def _seed(self) -> None:
        self.add_customer(SEED_INDIVIDUAL_ID, firstName="Ada", lastName="Lovelace", dateOfBirth="1990-12-10")
        self.add_customer(
            SEED_KYC_SUBMITTED_ID,
            email="grace.hopper@example.com",
            phone="+14155550123",
            firstName="Grace",
            lastName="Hopper",
            dateOfBirth="1986-12-09",
            address={"line1": "1 Main St", "city": "Chicago", "postalCode": "60601", "state": "IL", "country": "USA"},
            kyc_submitted=True,
        )
        self.add_customer(SEED_BUSINESS_ID, type="business", email="ops@example.com")

    def _next_timestamp(self) -> str:
        """Now in milliseconds, strictly after the previous one handed out; call with the lock held."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_timestamp is not None and now <= self._last_timestamp:
            now = self._last_timestamp + timedelta(milliseconds=1)
        self._last_timestamp = now
        return format_timestamp(now)

    def _is_authorized(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        with self._lock:
            tokens = self._tokens
        presented = token.strip().encode()
        return any(hmac.compare_digest(presented, valid.encode()) for valid in tokens)

    def _handle_api(self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> Reply:
        """Answer one Sphere API request (faults already applied)."""
        try:
            return self._update_customer(method, target, headers, raw_body)
        except _ApiError as error:
            extra: tuple[tuple[str, str], ...] = ()
            if error.status == HTTPStatus.UNAUTHORIZED:
                extra = (("WWW-Authenticate", "Bearer"),)
            elif error.status == HTTPStatus.METHOD_NOT_ALLOWED:
                extra = (("Allow", "PATCH"),)
            return _error_reply(error, extra)

    def _update_customer(self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> Reply:
        """``PATCH /v2/customer/{id}``.

        Raises:
            _ApiError: any refusal, in the order route, token, id, method, media type, body, customer, fields.
        """
        route = _CUSTOMER_PATH.match(target)
        if route is None:
            raise _ApiError(HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND, "Resource not found")
        if not self._is_authorized(headers.get("authorization")):
            raise _ApiError(HTTPStatus.UNAUTHORIZED, ErrorCode.UNAUTHORIZED, "Missing or invalid API key")
        customer_id = route["customer_id"]
        if not CUSTOMER_ID_PATTERN.fullmatch(customer_id):
            raise _ApiError(HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND, "Customer not found")
        if method != "PATCH":
            raise _ApiError(HTTPStatus.METHOD_NOT_ALLOWED, ErrorCode.METHOD_NOT_ALLOWED, "Method not allowed")
        if _media_type(headers.get("content-type")) != JSON_MEDIA_TYPE:
            raise _ApiError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Content-Type must be JSON"
            )
        try:
            body = json.loads(raw_body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _ApiError(HTTPStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, "Body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _ApiError(HTTPStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, "Body must be a JSON object")
        with self._lock:
            customer = self._customers.get(customer_id)
            if customer is None:
                raise _ApiError(HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND, "Customer not found")
            if customer["type"] != "individual":
                raise _ApiError(
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    ErrorCode.BUSINESS_NOT_SUPPORTED,
                    "Business customers cannot be updated here; use the KYB link flow",
                )
            _validate_update(body, customer)
            _apply_update(customer, body, self._next_timestamp())
            view = _customer_view(customer)
        return _json_reply(HTTPStatus.OK, view)

    def _handle_control(self, method: str, target: str, raw_body: bytes) -> Reply:
        """Answer a ``/_standin/`` control request (never recorded, never faulted)."""
        try:
            return self._control(method, target, raw_body)
        except _ApiError as error:
            return _error_reply(error)
        except (TypeError, ValueError) as error:
            return _error_reply(_ApiError(HTTPStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, str(error)))

    def _control(self, method: str, target: str, raw_body: bytes) -> Reply:
        """Raises: _ApiError: unknown endpoint or customer; TypeError, ValueError: malformed control body."""
        routes: dict[tuple[str, str], Callable[[], Reply]] = {
            ("GET", "/_standin/requests"): lambda: _json_reply(
                HTTPStatus.OK, [record.to_json() for record in self.requests]
            ),
            ("DELETE", "/_standin/requests"): self._control_clear_requests,
            ("GET", "/_standin/connections"): lambda: _json_reply(HTTPStatus.OK, {"count": self.connection_count}),
            ("GET", "/_standin/faults"): self._control_faults,
            ("POST", "/_standin/faults"): lambda: self._control_set_faults(control_body(raw_body)),
            ("POST", "/_standin/customers"): lambda: self._control_add_customer(control_body(raw_body)),
        }
        handler = routes.get((method, target))
        if handler is not None:
            return handler()
        customer_route = _CONTROL_CUSTOMER_PATH.match(target)
        if method == "GET" and customer_route is not None:
            try:
                return _json_reply(HTTPStatus.OK, self.customer(customer_route["customer_id"]))
            except KeyError:
                raise _ApiError(HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND, "Customer not found") from None
        raise _ApiError(HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND, "Unknown control endpoint")

    def _control_clear_requests(self) -> Reply:
        self.clear_requests()
        return _json_reply(HTTPStatus.OK, {"cleared": True})

    def _control_faults(self) -> Reply:
        return _json_reply(HTTPStatus.OK, self.pending_faults)

    def _control_set_faults(self, spec: Mapping[str, Any]) -> Reply:
        """Apply ``{"reset", "fail", "latency", "drop", "timeout", "appliedThenFail", "appliedThenDrop", "random",
        "rotateToken"}``; all checked before any applies.

        Raises:
            ValueError, TypeError: unknown key or malformed value.
        """
        actions = fault_control_actions(
            self,
            spec,
            fail=self.fail_next,
            rotate_token=self._rotate_token_action,
        )
        for action in actions:
            action()
        return self._control_faults()

    def _rotate_token_action(self, new_token: Any) -> Callable[[], None]:
        """Raises: ValueError: ``new_token`` is not a non-empty string."""
        if not isinstance(new_token, str) or not new_token:
            raise ValueError("rotateToken must be a non-empty string")
        return lambda: self.rotate_token(new_token)

    def _control_add_customer(self, spec: Mapping[str, Any]) -> Reply:
        """Raises: TypeError: id or type not a string; ValueError: malformed id, type or fields."""
        fields = dict(spec)
        customer_id = fields.pop("id", None)
        customer_type = fields.pop("type", "individual")
        if not isinstance(customer_id, str) or not isinstance(customer_type, str):
            raise TypeError("id and type must be strings")
        return _json_reply(HTTPStatus.CREATED, self.add_customer(customer_id, customer_type, **fields))


# ---------------------------------------------------------------------------------------------- standalone


_DESCRIPTION: Final = "Sphere API stand-in on 127.0.0.1 for local runs and tests."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in on 127.0.0.1 until Ctrl-C or SIGTERM.

    Returns:
        The process exit code (0).
    """
    parser = argparse.ArgumentParser(prog="python -m devstack.sphere_standin", description=_DESCRIPTION)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token accepted until rotated")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    serve_until_signal(SphereStandIn(token=args.token, port=args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
