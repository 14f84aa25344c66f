"""The stack the throughput and cost measures run on: moto with the template's resources, the stand-in.

Like the test suite's ``pipeline`` fixture, but for a worker process: both real handlers, the
environment the template gives each function (no test overrides: template timeouts and retry
schedule), and a local event source mapping that counts what the real one would be billed for.
Moto answers in this process (``mock_aws``: its time can be metered and subtracted), or, with
``remote=True``, as a server in a process of its own: AWS then answers over HTTP from another core,
as it would from another machine, and its CPU no longer competes with the function's threads.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from bench.moto_meter import MotoMeter
from bench.workload import receive_event
from devstack.crm_standin import CrmStandIn
from devstack.lambda_events import LambdaContext, sqs_event, sqs_record
from devstack.pipeline import PUBLIC_BASE_URL
from devstack.resources import LOCAL_SECRETS, LocalResources, create_resources, function_environment
from devstack.sphere_standin import SphereStandIn
from webhook_adapter import runtime

__all__ = ["Invocation", "LocalAWS", "local_aws"]

type Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Invocation:
    """One handler call: its wall time, moto's share of it, and the adapter's AWS calls moto answered."""

    function: str
    wall_ms: float
    moto_ms: float
    aws_calls: dict[str, int]
    aws_chunks: dict[str, int]
    log_bytes: int
    response: dict[str, Any]
    sphere_calls: int = 0
    moto_cpu_ms: float = 0.0
    """The CPU moto used in the threads that called it (what the wall would lose if AWS answered elsewhere)."""
    crm_reads: int = 0
    """Records the invocation read from the CRM stand-in."""

    @property
    def net_ms(self) -> float:
        """Wall time less moto's own (what the function would take with AWS answering instantly)."""
        return self.wall_ms - self.moto_ms


@dataclass
class LocalAWS:
    """Both functions on moto and the stand-in; every invocation and every event-source-mapping request recorded."""

    resources: LocalResources
    standin: SphereStandIn
    crm: CrmStandIn
    sqs: Any
    meter: MotoMeter
    receive: Handler
    deliver: Handler
    invocations: list[Invocation] = field(default_factory=list)
    esm_requests: dict[str, int] = field(default_factory=dict)
    esm_payload_bytes: list[int] = field(default_factory=list)
    messages_delivered: int = 0

    def _invoke(self, function: str, handler: Handler, event: dict[str, Any]) -> dict[str, Any]:
        os.environ["_X_AMZN_TRACE_ID"] = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        context = LambdaContext(function_name=function, aws_request_id=str(uuid.uuid4()))
        self.meter.reset()
        logged = getattr(sys.stdout, "bytes_written", 0)
        patched = len(self.standin.patches())
        read = len(self.crm.records_read("hubspot"))
        started = time.perf_counter()
        response = handler(event, context)
        wall = (time.perf_counter() - started) * 1000
        self.invocations.append(
            Invocation(
                function,
                wall,
                self.meter.wall * 1000,
                dict(self.meter.calls),
                dict(self.meter.chunks),
                getattr(sys.stdout, "bytes_written", 0) - logged,
                response,
                len(self.standin.patches()) - patched,
                self.meter.thread_cpu * 1000,
                len(self.crm.records_read("hubspot")) - read,
            )
        )
        return response

    def post(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """HubSpot posts one signed batch; the receive answer.

        Raises:
            RuntimeError: receive did not answer 202.
        """
        answer = self._invoke("receive", self.receive, receive_event(events))
        if answer["statusCode"] != 202:
            raise RuntimeError(f"receive answered {answer['statusCode']}: {answer.get('body')}")
        return answer

    def _count(self, request: str, payload_bytes: int = 0) -> None:
        self.esm_requests[request] = self.esm_requests.get(request, 0) + 1
        if payload_bytes:
            self.esm_payload_bytes.append(payload_bytes)

    def receive_batch(self, size: int = 10) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """What the event source mapping's ``ReceiveMessage`` returns: the messages, and them as SQS records."""
        answer = self.sqs.receive_message(
            QueueUrl=self.resources.queue_url, MaxNumberOfMessages=size, MessageSystemAttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        if not messages:
            return [], []
        self._count("ReceiveMessage", sum(len(message["Body"].encode()) for message in messages))
        arn = self.resources.resolver.attributes[("ChangesQueue", "Arn")]
        records = [
            sqs_record(
                message["Body"],
                queue_arn=arn,
                group_id=message["Attributes"]["MessageGroupId"],
                receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                dedup_id=message["Attributes"]["MessageDeduplicationId"],
                sequence_number=message["Attributes"]["SequenceNumber"],
            )
            for message in messages
        ]
        return messages, records

    def deliver_batch(self, messages: list[dict[str, Any]], records: list[dict[str, Any]]) -> set[str]:
        """Invoke deliver with one batch and delete what succeeded, as the mapping does; the failed message ids."""
        response = self._invoke("deliver", self.deliver, sqs_event(records))
        self.messages_delivered += len(records)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        done = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
            if message["MessageId"] not in failed
        ]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.resources.queue_url, Entries=done)
            self._count("DeleteMessageBatch")
        return failed

    def drain(self, *, batch_size: int = 10, deadline_seconds: float = 120.0) -> int:
        """Deliver until a receive comes back empty; the number of deliver invocations.

        Raises:
            TimeoutError: still delivering at the deadline.
        """
        deadline, batches = time.monotonic() + deadline_seconds, 0
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("the queue did not drain in time")
            messages, records = self.receive_batch(batch_size)
            if not messages:
                return batches
            self.deliver_batch(messages, records)
            batches += 1

    def forget(self) -> None:
        """Drop what was recorded so far (warm-up traffic)."""
        self.invocations.clear()
        self.esm_requests.clear()
        self.esm_payload_bytes.clear()
        self.messages_delivered = 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _moto_server() -> Iterator[str]:
    """Moto as a server in a process of its own, on a free local port; its endpoint URL.

    Raises:
        RuntimeError: it did not answer within 30 s.
    """
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _restore(saved: Mapping[str, str | None]) -> None:
    """Put variables back as they were (``None``: it was not set)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextmanager
def local_aws(
    meter: MotoMeter, *, remote: bool = False, environment: Mapping[str, str] | None = None
) -> Iterator[LocalAWS]:
    """Moto with the template's resources and the stand-ins, the functions' environment set, caches cleared.

    ``remote``: moto runs as a server in its own process (``AWS_ENDPOINT_URL`` points every client at it).
    ``environment``: settings over the template's (``HUBSPOT_READ_MODE``), restored afterwards.
    """
    with ExitStack() as stack:
        if remote:
            endpoint = stack.enter_context(_moto_server())
            previous = os.environ.get("AWS_ENDPOINT_URL")
            os.environ["AWS_ENDPOINT_URL"] = endpoint
            stack.callback(
                lambda: (
                    os.environ.__setitem__("AWS_ENDPOINT_URL", previous)
                    if previous is not None
                    else os.environ.pop("AWS_ENDPOINT_URL", None)
                )
            )
        else:
            stack.enter_context(mock_aws())
        standin = stack.enter_context(SphereStandIn(token=LOCAL_SECRETS["SphereTokenSecretArn"], port=0))
        crm = stack.enter_context(CrmStandIn(port=0))
        session = boto3.session.Session()
        resources = create_resources(
            dynamodb=session.client("dynamodb"),
            sqs=session.client("sqs"),
            secretsmanager=session.client("secretsmanager"),
        )
        os.environ.update(function_environment(resources, "ReceiveFunction", PublicBaseUrl=PUBLIC_BASE_URL))
        os.environ.update(function_environment(resources, "DeliverFunction", SphereApiUrl=standin.base_url))
        os.environ["HUBSPOT_API_URL"] = crm.base_url
        saved = {name: os.environ.get(name) for name in environment or {}}
        os.environ.update(environment or {})
        stack.callback(_restore, saved)
        runtime.reset()
        try:
            yield LocalAWS(
                resources=resources,
                standin=standin,
                crm=crm,
                sqs=session.client("sqs"),
                meter=meter,
                receive=importlib.import_module("receive.app").lambda_handler,
                deliver=importlib.import_module("deliver.app").lambda_handler,
            )
        finally:
            runtime.reset()
