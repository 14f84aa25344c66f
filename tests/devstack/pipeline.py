"""The pipeline in-process for integration tests: the real handlers on moto, delivering to the stand-in.

Where ``LocalStack`` serves HTTP, ``Pipeline`` calls the handlers directly with real-shaped events:
``post()`` is API Gateway invoking the receive function, ``drain()`` is the SQS event source
mapping invoking the deliver function until the queue is empty.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devstack.crm import generic_request, hubspot_request
from devstack.lambda_events import LambdaContext, eventbridge_event, webhook_event
from devstack.poller import QueuePoller
from devstack.resources import LOCAL_SECRETS, LocalResources, function_environment
from devstack.sphere_standin import SphereStandIn
from devstack.vendors import VendorRequest
from webhook_adapter.model import Status
from webhook_adapter.store import EventStore, event_sk

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["PUBLIC_BASE_URL", "Answer", "Pipeline", "pipeline_environment"]

PUBLIC_BASE_URL = "https://hooks.example.com"
"""What the tests configure as the public URL HubSpot signs."""


def pipeline_environment(resources: LocalResources, sphere_url: str) -> dict[str, str]:
    """Both functions' settings as the template gives them, delivering to ``sphere_url``, retrying without delay."""
    return {
        **function_environment(resources, "ReceiveFunction", PublicBaseUrl=PUBLIC_BASE_URL),
        **function_environment(resources, "DeliverFunction", SphereApiUrl=sphere_url),
        "RETRY_BASE_SECONDS": "0",
        "SPHERE_TIMEOUT_SECONDS": "1",
    }


@dataclass(frozen=True)
class Answer:
    """The receive function's answer."""

    status: int
    body: dict[str, Any]
    """The body read as JSON (``{}`` when it is not JSON: Salesforce's SOAP)."""
    headers: dict[str, str]
    raw: bytes = b""


class Pipeline:
    """Both functions wired to moto and the stand-in."""

    def __init__(self, resources: LocalResources, standin: SphereStandIn, sqs: SQSClient, store: EventStore) -> None:
        self.resources = resources
        self.standin = standin
        self.sqs = sqs
        self.store = store
        self.receive_handler = importlib.import_module("receive.app").lambda_handler
        self.deliver_handler = importlib.import_module("deliver.app").lambda_handler
        # Long polling: while a retried message is hidden by its backoff, SQS holds the receive until it shows.
        self.poller = QueuePoller(sqs, resources.queue_url, self.deliver_handler, wait_seconds=1)

    def post(
        self, source: str, headers: dict[str, str], body: bytes, *, query: str = "", method: str = "POST"
    ) -> Answer:
        """Invoke the receive function as API Gateway does for ``POST /webhooks/{source}``."""
        event = webhook_event(source, headers, body, method=method, query=query)
        response = self.receive_handler(event, LambdaContext(function_name="receive"))
        headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
        raw = str(response.get("body") or "")
        is_json = headers.get("content-type", "").startswith("application/json")
        return Answer(
            status=int(response["statusCode"]),
            body=json.loads(raw or "{}") if is_json else {},
            headers=headers,
            raw=raw.encode(),
        )

    def put_event(self, detail_type: str, detail: Mapping[str, Any], **envelope: Any) -> dict[str, Any]:
        """Invoke the receive function as an EventBridge rule does (Salesforce's Event Relay); its result.

        ``envelope`` overrides the event's ``source``, ``event_id`` or ``time_ms``; raises what the function raises.
        """
        event = eventbridge_event(detail_type, detail, **envelope)
        result: dict[str, Any] = self.receive_handler(event, LambdaContext(function_name="receive"))
        return result

    def send(self, request: VendorRequest) -> Answer:
        """A vendor kit's request, as API Gateway hands it to the receive function."""
        return self.post(request.source, dict(request.headers), request.body, query=request.query)

    def refused_requests(self, source: str, since_ms: int) -> list[dict[str, Any]]:
        """The requests of ``source`` recorded as refused (answered 4xx) since ``since_ms``, newest last."""
        found = self.store.events_by_status(Status.REFUSED, since_ms - 1000, int(time.time() * 1000) + 1000)
        return [item for item in found if str(item["pk"]).startswith("REQUEST#") and item["source"] == source]

    def refuses(self, request: VendorRequest, status: int, code: str, *, seen: set[str]) -> Answer:
        """Send ``request``; check it is refused with ``status`` and ``code`` in JSON, queues nothing, and is recorded
        once (a record not in ``seen``, which it joins) with the digest of its body. The answer.
        """
        start = int(time.time() * 1000)
        answer = self.send(request)
        assert answer.status == status, answer.body
        assert answer.headers["content-type"].startswith("application/json")
        assert set(answer.body) == {"error"}
        assert answer.body["error"]["code"] == code
        assert self.queued_messages() == 0
        records = [record for record in self.refused_requests(request.source, start) if record["pk"] not in seen]
        seen |= {record["pk"] for record in records}
        assert [(record["http_status"], record["code"]) for record in records] == [(status, code)]
        assert records[0]["body_sha256"] == hashlib.sha256(request.body).hexdigest()
        return answer

    def post_hubspot(self, events: list[dict[str, Any]], *, secret: str | None = None) -> Answer:
        """A HubSpot batch, signed with the client secret for the configured public URL."""
        key = secret or LOCAL_SECRETS["HubSpotSecretArn"]
        headers, body = hubspot_request(events, secret=key, url=f"{PUBLIC_BASE_URL}/webhooks/hubspot")
        return self.post("hubspot", headers, body)

    def post_generic(self, payload: dict[str, Any], *, msg_id: str | None = None, secret: str | None = None) -> Answer:
        """A generic contact, signed the Standard Webhooks way."""
        key = secret or LOCAL_SECRETS["GenericSecretArn"]
        headers, body = generic_request(payload, secret=key, msg_id=msg_id)
        return self.post("generic", headers, body)

    def queued_messages(self) -> int:
        """Messages on the queue, visible or in flight."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def drain(self, *, timeout: float = 10.0) -> int:
        """Deliver until the queue is empty (retries included); the number of batches run.

        Raises:
            TimeoutError: messages were still queued at the deadline.
        """
        deadline = time.monotonic() + timeout
        batches = 0
        while self.queued_messages():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.queued_messages()} messages still queued after {timeout} s")
            if self.poller.poll_once():
                batches += 1
        return batches

    def find_event(self, source: str, key: str) -> dict[str, Any] | None:
        """An event's stored item found by its key alone (a scan: the table is keyed by contact), or ``None``."""
        paginator = self.store.client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.resources.table_name,
            FilterExpression="sk = :sk AND #source = :source",
            ExpressionAttributeNames={"#source": "source"},
            ExpressionAttributeValues={":sk": {"S": event_sk(key)}, ":source": {"S": source}},
        ):
            for item in page.get("Items", []):
                return self.store.get_event(source, item["contact_id"]["S"], key)
        return None

    def event(self, source: str, key: str) -> dict[str, Any]:
        """An event's stored item.

        Raises:
            KeyError: no such event (it is still on the queue, or was never accepted).
        """
        item = self.find_event(source, key)
        if item is None:
            raise KeyError(key)
        return item
