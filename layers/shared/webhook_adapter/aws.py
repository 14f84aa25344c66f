"""Lazy, cached AWS clients: created on first use so warm invocations reuse them and tests put moto first.

Endpoints follow the SDK's own configuration (``AWS_ENDPOINT_URL`` points them at the local stack).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from webhook_adapter.runtime import cached

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["QUIET_LOGGERS", "dynamodb", "sqs"]

QUIET_LOGGERS = ("boto3", "botocore", "urllib3", "httpx", "httpcore")
"""SDK loggers kept at WARNING whatever the root level: at DEBUG they write request and response bodies,
which hold secrets (Secrets Manager answers) and contact details (DynamoDB items, SQS messages, Sphere calls)."""
for _name in QUIET_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
)
"""Short timeouts: the receive path must answer HubSpot within 5 s, and a slow call is retried by the SDK."""


@cached
def dynamodb() -> DynamoDBClient:
    """The DynamoDB client of this container."""
    return boto3.client("dynamodb", config=_CONFIG)


@cached
def sqs() -> SQSClient:
    """The SQS client of this container."""
    return boto3.client("sqs", config=_CONFIG)
