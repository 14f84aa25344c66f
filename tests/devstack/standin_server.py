"""What every loopback stand-in shares: the HTTP server, the request cycle with faults, the fault controls.

A stand-in (``devstack.sphere_standin``, ``devstack.crm_standin``) subclasses ``LoopbackStandIn`` and
only says how to answer a request, how to answer a fault or a malformed body in its vendor's format,
and how to record a request. The server reads each request fully, takes the fault plan from
``devstack.sphere_faults`` (latency, drop, hold, fail, apply-then-fail, apply-then-drop, a seeded
random rate), asks the stand-in for the answer and records the exchange just before writing it, so a
client that got its answer finds the record. ``/_standin/`` requests are the stand-in's own controls:
never faulted, never recorded.
"""

from __future__ import annotations

import copy
import json
import logging
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, ClassVar, Final, Self, cast
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
    "CONTROL_PREFIX",
    "JSON_MEDIA_TYPE",
    "LOOPBACK_HOST",
    "MAX_BODY_BYTES",
    "ApiRequest",
    "BodyError",
    "Exchange",
    "LoopbackStandIn",
    "Reply",
    "control_body",
    "fault_control_actions",
    "format_timestamp",
    "json_bytes",
    "parse_json_or_none",
    "serve_until_signal",
]

_logger = logging.getLogger(__name__)

LOOPBACK_HOST: Final = "127.0.0.1"
"""The only interface a stand-in ever binds."""

CONTROL_PREFIX: Final = "/_standin/"
"""Path prefix of the out-of-process control endpoints."""

MAX_BODY_BYTES: Final = 1024 * 1024
"""Largest request body read; larger ones are answered 413 and the connection closed."""

JSON_MEDIA_TYPE: Final = "application/json"

_MAX_CHUNK_LINE_BYTES: Final = 1024
"""Longest chunk-size or trailer line accepted in a chunked body."""

_STOP_JOIN_SECONDS: Final = 2.0
"""Upper bound on the time ``stop()`` waits for connection threads to finish."""

FAULT_KEYS: Final = frozenset(
    {"fail", "latency", "drop", "timeout", "appliedThenFail", "appliedThenDrop", "random", "rotateToken", "reset"}
)
"""The keys a ``POST /_standin/faults`` body may carry."""


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer ready to be written.

    ``correlation_id`` is recorded with the request and, when the stand-in names a
    ``correlation_header``, sent in it.
    """

    status: int
    body: bytes
    correlation_id: str | None = None
    content_type: str = JSON_MEDIA_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One API request, read in full: what a stand-in answers."""

    method: str
    path: str
    """The path without the query string."""
    query: str
    """The raw query string (``""`` when none)."""
    headers: Mapping[str, str]
    """Header names lower-cased; repeated headers joined with ``, ``."""
    raw_body: bytes


@dataclass(frozen=True, slots=True)
class Exchange:
    """One API request and what became of it, handed to the stand-in to record."""

    method: str
    target: str
    """The request target as sent, query string included."""
    headers: Mapping[str, str]
    raw_body: bytes
    status: int | None
    """Status answered; ``None`` when the connection was closed without an answer."""
    received_at: datetime
    correlation_id: str | None
    connection_id: int
    fault: str | None
    applied: bool


class BodyError(Exception):
    """A body that cannot be read: a malformed length or chunk (400), or one too large (413)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, e.g. ``2025-01-31T12:00:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_bytes(payload: Any) -> bytes:
    """Compact JSON, as the vendors send it."""
    return json.dumps(payload, separators=(",", ":")).encode()


def parse_json_or_none(raw_body: bytes) -> Any:
    """The body parsed as JSON, ``None`` when empty or not JSON (used for recording)."""
    if not raw_body:
        return None
    try:
        return json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def control_body(raw_body: bytes) -> dict[str, Any]:
    """A control request's JSON object.

    Raises:
        ValueError: not JSON.
        TypeError: JSON but not an object.
    """
    try:
        body = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("control body must be a JSON object") from None
    if not isinstance(body, dict):
        raise TypeError("control body must be a JSON object")
    return body


# ---------------------------------------------------------------------------------------------- the base


class LoopbackStandIn[RecordT]:
    """A vendor API on 127.0.0.1 with records of every request and injectable faults.

    Subclasses implement ``_answer``, ``_answer_control``, ``_fault_reply``, ``_body_error_reply``,
    ``_make_record`` and ``_reset_tokens``, and may narrow ``_fault_key``. All public methods are
    thread-safe; use as a context manager or call ``start()`` / ``stop()``.

    Args:
        port: TCP port on 127.0.0.1; 0 picks a free one (read it back from ``base_url``).

    Raises:
        ValueError: port out of range.
    """

    name: ClassVar[str] = "stand-in"
    """Used in thread names and log lines."""
    server_version: ClassVar[str] = "StandIn/1.0"
    """The ``Server`` header."""
    correlation_header: ClassVar[str | None] = None
    """Response header carrying each reply's correlation id, if the vendor sends one on every answer."""

    def __init__(self, port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise ValueError("port must be within 0..65535")
        self._requested_port = port
        self._lock = threading.Lock()
        self._lifecycle_lock = threading.Lock()
        self._records: list[RecordT] = []
        self._faults = Faults()
        self._connection_count = 0
        self._stopping = threading.Event()
        self._server: _StandInServer | None = None
        self._thread: threading.Thread | None = None

    # -- what a stand-in says -------------------------------------------------------------------

    def _answer(self, request: ApiRequest) -> Reply:
        """Answer one API request (faults already applied)."""
        raise NotImplementedError

    def _answer_control(self, method: str, path: str, raw_body: bytes) -> Reply:
        """Answer a ``/_standin/`` control request."""
        raise NotImplementedError

    def _fault_reply(self, plan: FaultPlan, path: str) -> Reply:
        """The answer of an injected failure (``plan.fail_status``, ``fail_retry_after``, ``fail_body``) on ``path``."""
        raise NotImplementedError

    def _body_error_reply(self, error: BodyError) -> Reply:
        """The answer to a body that could not be read (the connection is closed after it)."""
        raise NotImplementedError

    def _make_record(self, exchange: Exchange) -> RecordT:
        """The stand-in's record of one exchange."""
        raise NotImplementedError

    def _reset_tokens(self) -> None:
        """Accept the construction tokens again; called with the lock held."""
        raise NotImplementedError

    def _fault_key(self, path: str) -> str | None:
        """What a counted failure limited to one key (``fail_next(..., key)``) matches this request on."""
        return None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind 127.0.0.1 and serve in a daemon thread; listening when this returns.

        Raises:
            RuntimeError: already running.
            OSError: the port cannot be bound.
        """
        with self._lifecycle_lock:
            if self._server is not None:
                raise RuntimeError(f"{self.name} already running")
            self._stopping = threading.Event()
            server = _StandInServer((LOOPBACK_HOST, self._requested_port), self, self._stopping)
            thread = threading.Thread(target=server.serve_until_stopped, name=self.name, daemon=True)
            thread.start()
            self._server, self._thread = server, thread
        _logger.info("%s started base_url=%s", self.name, self.base_url)

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
        _logger.info("%s stopped", self.name)

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
            raise RuntimeError(f"{self.name} is not running")
        return f"http://{LOOPBACK_HOST}:{server.server_address[1]}"

    # -- observation ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordT]:
        """Every API request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

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

    def _set_fail(
        self,
        n: int,
        status: int,
        retry_after: int | str | None,
        body: str | Mapping[str, Any] | None,
        key: str | None,
    ) -> None:
        """Answer the next ``n`` API requests (matching ``key``, when given) with ``status``.

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
            self._faults.fail_customer = key

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

        What a gateway timing out in front of the API does: the change is made, the client sees a failure.

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
        self._set_random(settings)

    def _set_random(self, settings: RandomFaults | None) -> None:
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

    def reset_faults(self) -> None:
        """Clear every pending fault, the random rate and latency, and accept the construction tokens again.

        The fault counts stay (``clear_requests`` clears them with the request log).
        """
        with self._lock:
            self._faults = Faults(counts=self._faults.counts)
            self._reset_tokens()

    # -- used by the HTTP plumbing ----------------------------------------------------------------

    def _count_connection(self) -> int:
        with self._lock:
            self._connection_count += 1
            return self._connection_count

    def _record(self, exchange: Exchange) -> None:
        record = self._make_record(exchange)
        with self._lock:
            self._records.append(record)

    def _take_fault_plan(self, key: str | None) -> FaultPlan:
        """Consume (and count) the fault for one API request."""
        with self._lock:
            return self._faults.take_plan(key)

    def _count_applied_then_failed(self) -> None:
        with self._lock:
            self._faults.counts[APPLIED_THEN_FAILED] += 1


# ---------------------------------------------------------------------------------------------- control bodies


def fault_control_actions(
    standin: LoopbackStandIn[Any],
    spec: Mapping[str, Any],
    *,
    fail: Callable[[int, int, int | str | None, str | Mapping[str, Any] | None], None],
    rotate_token: Callable[[Any], Callable[[], None]],
) -> list[Callable[[], None]]:
    """The actions of a ``POST /_standin/faults`` body, all checked before any is run.

    ``{"reset", "fail", "latency", "drop", "timeout", "appliedThenFail", "appliedThenDrop", "random",
    "rotateToken"}``; ``fail`` and ``rotate_token`` are the stand-in's own (their arguments differ).

    Raises:
        ValueError, TypeError: unknown key or malformed value.
    """
    unknown = sorted(set(spec) - FAULT_KEYS)
    if unknown:
        raise ValueError(f"unknown fault keys: {', '.join(unknown)}")
    actions: list[Callable[[], None]] = []
    if spec.get("reset") is True:
        actions.append(standin.reset_faults)
    elif "reset" in spec and spec["reset"] is not False:
        raise ValueError("reset must be a boolean")
    if "fail" in spec:
        actions.append(_fail_action(fail, spec["fail"]))
    if "latency" in spec:
        latency = require_seconds(spec["latency"], "latency", allow_zero=True)
        actions.append(lambda: standin.set_latency(latency))
    if "drop" in spec:
        drops = require_count(spec["drop"], "drop")
        actions.append(lambda: standin.drop_next(drops))
    actions += _chaos_actions(standin, spec)
    if "timeout" in spec:
        actions.append(_timeout_action(standin, spec["timeout"]))
    if "rotateToken" in spec:
        actions.append(rotate_token(spec["rotateToken"]))
    return actions


def _chaos_actions(standin: LoopbackStandIn[Any], spec: Mapping[str, Any]) -> list[Callable[[], None]]:
    """The ``appliedThenFail``, ``appliedThenDrop`` and ``random`` parts of a fault instruction.

    Raises:
        ValueError, TypeError: a malformed value.
    """
    actions: list[Callable[[], None]] = []
    if "appliedThenFail" in spec:
        actions.append(_applied_then_fail_action(standin, spec["appliedThenFail"]))
    if "appliedThenDrop" in spec:
        applied_drops = require_count(spec["appliedThenDrop"], "appliedThenDrop")
        actions.append(lambda: standin.apply_then_drop_next(applied_drops))
    if "random" in spec:
        settings = None if spec["random"] is None else RandomFaults.from_json(spec["random"])
        actions.append(lambda: standin._set_random(settings))
    return actions


def _fail_action(
    fail: Callable[[int, int, int | str | None, str | Mapping[str, Any] | None], None], spec: Any
) -> Callable[[], None]:
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
    return lambda: fail(count, status, retry_after, body)


def _timeout_action(standin: LoopbackStandIn[Any], spec: Any) -> Callable[[], None]:
    """Raises: ValueError: ``spec`` is not ``{"count", "seconds"}``."""
    if not isinstance(spec, dict) or set(spec) != {"count", "seconds"}:
        raise ValueError('timeout must be {"count": int, "seconds": number}')
    count = require_count(spec["count"], "timeout.count")
    seconds = require_seconds(spec["seconds"], "timeout.seconds", allow_zero=False)
    return lambda: standin.timeout_next(count, seconds)


def _applied_then_fail_action(standin: LoopbackStandIn[Any], spec: Any) -> Callable[[], None]:
    """Raises: ValueError: ``spec`` is not ``{"count", "status"?}``."""
    if not isinstance(spec, dict) or not {"count"} <= set(spec) <= {"count", "status"}:
        raise ValueError('appliedThenFail must be {"count": int, "status"?: int}')
    count = require_count(spec["count"], "appliedThenFail.count")
    status = require_status(spec.get("status", HTTPStatus.BAD_GATEWAY), "appliedThenFail.status")
    return lambda: standin.apply_then_fail_next(count, status)


# ---------------------------------------------------------------------------------------------- standalone


def serve_until_signal(standin: LoopbackStandIn[Any]) -> None:
    """Serve ``standin`` until Ctrl-C or SIGTERM (a standalone ``main``'s loop)."""
    stop_requested = threading.Event()

    def _on_stop_signal(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()  # only this: logging from a signal handler could deadlock on its lock

    # Installed explicitly: a shell starting us in the background would otherwise leave SIGINT ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _on_stop_signal)
    with standin:
        _logger.info("%s listening base_url=%s (Ctrl-C to stop)", standin.name, standin.base_url)
        stop_requested.wait()
        _logger.info("%s stopping on signal", standin.name)


# ---------------------------------------------------------------------------------------------- HTTP plumbing


class _StandInServer(ThreadingHTTPServer):
    """Threading HTTP server that counts connections, stops without polling and closes open connections."""

    daemon_threads = True
    timeout = 0  # handle_request() accepts the pending connection and returns at once

    def __init__(self, address: tuple[str, int], app: LoopbackStandIn[Any], stopping: threading.Event) -> None:
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
            name=f"{self.app.name}-connection-{connection_id}",
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
        _logger.exception("%s connection handler failed", self.app.name)


class _StandInHandler(BaseHTTPRequestHandler):
    """Reads each request fully, applies faults, and lets the stand-in answer it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

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
        return self._server.app.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's own messages (request lines only, never headers) to logging."""
        _logger.debug("http server: %s", format % args)

    @property
    def _server(self) -> _StandInServer:
        return cast(_StandInServer, self.server)

    def _dispatch(self) -> None:
        app = self._server.app
        split = urlsplit(self.path)
        is_control = split.path.startswith(CONTROL_PREFIX)
        received_at = datetime.now(UTC)
        try:
            raw_body = self._read_body()
        except BodyError as error:
            reply = app._body_error_reply(error)
            if not is_control:
                self._record(b"", reply.status, received_at, reply.correlation_id, None)
            self._send(reply, close=True)
            return
        if is_control:
            self._send(app._answer_control(self.command, split.path, raw_body))
            return
        plan = app._take_fault_plan(app._fault_key(split.path))
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
            reply = app._fault_reply(plan, split.path)
            self._record(raw_body, reply.status, received_at, reply.correlation_id, plan.kind)
            self._send(reply)
            return
        request = ApiRequest(self.command, split.path, split.query, self._headers_lowercased(), raw_body)
        reply = app._answer(request)
        applied = reply.status == HTTPStatus.OK
        if plan.action in {"applied_fail", "applied_drop"}:
            if applied:
                app._count_applied_then_failed()
            if plan.action == "applied_drop":
                self._drop(raw_body, received_at, plan.kind, applied=applied)
                return
            reply = app._fault_reply(plan, split.path)
        self._record(raw_body, reply.status, received_at, reply.correlation_id, plan.kind, applied=applied)
        self._send(reply)

    def _read_body(self) -> bytes:
        """Read the whole body so the connection stays usable.

        Raises:
            BodyError: 400 for a malformed length or chunk, 413 past ``MAX_BODY_BYTES``.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise BodyError(HTTPStatus.BAD_REQUEST, "Invalid Content-Length") from None
        if length < 0:
            raise BodyError(HTTPStatus.BAD_REQUEST, "Invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes:
        """Raises: BodyError: 400 for a malformed chunk size, 413 past ``MAX_BODY_BYTES``."""
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(_MAX_CHUNK_LINE_BYTES)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BodyError(HTTPStatus.BAD_REQUEST, "Invalid chunk size") from None
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
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
            Exchange(
                method=self.command,
                target=self.path,
                headers=self._headers_lowercased(),
                raw_body=raw_body,
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
        _logger.info("request dropped method=%s path=%s", self.command, urlsplit(self.path).path)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            _logger.debug("connection already closed")

    def _send(self, reply: Reply, *, close: bool = False) -> None:
        path = urlsplit(self.path).path  # never the query: it may carry an API token
        correlation_header = self._server.app.correlation_header
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            if correlation_header is not None and reply.correlation_id is not None:
                self.send_header(correlation_header, reply.correlation_id)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.close or close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            # The client went away first (typically after its own timeout): nothing left to answer.
            _logger.info("client gone before the answer method=%s path=%s", self.command, path)
            self.close_connection = True
            return
        _logger.info("request answered method=%s path=%s status=%s", self.command, path, reply.status)
