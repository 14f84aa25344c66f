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
import selectors
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, MappingProxyType, TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import urlsplit

from devstack.sphere_faults import (
    APPLIED_THEN_FAILED,
    DEFAULT_RANDOM_KINDS,
    FaultKind,
    FaultPlan,
    Faults,
    RandomFaults,
    require_count,
    require_seconds,
    require_status,
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

LOOPBACK_HOST: Final = "127.0.0.1"
"""The only interface the stand-in ever binds."""

DEFAULT_PORT: Final = 8081
"""Port of the standalone server (``main``); tests pass ``port=0`` for a free one."""

DEFAULT_TOKEN: Final = "local-sphere-token"
"""Bearer token accepted until rotated."""

CORRELATION_ID_HEADER: Final = "X-Correlation-Id"
"""Response header carrying a fresh correlation id on every answer (error bodies repeat it)."""

CONTROL_PREFIX: Final = "/_standin/"
"""Path prefix of the out-of-process control endpoints."""

CUSTOMER_ID_PATTERN: Final = re.compile(r"^customer_[a-z0-9]+$")
"""Shape of a Sphere customer id."""

SEED_INDIVIDUAL_ID: Final = "customer_f31121c389624d3697cbf3ea8830b7a4"
"""Seeded individual with names and date of birth but no email, phone or address; KYC not submitted."""

SEED_KYC_SUBMITTED_ID: Final = "customer_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
"""Seeded individual with contact details and address whose KYC is submitted (identity fields locked)."""

SEED_BUSINESS_ID: Final = "customer_b0000000000000000000000000000001"
"""Seeded business customer: this endpoint refuses it."""

MAX_BODY_BYTES: Final = 1024 * 1024
"""Largest request body read; larger ones are answered 413 and the connection closed."""

_MAX_CHUNK_LINE_BYTES: Final = 1024
"""Longest chunk-size or trailer line accepted in a chunked body."""

_STOP_JOIN_SECONDS: Final = 2.0
"""Upper bound on the time ``stop()`` waits for connection threads to finish."""

_CUSTOMER_PATH: Final = re.compile(r"^/v2/customer/(?P<customer_id>[^/]+)$")
_CONTROL_CUSTOMER_PATH: Final = re.compile(r"^/_standin/customers/(?P<customer_id>[^/]+)$")
_E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_EMAIL_LENGTH: Final = 254
_ALPHA3: Final = re.compile(r"^[A-Z]{3}$")
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_JSON_MEDIA_TYPE: Final = "application/json"
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

_FAULT_KEYS: Final = frozenset(
    {"fail", "latency", "drop", "timeout", "appliedThenFail", "appliedThenDrop", "random", "rotateToken", "reset"}
)


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
            "receivedAt": _format_timestamp(self.received_at),
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


@dataclass(frozen=True, slots=True)
class _Reply:
    """An answer ready to be written."""

    status: int
    body: bytes
    correlation_id: str
    content_type: str = _JSON_MEDIA_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False


def _new_correlation_id() -> str:
    return uuid.uuid4().hex


def _format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, e.g. ``2025-01-31T12:00:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status=int(status), body=_json_bytes(payload), correlation_id=_new_correlation_id(), headers=headers)


def _error_reply(error: _ApiError, headers: tuple[tuple[str, str], ...] = (), *, close: bool = False) -> _Reply:
    correlation_id = _new_correlation_id()
    payload = {
        "status": int(error.status),
        "detail": error.detail,
        "code": str(error.code),
        "correlationId": correlation_id,
    }
    return _Reply(
        status=int(error.status),
        body=_json_bytes(payload),
        correlation_id=correlation_id,
        headers=headers,
        close=close,
    )


def _fault_reply(plan: FaultPlan) -> _Reply:
    """The answer of an injected failure: error JSON by default, else the body given."""
    headers = (("Retry-After", plan.fail_retry_after),) if plan.fail_retry_after is not None else ()
    if plan.fail_body is None:
        code = _FAULT_CODES.get(plan.fail_status, ErrorCode.SERVER_ERROR)
        return _error_reply(_ApiError(plan.fail_status, code, f"Injected failure {plan.fail_status}"), headers)
    if isinstance(plan.fail_body, str):
        return _Reply(
            status=plan.fail_status,
            body=plan.fail_body.encode(),
            correlation_id=_new_correlation_id(),
            content_type=_HTML_MEDIA_TYPE,
            headers=headers,
        )
    return _json_reply(plan.fail_status, plan.fail_body, headers)


def _parse_json_or_none(raw_body: bytes) -> Any:
    """The body parsed as JSON, ``None`` when empty or not JSON (used for recording)."""
    if not raw_body:
        return None
    try:
        return json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


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


# ---------------------------------------------------------------------------------------------- HTTP plumbing


class _StandInServer(ThreadingHTTPServer):
    """Threading HTTP server that counts connections, stops without polling and closes open connections."""

    daemon_threads = True
    timeout = 0  # handle_request() accepts the pending connection and returns at once

    def __init__(self, address: tuple[str, int], app: SphereStandIn, stopping: threading.Event) -> None:
        self.app = app
        self._stopping = stopping
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._open_lock = threading.Lock()
        self._open: dict[socket.socket, tuple[int, threading.Thread]] = {}
        super().__init__(address, _StandInHandler)

    def serve_until_stopped(self) -> None:
        """Accept connections until ``stop_serving()``; unlike ``serve_forever`` it needs no polling to notice."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = selector.select()
                if self._stopping.is_set():
                    break
                if any(key.fileobj is self.socket for key, _ in ready):
                    self.handle_request()

    def stop_serving(self) -> None:
        """Release every wait on the stop event and wake the accept loop so it returns."""
        self._stopping.set()
        self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        """Close the listening socket and the wake-up pair."""
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        """Serve one accepted connection in its own daemon thread, registered so ``stop()`` can end it."""
        connection = cast(socket.socket, request)
        connection_id = self.app._count_connection()
        thread = threading.Thread(
            target=self._serve_connection,
            args=(connection, client_address),
            name=f"sphere-standin-connection-{connection_id}",
            daemon=True,
        )
        with self._open_lock:
            self._open[connection] = (connection_id, thread)
        thread.start()

    def _serve_connection(self, connection: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(connection, client_address)
        finally:
            with self._open_lock:
                self._open.pop(connection, None)

    def connection_id(self, connection: socket.socket) -> int:
        """Sequence number of an open connection (0 if unknown)."""
        with self._open_lock:
            entry = self._open.get(connection)
        return entry[0] if entry else 0

    def close_open_connections(self) -> list[threading.Thread]:
        """Shut every open connection down (unblocking its thread) and return the threads serving them."""
        with self._open_lock:
            entries = list(self._open.items())
        for connection, _ in entries:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                _logger.debug("connection already closed")
        return [thread for _, (_, thread) in entries]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a handler crash instead of printing it to stderr."""
        _logger.exception("sphere stand-in connection handler failed")


class _StandInHandler(BaseHTTPRequestHandler):
    """Reads each request fully, applies faults, and lets the stand-in answer it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "SphereStandIn/1.0"

    def do_PATCH(self) -> None:
        """Answer a PATCH."""
        self._dispatch()

    def do_GET(self) -> None:
        """Answer a GET."""
        self._dispatch()

    def do_POST(self) -> None:
        """Answer a POST."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Answer a PUT."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Answer a DELETE."""
        self._dispatch()

    def version_string(self) -> str:
        """The ``Server`` header: the stand-in's name only."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's own messages (request lines only, never headers) to logging."""
        _logger.debug("http server: %s", format % args)

    @property
    def _server(self) -> _StandInServer:
        return cast(_StandInServer, self.server)

    def _dispatch(self) -> None:
        app = self._server.app
        target = urlsplit(self.path).path
        is_control = target.startswith(CONTROL_PREFIX)
        received_at = datetime.now(UTC)
        try:
            raw_body = self._read_body()
        except _ApiError as error:
            reply = _error_reply(error, close=True)
            if not is_control:
                self._record(b"", reply.status, received_at, reply.correlation_id, None)
            self._send(reply)
            return
        if is_control:
            self._send(app._handle_control(self.command, target, raw_body))
            return
        customer = _CUSTOMER_PATH.match(target)
        plan = app._take_fault_plan(customer["customer_id"] if customer else None)
        stopping = app._stopping
        if plan.latency_seconds and stopping.wait(plan.latency_seconds):
            self._drop(raw_body, received_at, plan.kind)
            return
        if plan.action == "drop" or (plan.action in {"timeout", "hang"} and stopping.wait(plan.timeout_seconds)):
            self._drop(raw_body, received_at, plan.kind)
            return
        if plan.action == "hang":  # held past the client's timeout, then closed: nothing applied
            self._drop(raw_body, received_at, plan.kind)
            return
        if plan.action == "fail":
            reply = _fault_reply(plan)
            self._record(raw_body, reply.status, received_at, reply.correlation_id, plan.kind)
            self._send(reply)
            return
        reply = app._handle_api(self.command, target, self._headers_lowercased(), raw_body)
        applied = reply.status == HTTPStatus.OK
        if plan.action in {"applied_fail", "applied_drop"}:
            if applied:
                app._count_applied_then_failed()
            if plan.action == "applied_drop":
                self._drop(raw_body, received_at, plan.kind, applied=applied)
                return
            reply = _fault_reply(plan)
        self._record(raw_body, reply.status, received_at, reply.correlation_id, plan.kind, applied=applied)
        self._send(reply)

    def _read_body(self) -> bytes:
        """Read the whole body so the connection stays usable.

        Raises:
            _ApiError: 400 for a malformed length or chunk, 413 past ``MAX_BODY_BYTES``.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _ApiError(HTTPStatus.BAD_REQUEST, ErrorCode.MALFORMED_REQUEST, "Invalid Content-Length") from None
        if length < 0:
            raise _ApiError(HTTPStatus.BAD_REQUEST, ErrorCode.MALFORMED_REQUEST, "Invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, ErrorCode.BODY_TOO_LARGE, "Request body too large")
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes:
        """Raises: _ApiError: 400 for a malformed chunk size, 413 past ``MAX_BODY_BYTES``."""
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(_MAX_CHUNK_LINE_BYTES)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _ApiError(HTTPStatus.BAD_REQUEST, ErrorCode.MALFORMED_REQUEST, "Invalid chunk size") from None
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, ErrorCode.BODY_TOO_LARGE, "Request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(_MAX_CHUNK_LINE_BYTES)
        while self.rfile.readline(_MAX_CHUNK_LINE_BYTES) not in {b"\r\n", b"\n", b""}:
            continue
        return b"".join(chunks)

    def _headers_lowercased(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def _record(
        self,
        raw_body: bytes,
        status: int | None,
        received_at: datetime,
        correlation_id: str | None,
        fault: str | None,
        *,
        applied: bool = False,
    ) -> None:
        self._server.app._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers=MappingProxyType(self._headers_lowercased()),
                body=_parse_json_or_none(raw_body),
                status=status,
                received_at=received_at,
                correlation_id=correlation_id,
                connection_id=self._server.connection_id(self.connection),
                fault=fault,
                applied=applied,
            )
        )

    def _drop(self, raw_body: bytes, received_at: datetime, fault: str | None, *, applied: bool = False) -> None:
        """Record the request, then close the connection without answering."""
        self._record(raw_body, None, received_at, None, fault, applied=applied)
        _logger.info("request dropped method=%s path=%s", self.command, self.path)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            _logger.debug("connection already closed")

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header(CORRELATION_ID_HEADER, reply.correlation_id)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            # The client went away first (typically after its own timeout): nothing left to answer.
            _logger.info("client gone before the answer method=%s path=%s", self.command, self.path)
            self.close_connection = True
            return
        _logger.info("request answered method=%s path=%s status=%s", self.command, self.path, reply.status)


# ---------------------------------------------------------------------------------------------- the stand-in


class SphereStandIn:
    """In-memory Sphere API on loopback, observable and perturbable from tests.

    Use as a context manager (or call ``start()`` / ``stop()``); the server listens as soon as
    ``start()`` returns. All methods are thread-safe.

    Args:
        token: the bearer token accepted until ``rotate_token``.
        port: TCP port on 127.0.0.1; 0 picks a free one (read it back from ``base_url``).
        seed: start with the seeded customers (``SEED_*_ID``); ``False`` starts empty.

    Raises:
        ValueError: empty token or port out of range.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, port: int = 0, *, seed: bool = True) -> None:
        if not token:
            raise ValueError("token must not be empty")
        if not 0 <= port <= 65535:
            raise ValueError("port must be within 0..65535")
        self._initial_token = token
        self._requested_port = port
        self._lock = threading.Lock()
        self._lifecycle_lock = threading.Lock()
        self._tokens: frozenset[str] = frozenset({token})
        self._customers: dict[str, dict[str, Any]] = {}
        self._records: list[RecordedRequest] = []
        self._faults = Faults()
        self._connection_count = 0
        self._last_timestamp: datetime | None = None
        self._stopping = threading.Event()
        self._server: _StandInServer | None = None
        self._thread: threading.Thread | None = None
        if seed:
            self._seed()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind 127.0.0.1 and serve in a daemon thread; listening when this returns.

        Raises:
            RuntimeError: already running.
            OSError: the port cannot be bound.
        """
        with self._lifecycle_lock:
            if self._server is not None:
                raise RuntimeError("sphere stand-in already running")
            self._stopping = threading.Event()
            server = _StandInServer((LOOPBACK_HOST, self._requested_port), self, self._stopping)
            thread = threading.Thread(target=server.serve_until_stopped, name="sphere-standin", daemon=True)
            thread.start()
            self._server, self._thread = server, thread
        _logger.info("sphere stand-in started base_url=%s", self.base_url)

    def stop(self) -> None:
        """Stop serving: release delayed requests, close open connections, wait briefly for their threads.

        Idempotent. Requests waiting on latency or a timeout fault are dropped unanswered.
        """
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            self._server = self._thread = None
            deadline = time.monotonic() + _STOP_JOIN_SECONDS
            server.stop_serving()
            thread.join(timeout=_STOP_JOIN_SECONDS)
            server.server_close()
            for connection_thread in server.close_open_connections():
                connection_thread.join(timeout=max(0.0, deadline - time.monotonic()))
        _logger.info("sphere stand-in stopped")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """E.g. ``http://127.0.0.1:54321``.

        Raises:
            RuntimeError: not running.
        """
        server = self._server
        if server is None:
            raise RuntimeError("sphere stand-in is not running")
        return f"http://{LOOPBACK_HOST}:{server.server_address[1]}"

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

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    def patches(self, customer_id: str | None = None) -> list[RecordedRequest]:
        """The successful (200) PATCH requests, optionally only those for ``customer_id``."""
        return [
            record
            for record in self.requests
            if record.method == "PATCH"
            and record.status == HTTPStatus.OK
            and (customer_id is None or record.customer_id == customer_id)
        ]

    def clear_requests(self) -> None:
        """Forget the recorded requests and the fault counts."""
        with self._lock:
            self._records.clear()
            self._faults.counts.clear()

    @property
    def connection_count(self) -> int:
        """TCP connections accepted since construction (across restarts)."""
        with self._lock:
            return self._connection_count

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
        count = require_count(n, "n")
        status = require_status(status, "status")
        with self._lock:
            self._faults.fail_count = count
            self._faults.fail_status = status
            self._faults.fail_retry_after = None if retry_after is None else str(retry_after)
            self._faults.fail_body = copy.deepcopy(body)
            self._faults.fail_customer = customer_id

    def set_latency(self, seconds: float) -> None:
        """Delay every API request by ``seconds`` before answering (0 turns it off).

        Raises:
            ValueError: negative or non-finite ``seconds``.
        """
        latency = require_seconds(seconds, "seconds", allow_zero=True)
        with self._lock:
            self._faults.latency_seconds = latency

    def timeout_next(self, n: int, seconds: float) -> None:
        """Hold each of the next ``n`` API requests ``seconds`` before processing them normally.

        Use a client timeout shorter than ``seconds`` to provoke a read timeout. ``stop()`` releases
        held requests at once; they are then dropped unanswered.

        Raises:
            ValueError: ``n`` < 0 or ``seconds`` not > 0.
        """
        count = require_count(n, "n")
        hold = require_seconds(seconds, "seconds", allow_zero=False)
        with self._lock:
            self._faults.timeout_count = count
            self._faults.timeout_seconds = hold

    def drop_next(self, n: int) -> None:
        """Close the connection of each of the next ``n`` API requests without answering.

        Raises:
            ValueError: ``n`` < 0.
        """
        count = require_count(n, "n")
        with self._lock:
            self._faults.drop_count = count

    def apply_then_fail_next(self, n: int, status: int = HTTPStatus.BAD_GATEWAY) -> None:
        """Process each of the next ``n`` API requests (applying a valid update), then answer ``status`` instead.

        What a gateway timing out in front of Sphere does: the change is made, the client sees a failure.

        Raises:
            ValueError: ``n`` < 0 or ``status`` outside 400..599.
        """
        count = require_count(n, "n")
        status = require_status(status, "status")
        with self._lock:
            self._faults.applied_fail_count = count
            self._faults.applied_fail_status = status

    def apply_then_drop_next(self, n: int) -> None:
        """Process each of the next ``n`` API requests (applying a valid update), then close without answering.

        Raises:
            ValueError: ``n`` < 0.
        """
        count = require_count(n, "n")
        with self._lock:
            self._faults.applied_drop_count = count

    def set_failure_rate(
        self,
        rate: float,
        *,
        seed: int = 0,
        kinds: Iterable[FaultKind | str] = DEFAULT_RANDOM_KINDS,
        retry_after: int | str | None = 1,
        timeout_seconds: float = 1.0,
    ) -> None:
        """Fail a seeded random share ``rate`` of the API requests with transient faults (0 turns it off).

        Each failing request gets one of ``kinds``, equally likely: 429 (with ``retry_after``), 500,
        502, 503, ``timeout`` (held ``timeout_seconds``, then closed unanswered), ``drop``, and the
        applied-then-failed pair ``applied-then-502`` and ``applied-then-drop``. Counted faults
        (``fail_next`` and the like) go first. The draws restart from ``seed``.

        Raises:
            ValueError: ``rate`` outside 0..1, an unknown kind, or ``timeout_seconds`` not > 0.
        """
        settings = RandomFaults.checked(
            rate, seed=seed, kinds=kinds, retry_after=retry_after, timeout_seconds=timeout_seconds
        )
        with self._lock:
            self._faults.set_random(settings)

    @property
    def pending_faults(self) -> dict[str, Any]:
        """The fault instructions in force and the counts, as ``GET /_standin/faults`` shows them."""
        with self._lock:
            return self._faults.to_json()

    @property
    def fault_counts(self) -> dict[str, int]:
        """Faults injected so far by kind, and ``applied-then-failed``: the failed answers whose update was applied."""
        with self._lock:
            return dict(self._faults.counts)

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

    def reset_faults(self) -> None:
        """Clear every pending fault, the random rate and latency, and accept the construction token again.

        The fault counts stay (``clear_requests`` clears them with the request log).
        """
        with self._lock:
            self._faults = Faults(counts=self._faults.counts)
            self._tokens = frozenset({self._initial_token})

    # -- internals used by the HTTP plumbing ----------------------------------------------------

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
        return _format_timestamp(now)

    def _count_connection(self) -> int:
        with self._lock:
            self._connection_count += 1
            return self._connection_count

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def _take_fault_plan(self, customer_id: str | None) -> FaultPlan:
        """Consume (and count) the fault for one API request (for ``customer_id``, when its path names one)."""
        with self._lock:
            return self._faults.take_plan(customer_id)

    def _count_applied_then_failed(self) -> None:
        with self._lock:
            self._faults.counts[APPLIED_THEN_FAILED] += 1

    def _is_authorized(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        with self._lock:
            tokens = self._tokens
        presented = token.strip().encode()
        return any(hmac.compare_digest(presented, valid.encode()) for valid in tokens)

    def _handle_api(self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> _Reply:
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

    def _update_customer(self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> _Reply:
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
        if _media_type(headers.get("content-type")) != _JSON_MEDIA_TYPE:
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

    def _handle_control(self, method: str, target: str, raw_body: bytes) -> _Reply:
        """Answer a ``/_standin/`` control request (never recorded, never faulted)."""
        try:
            return self._control(method, target, raw_body)
        except _ApiError as error:
            return _error_reply(error)
        except (TypeError, ValueError) as error:
            return _error_reply(_ApiError(HTTPStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, str(error)))

    def _control(self, method: str, target: str, raw_body: bytes) -> _Reply:
        """Raises: _ApiError: unknown endpoint or customer; TypeError, ValueError: malformed control body."""
        routes: dict[tuple[str, str], Callable[[], _Reply]] = {
            ("GET", "/_standin/requests"): lambda: _json_reply(
                HTTPStatus.OK, [record.to_json() for record in self.requests]
            ),
            ("DELETE", "/_standin/requests"): self._control_clear_requests,
            ("GET", "/_standin/connections"): lambda: _json_reply(HTTPStatus.OK, {"count": self.connection_count}),
            ("GET", "/_standin/faults"): self._control_faults,
            ("POST", "/_standin/faults"): lambda: self._control_set_faults(_control_body(raw_body)),
            ("POST", "/_standin/customers"): lambda: self._control_add_customer(_control_body(raw_body)),
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

    def _control_clear_requests(self) -> _Reply:
        self.clear_requests()
        return _json_reply(HTTPStatus.OK, {"cleared": True})

    def _set_random(self, settings: RandomFaults | None) -> None:
        with self._lock:
            self._faults.set_random(settings)

    def _control_faults(self) -> _Reply:
        return _json_reply(HTTPStatus.OK, self.pending_faults)

    def _control_set_faults(self, spec: Mapping[str, Any]) -> _Reply:
        """Apply ``{"reset", "fail", "latency", "drop", "timeout", "appliedThenFail", "appliedThenDrop", "random",
        "rotateToken"}``; all checked before any applies.

        Raises:
            ValueError, TypeError: unknown key or malformed value.
        """
        unknown = sorted(set(spec) - _FAULT_KEYS)
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(unknown)}")
        actions: list[Callable[[], None]] = []
        if spec.get("reset") is True:
            actions.append(self.reset_faults)
        elif "reset" in spec and spec["reset"] is not False:
            raise ValueError("reset must be a boolean")
        if "fail" in spec:
            actions.append(_fail_action(self, spec["fail"]))
        if "latency" in spec:
            latency = require_seconds(spec["latency"], "latency", allow_zero=True)
            actions.append(lambda: self.set_latency(latency))
        if "drop" in spec:
            drops = require_count(spec["drop"], "drop")
            actions.append(lambda: self.drop_next(drops))
        actions += self._chaos_actions(spec)
        if "timeout" in spec:
            actions.append(_timeout_action(self, spec["timeout"]))
        if "rotateToken" in spec:
            new_token = spec["rotateToken"]
            if not isinstance(new_token, str) or not new_token:
                raise ValueError("rotateToken must be a non-empty string")
            actions.append(lambda: self.rotate_token(new_token))
        for action in actions:
            action()
        return self._control_faults()

    def _chaos_actions(self, spec: Mapping[str, Any]) -> list[Callable[[], None]]:
        """The ``appliedThenFail``, ``appliedThenDrop`` and ``random`` parts of a fault instruction.

        Raises:
            ValueError, TypeError: a malformed value.
        """
        actions: list[Callable[[], None]] = []
        if "appliedThenFail" in spec:
            actions.append(_applied_then_fail_action(self, spec["appliedThenFail"]))
        if "appliedThenDrop" in spec:
            applied_drops = require_count(spec["appliedThenDrop"], "appliedThenDrop")
            actions.append(lambda: self.apply_then_drop_next(applied_drops))
        if "random" in spec:
            settings = None if spec["random"] is None else RandomFaults.from_json(spec["random"])
            actions.append(lambda: self._set_random(settings))
        return actions

    def _control_add_customer(self, spec: Mapping[str, Any]) -> _Reply:
        """Raises: TypeError: id or type not a string; ValueError: malformed id, type or fields."""
        fields = dict(spec)
        customer_id = fields.pop("id", None)
        customer_type = fields.pop("type", "individual")
        if not isinstance(customer_id, str) or not isinstance(customer_type, str):
            raise TypeError("id and type must be strings")
        return _json_reply(HTTPStatus.CREATED, self.add_customer(customer_id, customer_type, **fields))


def _control_body(raw_body: bytes) -> dict[str, Any]:
    """Raises: ValueError: not JSON; TypeError: JSON but not an object."""
    try:
        body = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("control body must be a JSON object") from None
    if not isinstance(body, dict):
        raise TypeError("control body must be a JSON object")
    return body


def _fail_action(standin: SphereStandIn, spec: Any) -> Callable[[], None]:
    """Raises: ValueError: ``spec`` is not ``{"count", "status", "retryAfter"?, "body"?}``."""
    if not isinstance(spec, dict) or not {"count", "status"} <= set(spec) <= {"count", "status", "retryAfter", "body"}:
        raise ValueError('fail must be {"count": int, "status": int, "retryAfter"?: int|str, "body"?: str|object}')
    count = require_count(spec["count"], "fail.count")
    status = require_status(spec["status"], "fail.status")
    retry_after = spec.get("retryAfter")
    if retry_after is not None and (isinstance(retry_after, bool) or not isinstance(retry_after, int | str)):
        raise ValueError("fail.retryAfter must be an integer or a string")
    body = spec.get("body")
    if body is not None and not isinstance(body, str | dict):
        raise ValueError("fail.body must be a string or an object")
    return lambda: standin.fail_next(count, status, retry_after, body)


def _timeout_action(standin: SphereStandIn, spec: Any) -> Callable[[], None]:
    """Raises: ValueError: ``spec`` is not ``{"count", "seconds"}``."""
    if not isinstance(spec, dict) or set(spec) != {"count", "seconds"}:
        raise ValueError('timeout must be {"count": int, "seconds": number}')
    count = require_count(spec["count"], "timeout.count")
    seconds = require_seconds(spec["seconds"], "timeout.seconds", allow_zero=False)
    return lambda: standin.timeout_next(count, seconds)


def _applied_then_fail_action(standin: SphereStandIn, spec: Any) -> Callable[[], None]:
    """Raises: ValueError: ``spec`` is not ``{"count", "status"?}``."""
    if not isinstance(spec, dict) or not {"count"} <= set(spec) <= {"count", "status"}:
        raise ValueError('appliedThenFail must be {"count": int, "status"?: int}')
    count = require_count(spec["count"], "appliedThenFail.count")
    status = require_status(spec.get("status", HTTPStatus.BAD_GATEWAY), "appliedThenFail.status")
    return lambda: standin.apply_then_fail_next(count, status)


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

    stop_requested = threading.Event()

    def _on_stop_signal(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()  # only this: logging from a signal handler could deadlock on its lock

    # Installed explicitly: a shell starting us in the background would otherwise leave SIGINT ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _on_stop_signal)
    with SphereStandIn(token=args.token, port=args.port) as standin:
        _logger.info("sphere stand-in listening base_url=%s (Ctrl-C to stop)", standin.base_url)
        stop_requested.wait()
        _logger.info("sphere stand-in stopping on signal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
