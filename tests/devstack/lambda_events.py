"""Lambda events and context as AWS builds them: API Gateway HTTP API (payload 2.0), SQS and EventBridge."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "SALESFORCE_PARTNER_SOURCE",
    "LambdaContext",
    "eventbridge_event",
    "http_api_event",
    "sqs_event",
    "sqs_record",
    "webhook_event",
]


@dataclass
class LambdaContext:
    """The parts of the Lambda context Powertools reads."""

    function_name: str = "local"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    deadline_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left (30 s from now unless a deadline was set)."""
        return self.deadline_ms - int(time.time() * 1000) if self.deadline_ms else 30_000


def http_api_event(
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    body: bytes,
    query: str = "",
    path_parameters: Mapping[str, str] | None = None,
    route_key: str | None = None,
) -> dict[str, Any]:
    """An HTTP API payload-2.0 event: lower-cased headers, raw body base64-encoded."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": dict(path_parameters or {}),
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def webhook_event(
    source: str, headers: Mapping[str, str], body: bytes, *, method: str = "POST", query: str = ""
) -> dict[str, Any]:
    """The HTTP API event of the receive function's route (``POST /webhooks/{source}``) for one request."""
    return http_api_event(
        method,
        f"/webhooks/{source}",
        headers=headers,
        body=body,
        query=query,
        path_parameters={"source": source},
        route_key="POST /webhooks/{source}",
    )


def sqs_record(
    body: str,
    *,
    queue_arn: str,
    group_id: str,
    receive_count: int = 1,
    message_id: str | None = None,
    receipt_handle: str | None = None,
    dedup_id: str | None = None,
    sequence_number: str = "18849496460467696128",
    sent_timestamp: int | None = None,
    first_receive_timestamp: int | None = None,
) -> dict[str, Any]:
    """One record of an SQS FIFO event as the event source mapping delivers it (times default to now)."""
    now = int(time.time() * 1000)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(sent_timestamp or now),
            "SequenceNumber": sequence_number,
            "MessageGroupId": group_id,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "MessageDeduplicationId": dedup_id or hashlib.sha256(body.encode()).hexdigest(),
            "ApproximateFirstReceiveTimestamp": str(first_receive_timestamp or now),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An SQS event holding ``records``."""
    return {"Records": list(records)}


SALESFORCE_PARTNER_SOURCE = "aws.partner/salesforce.com/00D5e000000AbCdEAF/0YLRM0000000001AAA"
"""The ``source`` of an Event Relay event: the partner event source (``<org id>/<relay id>``; made-up ids)."""


def eventbridge_event(
    detail_type: str,
    detail: Mapping[str, Any],
    *,
    source: str = SALESFORCE_PARTNER_SOURCE,
    event_id: str | None = None,
    time_ms: int = 0,
) -> dict[str, Any]:
    """An EventBridge event as a rule hands it to a Lambda target (``detail`` as given; a fresh id unless given)."""
    moment = datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": moment,
        "region": "us-east-1",
        "resources": [],
        "detail": dict(detail),
    }
