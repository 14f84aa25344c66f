"""Each function's role grants every AWS call its code makes, and nothing it does not make.

moto does not enforce IAM, so this records the calls each handler makes through a run that
takes every path (accepted, duplicate, refused, delivered, retried, token refreshed) and
compares them with the role in template.yaml.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from devstack.crm import hubspot_event
from devstack.pipeline import Pipeline
from devstack.poller import QueuePoller
from devstack.resources import load_template
from devstack.sphere_standin import SEED_INDIVIDUAL_ID

type Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_ENFORCED = {"dynamodb", "sqs", "secretsmanager"}
"""Services whose calls the functions make with their own role (X-Ray and logs are the runtime's)."""


class CallRecorder:
    """Records ``service:Operation`` of every AWS call made while ``function`` is set."""

    def __init__(self) -> None:
        self.function: str | None = None
        self.calls: dict[str, set[str]] = {"receive": set(), "deliver": set()}

    def wrap(self, function: str, handler: Handler) -> Handler:
        """``handler``, recording the calls it makes as ``function``'s."""

        def recorded(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.function = function
            try:
                return handler(event, context)
            finally:
                self.function = None

        return recorded

    def record(self, service: str, operation: str) -> None:
        if self.function is not None and service in _ENFORCED:
            # SQS authorizes its batch calls with the single call's action (SendMessageBatch: sqs:SendMessage).
            action = operation.removesuffix("Batch") if service == "sqs" else operation
            self.calls[self.function].add(f"{service}:{action}")


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> CallRecorder:
    recording = CallRecorder()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private, untyped in the stubs

    def make_api_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        recording.record(self.meta.service_model.signing_name, operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    return recording


def granted(role: str) -> set[str]:
    statements = load_template()["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {
        action
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    return {action for action in actions if action.split(":")[0] in _ENFORCED}


def test_each_role_grants_exactly_the_calls_its_function_makes(pipeline: Pipeline, recorder: CallRecorder) -> None:
    # Given the handlers wrapped so that their own AWS calls are recorded
    pipeline.receive_handler = recorder.wrap("receive", pipeline.receive_handler)
    deliver = recorder.wrap("deliver", pipeline.deliver_handler)
    poller = QueuePoller(pipeline.sqs, pipeline.resources.queue_url, deliver, wait_seconds=1)
    now = int(time.time() * 1000)
    batch = [
        hubspot_event(1, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 10, event_id=1),
        hubspot_event(1, "email", "ada@example.com", occurred_at=now, event_id=2),
        hubspot_event(1, "lifecyclestage", "lead", occurred_at=now, event_id=3),
    ]

    # When every path runs: accepted, duplicate, refused; delivered after a 503, then after a rotated token
    assert pipeline.post_hubspot(batch).status == 202
    assert pipeline.post_hubspot(batch).status == 202
    assert pipeline.post_hubspot(batch, secret="wrong").status == 401
    pipeline.standin.fail_next(1, 503)
    while pipeline.queued_messages():
        poller.poll_once()
    pipeline.standin.rotate_token("rotated")
    secret_id = pipeline.resources.secret_arns["SphereTokenSecretArn"]
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString="rotated")
    assert pipeline.post_hubspot([hubspot_event(1, "email", "ada.l@example.com", occurred_at=now + 1)]).status == 202
    while pipeline.queued_messages():
        poller.poll_once()
    assert len(pipeline.standin.patches(SEED_INDIVIDUAL_ID)) == 2

    # Then each role grants what its function called, and nothing more
    assert recorder.calls["receive"] == granted("ReceiveFunctionRole")
    assert recorder.calls["deliver"] == granted("DeliverFunctionRole") - {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
