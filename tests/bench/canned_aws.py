"""AWS answered with canned bodies inside botocore, for measuring our CPU without moto's.

``CannedAWS`` is a ``before-send`` hook (the one moto uses) added to botocore's built-in handlers,
so every client created afterwards — the adapter's and the one Powertools Parameters makes for
Secrets Manager — gets it. Requests are still built, validated, serialized and signed, and the
canned answers still parsed: only the network and the service are left out. Each answer is the
success the adapter expects: nothing known yet, every message taken, every write processed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS

from devstack.resources import LOCAL_SECRETS, LocalResources, Resolver, function_environment, load_template

__all__ = ["CannedAWS", "canned_environment"]

_ACCOUNT_PREFIX = "arn:aws:secretsmanager:us-east-1:123456789012:secret:crm-sphere-local"
_TABLE = "crm-sphere-local-events"
_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/crm-sphere-local-changes"
_SECRET_ARNS = {parameter: f"{_ACCOUNT_PREFIX}/{parameter.removesuffix('Arn')}-AbCdEf" for parameter in LOCAL_SECRETS}


def canned_environment(logical_id: str, **parameters: Any) -> dict[str, str]:
    """The function's environment as the template resolves it, naming resources no one created."""
    resolver = Resolver(load_template(), dict(_SECRET_ARNS))
    resolver.refs |= {
        "EventsTable": _TABLE,
        "ChangesQueue": f"{_QUEUE}.fifo",
        "ChangesDeadLetterQueue": f"{_QUEUE}-dlq.fifo",
    }
    resources = LocalResources(_TABLE, f"{_QUEUE}.fifo", f"{_QUEUE}-dlq.fifo", dict(_SECRET_ARNS), resolver)
    return function_environment(resources, logical_id, **parameters)


class _Raw:
    """The raw stream botocore reads an answer from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class CannedAWS:
    """Answers DynamoDB, SQS and Secrets Manager (JSON protocols) as a healthy account would; counts the calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._secrets: Mapping[str, str] = {arn: LOCAL_SECRETS[name] for name, arn in _SECRET_ARNS.items()}

    def install(self) -> CannedAWS:
        """Answer every botocore client created from now on in this process."""
        BUILTIN_HANDLERS.append(("before-send", self))
        return self

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]
        self.calls[operation] += 1
        params = json.loads(request.body or b"{}")
        answer = getattr(self, f"_{operation}", self._empty)(params)
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": str(uuid.uuid4())}
        return AWSResponse(request.url, 200, headers, _Raw(json.dumps(answer).encode()))  # type: ignore[arg-type]

    def _empty(self, _: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _GetSecretValue(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - the operation's name
        arn = params["SecretId"]
        return {"ARN": arn, "Name": arn, "SecretString": self._secrets[arn], "VersionId": "v1"}

    def _BatchGetItem(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - the operation's name
        return {"Responses": {table: [] for table in params["RequestItems"]}, "UnprocessedKeys": {}}

    def _BatchWriteItem(self, _: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - the operation's name
        return {"UnprocessedItems": {}}

    def _SendMessageBatch(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - the operation's name
        taken = [
            {
                "Id": entry["Id"],
                "MessageId": str(uuid.uuid4()),
                "MD5OfMessageBody": hashlib.md5(entry["MessageBody"].encode()).hexdigest(),  # noqa: S324 - SQS's own
                "SequenceNumber": "18849496460467696128",
            }
            for entry in params["Entries"]
        ]
        return {"Successful": taken, "Failed": []}
