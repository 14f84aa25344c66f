"""AWS faults for the handlers, and the SQS event source mapping on a clock that never waits.

``AwsFaults`` wraps botocore's ``BaseClient._make_api_call`` — the one door every boto3 call goes
through, Powertools' own Secrets Manager client included — while the handlers run. It records every
AWS call each function makes (function, service, operation, occurrence, parameters, invocation) and
can make one chosen call fail. Only calls made while a wrapped handler runs are recorded or faulted:
the test's own reads, and the event source mapping's receive and delete, pass untouched. The
running function is a plain attribute, not a context variable, because the adapter's own worker
threads (parallel writes) run inside the handler and their calls are its calls.

An injected fault replaces the call as the SDK finally reports it, after botocore's own retries:
a ``ClientError`` (throttled, server error) or an ``EndpointConnectionError``, with no effect in
AWS; or ``ANSWER_LOST``, where the call takes effect and a ``ReadTimeoutError`` hides it.

``EventSourceMapping`` plays Lambda's SQS trigger with ``ReportBatchItemFailures``: receive a batch,
invoke the deliver handler, delete what succeeded. Time is virtual: when nothing is visible it jumps
to the next message due — after the visibility timeout the adapter set on it (its backoff), else
after the queue's own — and makes it visible, so a 180-second timeout costs nothing, and every
message that waited for the queue's timeout instead of a backoff of the adapter's is on record.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from devstack.lambda_events import LambdaContext, sqs_event, sqs_record

if TYPE_CHECKING:
    from types import TracebackType

    from mypy_boto3_sqs import SQSClient

__all__ = ["Attempt", "AwsCall", "AwsFaults", "EventSourceMapping", "FaultKind", "RecordedCall", "is_read"]

type Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_READ_PREFIXES = ("Get", "BatchGet", "Query", "Scan", "Describe", "List", "Receive")
_ERROR_CODES = {
    ("dynamodb", "throttled"): ("ProvisionedThroughputExceededException", 400),
    ("dynamodb", "server_error"): ("InternalServerError", 500),
    ("sqs", "throttled"): ("RequestThrottled", 400),
    ("sqs", "server_error"): ("InternalFailure", 500),
    ("secretsmanager", "throttled"): ("ThrottlingException", 400),
    ("secretsmanager", "server_error"): ("InternalServiceError", 500),
}
_DEFAULT_ERROR_CODES = {"throttled": ("ThrottlingException", 400), "server_error": ("InternalFailure", 500)}
_HANG_GUARD_SECONDS = 30.0
"""Only a guard against a bug of this harness: a drain never waits for a visibility timeout."""


def is_read(operation: str) -> bool:
    """Whether an operation only reads (losing its answer then is the same as it failing)."""
    return operation.startswith(_READ_PREFIXES)


class FaultKind(StrEnum):
    """How an AWS call fails, as the adapter's SDK finally reports it."""

    THROTTLED = "throttled"
    """``ClientError``: ``ProvisionedThroughputExceededException``, ``RequestThrottled``, ``ThrottlingException``."""
    SERVER_ERROR = "server_error"
    """``ClientError``: ``InternalServerError``, ``InternalFailure``, ``InternalServiceError``."""
    UNREACHABLE = "unreachable"
    """``EndpointConnectionError``: the request never left."""
    ANSWER_LOST = "answer_lost"
    """The call takes effect in AWS, then ``ReadTimeoutError``: the caller cannot know it did."""

    @property
    def reaches_aws(self) -> bool:
        """Whether the call took effect before the error."""
        return self is FaultKind.ANSWER_LOST

    def error(self, service: str, operation: str) -> Exception:
        """The exception botocore raises for this failure of ``service``'s ``operation``."""
        endpoint = f"https://{service}.us-east-1.amazonaws.com/"
        if self is FaultKind.UNREACHABLE:
            return EndpointConnectionError(endpoint_url=endpoint)
        if self is FaultKind.ANSWER_LOST:
            return ReadTimeoutError(endpoint_url=endpoint)
        code, status = _ERROR_CODES.get((service, str(self)), _DEFAULT_ERROR_CODES[str(self)])
        response: Any = {
            "Error": {"Code": code, "Message": f"injected: {self}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return ClientError(response, operation)


@dataclass(frozen=True, slots=True)
class AwsCall:
    """One AWS call of a function: its service, its operation, and which of them it is (from 1)."""

    function: str
    service: str
    operation: str
    occurrence: int

    def __str__(self) -> str:
        return f"{self.function}:{self.service}:{self.operation}#{self.occurrence}"


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A call as it was made: in which handler invocation, with which parameters, and the fault it got."""

    call: AwsCall
    invocation: int
    params: dict[str, Any]
    fault: FaultKind | None = None

    @property
    def took_effect(self) -> bool:
        """Whether AWS applied it (no fault, or a fault that only lost the answer)."""
        return self.fault is None or self.fault.reaches_aws


class AwsFaults:
    """Records every AWS call the wrapped handlers make, and fails the one call it is told to.

    A context manager: botocore is patched inside the ``with`` block only.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._function: str | None = None
        self._invocations = 0
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._planned: tuple[AwsCall, FaultKind] | None = None
        self._original: Any = None
        self._calls: list[RecordedCall] = []

    def __enter__(self) -> Self:
        self._original = original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private, untyped

        def make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            return self._call(client, operation, params, original)

        BaseClient._make_api_call = make_api_call  # type: ignore[attr-defined]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        BaseClient._make_api_call = self._original  # type: ignore[attr-defined]

    def wrap(self, function: str, handler: Handler) -> Handler:
        """``handler``, with the AWS calls it makes recorded (and faulted) as ``function``'s."""

        def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self._function = function
            self._invocations += 1
            try:
                return handler(event, context)
            finally:
                self._function = None

        return invoke

    def inject(self, call: AwsCall, kind: FaultKind) -> None:
        """Make ``call`` (that occurrence of that operation by that function) fail as ``kind``, once."""
        self._planned = (call, kind)

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call recorded so far, in order."""
        with self._lock:
            return list(self._calls)

    @property
    def fired(self) -> RecordedCall | None:
        """The call the injected fault hit, once it has."""
        return next((recorded for recorded in self.calls if recorded.fault is not None), None)

    def mark(self) -> int:
        """A position in the record, for ``since``."""
        with self._lock:
            return len(self._calls)

    def since(self, mark: int) -> list[RecordedCall]:
        """The calls recorded after ``mark``."""
        with self._lock:
            return self._calls[mark:]

    def _call(self, client: BaseClient, operation: str, params: dict[str, Any], original: Any) -> Any:
        function = self._function
        if function is None:  # the test, or the event source mapping: not the adapter's code
            return original(client, operation, params)
        service = client.meta.service_model.service_name
        with self._lock:
            self._counts[(function, service, operation)] += 1
            call = AwsCall(function, service, operation, self._counts[(function, service, operation)])
            fault = None
            if self._planned is not None and self._planned[0] == call:
                fault, self._planned = self._planned[1], None
            self._calls.append(RecordedCall(call, self._invocations, params, fault))
        if fault is None:
            return original(client, operation, params)
        if fault.reaches_aws:
            original(client, operation, params)
        raise fault.error(service, operation)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One message in one batch: whether the handler reported it failed, and the visibility it gave it."""

    batch: int
    message_id: str
    group_id: str
    receive_count: int
    failed: bool
    visibility_asked: int | None
    """The visibility timeout the adapter asked for this message (its backoff); ``None``: it asked none."""
    visibility_set: bool
    """Whether SQS took that request."""


class EventSourceMapping:
    """Lambda's SQS trigger (``ReportBatchItemFailures``) on a virtual clock; see the module docstring."""

    def __init__(self, sqs: SQSClient, queue_url: str, handler: Handler, faults: AwsFaults, *, batch_size: int = 10):
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._faults = faults
        self._batch_size = batch_size
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"])
        self._queue_arn = attributes["Attributes"]["QueueArn"]
        self._visibility_timeout = int(attributes["Attributes"]["VisibilityTimeout"])
        self._in_flight: dict[str, tuple[str, int]] = {}
        """Message id → (receipt handle, virtual second it becomes visible again)."""
        self.clock = 0
        """Virtual seconds since the first receive."""
        self.attempts: list[Attempt] = []
        self.batches = 0
        self.deleted_in: list[int] = []
        """The batches whose successes were deleted."""
        self.lost_deletes: list[str] = []
        """Messages delivered whose delete never happened (they come back after the queue's timeout)."""

    @property
    def waited_for_queue_timeout(self) -> list[Attempt]:
        """Failed attempts the adapter gave no visibility of its own: they come back after the queue's timeout."""
        return [attempt for attempt in self.attempts if attempt.failed and attempt.visibility_asked is None]

    def drain(self, *, lose_delete_of_batches: Collection[int] = (), max_batches: int = 100) -> None:
        """Deliver until the queue is empty, losing the deletes of the batches numbered in ``lose_delete_of_batches``.

        Raises:
            RuntimeError: still not drained after ``max_batches`` batches (a message that never settles).
        """
        guard = time.monotonic() + _HANG_GUARD_SECONDS
        while time.monotonic() < guard:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch_size,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if messages:
                if self.batches >= max_batches:
                    raise RuntimeError(f"the queue did not drain in {max_batches} batches")
                self._deliver(messages, lose_delete=self.batches + 1 in lose_delete_of_batches)
            elif self._in_flight:
                self._advance_clock()
            elif not self._queued():
                return
        raise RuntimeError("the drain hung: messages neither visible nor in flight")

    def _queued(self) -> int:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=names)  # type: ignore[arg-type]
        return sum(int(value) for value in attributes["Attributes"].values())

    def _deliver(self, messages: list[Any], *, lose_delete: bool) -> None:
        self.batches += 1
        records = [
            sqs_record(
                message["Body"],
                queue_arn=self._queue_arn,
                group_id=message["Attributes"]["MessageGroupId"],
                receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                dedup_id=message["Attributes"].get("MessageDeduplicationId"),
            )
            for message in messages
        ]
        for message in messages:
            self._in_flight.pop(message["MessageId"], None)
        mark = self._faults.mark()
        response = self._handler(sqs_event(records), LambdaContext(function_name="deliver"))
        failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        asked = _visibility_requests(self._faults.since(mark))
        done = []
        for index, message in enumerate(messages):
            message_id, handle = message["MessageId"], message["ReceiptHandle"]
            timeout, taken = asked.get(handle, (None, False))
            self.attempts.append(
                Attempt(
                    batch=self.batches,
                    message_id=message_id,
                    group_id=message["Attributes"]["MessageGroupId"],
                    receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
                    failed=message_id in failed,
                    visibility_asked=timeout,
                    visibility_set=taken,
                )
            )
            if message_id in failed:
                delay = timeout if timeout is not None and taken else self._visibility_timeout
                self._in_flight[message_id] = (handle, self.clock + delay)
            elif lose_delete:
                self.lost_deletes.append(message_id)
                self._in_flight[message_id] = (handle, self.clock + self._visibility_timeout)
            else:
                done.append({"Id": str(index), "ReceiptHandle": handle})
        if done:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=done)  # type: ignore[arg-type]
            self.deleted_in.append(self.batches)

    def _advance_clock(self) -> None:
        """Jump to the next message due and make every message due by then visible again."""
        self.clock = max(self.clock, min(due for _, due in self._in_flight.values()))
        for message_id, (handle, due) in list(self._in_flight.items()):
            if due > self.clock:
                continue
            del self._in_flight[message_id]
            try:
                self._sqs.change_message_visibility(QueueUrl=self._queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
            except ClientError as exc:  # already visible, and moved to the dead-letter queue by a receive since
                if exc.response.get("Error", {}).get("Code") != "ReceiptHandleIsInvalid":
                    raise


def _visibility_requests(calls: list[RecordedCall]) -> dict[str, tuple[int | None, bool]]:
    """Receipt handle → (visibility timeout asked, whether SQS took it), from the adapter's calls."""
    asked: dict[str, tuple[int | None, bool]] = {}
    for recorded in calls:
        if recorded.call.service != "sqs" or not recorded.call.operation.startswith("ChangeMessageVisibility"):
            continue
        for entry in recorded.params.get("Entries") or [recorded.params]:
            asked[entry["ReceiptHandle"]] = (int(entry["VisibilityTimeout"]), recorded.took_effect)
    return asked
