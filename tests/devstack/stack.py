"""The whole pipeline in one process, no AWS account: moto, the Sphere stand-in, the API routes and the poller.

``LocalStack`` is what ``make run`` starts and what the end-to-end tests start: the same handlers
as deployed (``functions/*/app.py``), the same resource definitions (read from ``template.yaml``),
every server bound to 127.0.0.1.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer

from devstack.crm_standin import CrmStandIn
from devstack.gateway import LocalGateway
from devstack.lambda_events import LambdaContext, eventbridge_event
from devstack.poller import BatchListener, QueuePoller
from devstack.resources import (
    LOCAL_SECRETS,
    LocalResources,
    create_resources,
    function_environment,
    secrets_from_environment,
)
from devstack.sphere_standin import SphereStandIn
from webhook_adapter import runtime
from webhook_adapter.cli.target import LOCAL_FILE_NAME, LocalConnection
from webhook_adapter.store import EventStore

__all__ = ["CONNECTION_FILE", "DELIVER_VARIABLES", "LocalStack", "StackOptions", "free_port"]

CONNECTION_FILE = Path(__file__).resolve().parents[2] / LOCAL_FILE_NAME
"""Where ``make run`` says how to reach its stack (``crm-sphere`` reads it); gitignored, removed when it stops."""

log = logging.getLogger(__name__)

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


DELIVER_VARIABLES = {
    "RETRY_BASE_SECONDS": (0, 43_200),
    "RETRY_MAX_SECONDS": (0, 43_200),
    "MAX_RECEIVE_COUNT": (1, 1000),
    "SPHERE_MAX_CALLS_PER_SECOND": (1, 100_000),
    "DELIVER_THREADS": (1, 100),
}
"""Deliver settings ``make run`` takes from the environment (the template's values otherwise), with their ranges.

``MAX_RECEIVE_COUNT`` is also the queue's redrive ``maxReceiveCount`` (the template's ``MaxReceiveCount``).
The local stack runs one deliver container: ``SPHERE_MAX_CALLS_PER_SECOND`` is shared as deployed, so that
container gets its ÷ ``DeliverMaxConcurrency`` share.
"""


def _integer(environ: Mapping[str, str], name: str, low: int, high: int) -> str | None:
    """Raises: ValueError: the variable is set but not an integer within [low, high]."""
    value = environ.get(name)
    if value is None or value == "":
        return None
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")
    return str(int(value))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class StackOptions:
    """How to run the local stack.

    ``sphere_url``/``sphere_token`` point deliver at a real Sphere instead of the stand-in;
    ``secrets`` overrides the local signing secrets; ``environment`` overrides function settings
    (its ``MAX_RECEIVE_COUNT`` sets the queue's redrive policy too); ``sphere_failure_rate`` fails
    that seeded share of the stand-in's answers with transient faults (see ``SphereStandIn.set_failure_rate``);
    ``visibility_timeout_seconds`` is how long the local event source mapping hides what it receives (the
    queue's ``VisibilityTimeout`` when ``None``, as deployed: a message reported failed without a
    ``ChangeMessageVisibility`` comes back after it).
    """

    port: int = 3000
    sphere_url: str | None = None
    sphere_token: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    poll_wait_seconds: float = 1.0
    on_batch: BatchListener | None = None
    sphere_failure_rate: float = 0.0
    sphere_failure_seed: int = 0
    visibility_timeout_seconds: int | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **fixed: Any) -> StackOptions:
        """What ``make run`` reads: ``PORT``, the local signing secrets, ``SPHERE_API_URL`` with ``SPHERE_API_TOKEN``,
        ``LOG_LEVEL``, ``DELIVER_VARIABLES``, ``SPHERE_FAILURE_RATE``, ``SPHERE_FAILURE_SEED`` and ``HUBSPOT_READ_MODE``
        (``fetch-when-incomplete`` unless set); ``fixed`` sets the other options.

        Raises:
            ValueError: a variable is set to a value out of range (the message names it).
        """
        real_sphere = bool(environ.get("SPHERE_API_URL") and environ.get("SPHERE_API_TOKEN"))
        environment = {
            # The functions log JSON at INFO in AWS; locally the printed outcomes say what happened.
            "POWERTOOLS_LOG_LEVEL": environ.get("LOG_LEVEL", "WARNING"),
            # make run reads HubSpot contacts (from the CRM stand-in) when the events fall short.
            "HUBSPOT_READ_MODE": environ.get("HUBSPOT_READ_MODE", "fetch-when-incomplete"),
        }
        for name, (low, high) in DELIVER_VARIABLES.items():
            if (value := _integer(environ, name, low, high)) is not None:
                environment[name] = value
        rate = environ.get("SPHERE_FAILURE_RATE") or "0"
        try:
            failure_rate = float(rate)
        except ValueError:
            failure_rate = -1.0
        if not 0 <= failure_rate <= 1:
            raise ValueError(f"SPHERE_FAILURE_RATE must be a number from 0 to 1, not {rate!r}")
        port = _integer(environ, "PORT", 0, 65_535)
        seed = _integer(environ, "SPHERE_FAILURE_SEED", 0, 2**63)
        values: dict[str, Any] = {
            "port": int(port) if port is not None else 3000,
            "sphere_url": environ["SPHERE_API_URL"] if real_sphere else None,
            "sphere_token": environ["SPHERE_API_TOKEN"] if real_sphere else None,
            "secrets": secrets_from_environment(environ),
            "environment": environment,
            "sphere_failure_rate": failure_rate,
            "sphere_failure_seed": int(seed) if seed is not None else 0,
        }
        return cls(**(values | fixed))


class LocalStack:
    """Start with ``start()`` (or as a context manager); ``stop()`` restores the process environment."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._saved_env: dict[str, str] | None = None
        self._stops: list[Callable[[], None]] = []
        self.standin: SphereStandIn | None = None
        self.crm: CrmStandIn | None = None
        """The CRMs' record-read APIs (HubSpot's contact read ...), started with the stack."""
        self.resources: LocalResources | None = None
        self.gateway: LocalGateway | None = None
        self.poller: QueuePoller | None = None
        self.zoho_channel: dict[str, Any] | None = None
        """What the Zoho channel function's first run answered (``None`` when the stack has no Zoho channel)."""
        self.aws_url = ""

    @property
    def url(self) -> str:
        """Base URL of the webhook routes."""
        if self.gateway is None:
            raise RuntimeError("the local stack is not started")
        return self.gateway.url

    @property
    def secrets(self) -> dict[str, str]:
        """The secret values in force (template parameter name to value)."""
        values = {**LOCAL_SECRETS, **self.options.secrets}
        if self.options.sphere_token:
            values["SphereTokenSecretArn"] = self.options.sphere_token
        return values

    def client(self, service: str) -> Any:
        """A boto3 client on the embedded AWS."""
        return boto3.client(service, endpoint_url=self.aws_url, region_name="us-east-1")  # type: ignore[call-overload]

    @property
    def store(self) -> EventStore:
        """The events table, to read outcomes."""
        if self.resources is None:
            raise RuntimeError("the local stack is not started")
        return EventStore(self.client("dynamodb"), self.resources.table_name, 90)

    def start(self) -> LocalStack:
        """Start moto, create the resources, start the stand-in, the routes and the poller."""
        self._saved_env = dict(os.environ)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
        moto_port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        self._stops.append(moto.stop)
        self.aws_url = f"http://127.0.0.1:{moto_port}"
        # moto keeps its state per process: start from nothing, as a fresh account would.
        httpx.post(f"{self.aws_url}/moto-api/reset", timeout=10).raise_for_status()
        os.environ.update(_AWS_ENV, AWS_ENDPOINT_URL=self.aws_url)

        max_receive_count = self.options.environment.get("MAX_RECEIVE_COUNT")
        self.resources = create_resources(
            dynamodb=self.client("dynamodb"),
            sqs=self.client("sqs"),
            secretsmanager=self.client("secretsmanager"),
            secrets=self.secrets,
            # One number for the redrive policy and the deliver function's last attempt, as in the template.
            parameters={"MaxReceiveCount": max_receive_count} if max_receive_count else None,
        )
        sphere_url = self.options.sphere_url
        if sphere_url is None:
            self.standin = SphereStandIn(token=self.secrets["SphereTokenSecretArn"], port=0)
            self.standin.start()
            self._stops.append(self.standin.stop)
            if self.options.sphere_failure_rate:
                self.standin.set_failure_rate(self.options.sphere_failure_rate, seed=self.options.sphere_failure_seed)
            sphere_url = self.standin.base_url

        # The CRMs' record-read APIs (deliver reads a contact when its events fall short).
        self.crm = CrmStandIn(port=0)
        self.crm.start()
        self._stops.append(self.crm.stop)

        self.gateway = LocalGateway(self._invoke_receive, port=self.options.port)
        environment = {
            **function_environment(self.resources, "ReceiveFunction", PublicBaseUrl=self.gateway.url),
            **function_environment(self.resources, "DeliverFunction", SphereApiUrl=sphere_url),
            "HUBSPOT_API_URL": self.crm.base_url,
            "ATTIO_API_URL": self.crm.base_url,
            "KEAP_API_URL": self.crm.base_url,
            "SALESFORCE_CDC_INSTANCE_URL": self.crm.base_url,
            "SALESFORCE_CDC_READ_MODE": "fetch-when-incomplete",
            "ZOHO_API_URL": self.crm.base_url,
            "ZOHO_ACCOUNTS_URL": self.crm.base_url,
            **self.options.environment,
        }
        environment = {**function_environment(self.resources, "ReplayFunction"), **environment}
        if self.resources.resolver.condition("HasZohoChannel"):
            environment = {
                **function_environment(self.resources, "ZohoChannelFunction", PublicBaseUrl=self.gateway.url),
                **environment,
            }
        os.environ.update(environment)
        runtime.reset()
        self._receive = importlib.import_module("receive.app").lambda_handler
        self._deliver = importlib.import_module("deliver.app").lambda_handler

        self.gateway.start()
        self._stops.append(self.gateway.stop)
        self.poller = QueuePoller(
            self.client("sqs"),
            self.resources.queue_url,
            self._deliver,
            wait_seconds=self.options.poll_wait_seconds,
            visibility_timeout=self.options.visibility_timeout_seconds,
            on_batch=self.options.on_batch,
        )
        self.poller.start()
        self._stops.append(self.poller.stop)
        if self.resources.resolver.condition("HasZohoChannel"):
            # The schedule's first run: Zoho's notification channel is open from the start.
            self.zoho_channel = self.renew_zoho_channel()
        log.info("local stack up: webhooks on %s, AWS on %s, Sphere at %s", self.gateway.url, self.aws_url, sphere_url)

    def publish_connection(self, path: Path = CONNECTION_FILE) -> Path:
        """Write where the embedded AWS, the table and the queue are, for ``crm-sphere``; ``stop()`` removes it."""
        if self.resources is None:
            raise RuntimeError("the local stack is not started")
        connection = LocalConnection(
            endpoint_url=self.aws_url,
            region=_AWS_ENV["AWS_REGION"],
            table_name=self.resources.table_name,
            queue_url=self.resources.queue_url,
            dead_letter_queue_url=self.resources.dead_letter_queue_url,
        )
        path.write_text(connection.model_dump_json(indent=2) + "\n", encoding="utf-8")
        self._stops.append(lambda: path.unlink(missing_ok=True))
        return path

    def put_event(self, detail_type: str, detail: Mapping[str, Any], **envelope: Any) -> dict[str, Any]:
        """Invoke the receive function as an EventBridge rule does (Salesforce's Event Relay); its result.

        ``envelope`` overrides the EventBridge event's ``source``, ``event_id`` or ``time_ms``. Raises what the
        function raises: on AWS, Lambda would retry the event.
        """
        if self.gateway is None:
            raise RuntimeError("the local stack is not started")
        event = eventbridge_event(detail_type, detail, **envelope)
        return self._invoke_receive(event, LambdaContext(function_name="receive"))

    def replay(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Invoke the replay function with ``event`` as the Lambda console's Test tab does; its answer."""
        handler = importlib.import_module("replay.app").lambda_handler
        result: dict[str, Any] = handler(dict(event), LambdaContext(function_name="replay"))
        return result

    def renew_zoho_channel(self) -> dict[str, Any]:
        """Invoke the Zoho channel function as its schedule does; its result (the channel and its expiry).

        Raises what the function raises (on AWS, the failed run would count in its alarm).
        """
        handler = importlib.import_module("zoho_channels.app").lambda_handler
        result: dict[str, Any] = handler({}, LambdaContext(function_name="zoho-channel"))
        return result

    def _invoke_receive(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._receive(event, context)
        return result

    def stop(self) -> None:
        """Stop everything started, newest first, and restore the environment."""
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:  # stopping the rest matters more than one failed stop
                log.exception("local stack: a component did not stop cleanly")
        runtime.reset()
        if self._saved_env is not None:
            os.environ.clear()
            os.environ.update(self._saved_env)
            self._saved_env = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
