"""Which stack the CLI works on: ``make run``'s (its connection file) or a deployed one (its CloudFormation outputs).

Either way the result is a ``Target``: where the events table and the changes queue are, and the
boto3 session to reach them. A deployed stack is read with the usual AWS profile and region (or
``--profile``/``--region``); the local stack's embedded AWS takes any credentials, so placeholders
are used instead of the operator's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from webhook_adapter.enqueue import ChangeQueue
from webhook_adapter.replay import DeadLetters, Replayer
from webhook_adapter.runtime import now_ms
from webhook_adapter.settings import DecideSettings
from webhook_adapter.store import EventStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["LOCAL_FILE_NAME", "LocalConnection", "Target", "TargetUnavailable", "find_local_file", "local", "stack"]

LOCAL_FILE_NAME = ".make-run.json"
"""What ``make run`` writes at the repository root while it serves (and removes when it stops)."""
_LOCAL_CREDENTIAL = "local"
"""The embedded AWS (moto) accepts any credentials: the operator's own are never sent to it."""
_OUTPUT_TABLE = "EventsTableName"
_OUTPUT_QUEUE = "ChangesQueueUrl"
_OUTPUT_DEAD_LETTERS = "DeadLetterQueueUrl"
_STATE_COUNTRIES = DecideSettings.model_fields["state_required_countries"]
"""The template's default, which a replay's preview uses (the CLI cannot read the deliver function's settings)."""
_TTL_DAYS = 90
"""Unused by the reads and the queueing the CLI does (only deliver's writes set a TTL); the template's default."""


class TargetUnavailable(Exception):
    """The stack named cannot be used: no connection file, no such stack, or an output missing."""


class LocalConnection(BaseModel):
    """The local stack's connection file: where its embedded AWS, table and queue are."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    endpoint_url: str
    region: str
    table_name: str
    queue_url: str
    dead_letter_queue_url: str


@dataclass(frozen=True, slots=True)
class Target:
    """The table and the queue of one stack, and the session that reaches them."""

    name: str
    """What the operator named: ``local`` or the CloudFormation stack's name."""
    session: boto3.Session
    table_name: str
    queue_url: str
    dead_letter_queue_url: str
    endpoint_url: str | None = None

    def store(self) -> EventStore:
        """The events table."""
        client: DynamoDBClient = self.session.client("dynamodb", endpoint_url=self.endpoint_url)
        return EventStore(client, self.table_name, _TTL_DAYS)

    def queue(self) -> ChangeQueue:
        """The changes queue deliver reads."""
        client: SQSClient = self.session.client("sqs", endpoint_url=self.endpoint_url)
        return ChangeQueue(client, self.queue_url)

    def replayer(self, *, on_sent: Callable[[int, int], None] | None = None) -> Replayer:
        """A replayer on this stack (its previews normalize phones with the template's default region, US)."""
        return Replayer(
            store=self.store(),
            queue=self.queue(),
            dead_letters=self.dead_letters(),
            default_region="US",
            countries_requiring_state=frozenset(str(_STATE_COUNTRIES.default).split(",")),
            messages_per_second=10,
            now_ms=now_ms,
            on_sent=on_sent,
        )

    def dead_letters(self) -> DeadLetters:
        """The changes queue's dead-letter queue."""
        client: SQSClient = self.session.client("sqs", endpoint_url=self.endpoint_url)
        return DeadLetters(client, self.dead_letter_queue_url)


def find_local_file(start: Path) -> Path | None:
    """``LOCAL_FILE_NAME`` in ``start`` or the nearest parent holding one (run from anywhere in the repository)."""
    for folder in (start, *start.parents):
        candidate = folder / LOCAL_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def local(path: Path | None) -> Target:
    """The running ``make run`` stack, from its connection file (``path``, or found from the working directory).

    Raises:
        TargetUnavailable: no connection file, or one that is not what ``make run`` writes.
    """
    found = path if path is not None else find_local_file(Path.cwd())
    if found is None or not found.is_file():
        raise TargetUnavailable(
            f"no {LOCAL_FILE_NAME} found: start the local stack with `make run` (or name a deployed one with --stack)"
        )
    try:
        connection = LocalConnection.model_validate(json.loads(found.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise TargetUnavailable(f"{found} is not a local stack's connection file") from exc
    session = boto3.Session(
        aws_access_key_id=_LOCAL_CREDENTIAL,
        aws_secret_access_key=_LOCAL_CREDENTIAL,
        region_name=connection.region,
    )
    return Target(
        "local",
        session,
        connection.table_name,
        connection.queue_url,
        connection.dead_letter_queue_url,
        connection.endpoint_url,
    )


def stack(name: str, *, profile: str | None = None, region: str | None = None) -> Target:
    """A deployed stack, from its outputs ``EventsTableName``, ``ChangesQueueUrl`` and ``DeadLetterQueueUrl``.

    Raises:
        TargetUnavailable: AWS could not be reached, the stack does not exist, or it lacks an output.
    """
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        answer = session.client("cloudformation").describe_stacks(StackName=name)
    except (BotoCoreError, ClientError) as exc:
        raise TargetUnavailable(f"could not read the stack {name!r}: {exc}") from exc
    outputs = {
        output["OutputKey"]: output["OutputValue"]
        for described in answer.get("Stacks", [])
        for output in described.get("Outputs", [])
        if "OutputKey" in output and "OutputValue" in output
    }
    missing = [key for key in (_OUTPUT_TABLE, _OUTPUT_QUEUE, _OUTPUT_DEAD_LETTERS) if key not in outputs]
    if missing:
        raise TargetUnavailable(f"the stack {name!r} has no output {', '.join(missing)}: is it this adapter's?")
    return Target(name, session, outputs[_OUTPUT_TABLE], outputs[_OUTPUT_QUEUE], outputs[_OUTPUT_DEAD_LETTERS])
