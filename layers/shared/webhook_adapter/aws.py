"""Lazy, cached AWS clients: created on first use so warm invocations reuse them and tests put moto first.

Every client comes from one boto3 session, so a cold start loads the SDK's endpoint and service data
once. Endpoints follow the SDK's own configuration (``AWS_ENDPOINT_URL`` points them at the local stack).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from boto3.session import Session
from botocore.config import Config

from webhook_adapter.runtime import cached

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["QUIET_LOGGERS", "dynamodb", "secretsmanager", "session", "sqs"]

QUIET_LOGGERS = ("boto3", "botocore", "urllib3", "httpx", "httpcore")
"""SDK loggers kept at WARNING whatever the root level: at DEBUG they write request and response bodies,
which hold secrets (Secrets Manager answers) and contact details (DynamoDB items, SQS messages, Sphere calls)."""
for _name in QUIET_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    parameter_validation=False,
)
"""Short timeouts: the receive path must answer HubSpot within 5 s, and a slow call is retried by the SDK.

No client-side parameter validation: it walked every attribute of every item against the service
model, a quarter of a warm receive's CPU for a 100-event batch (profiled). The services validate
the same requests and answer an invalid one with a ``ValidationException``, which the adapter
handles like any refused call.
"""


@cached
def session() -> Session:
    """The boto3 session of this container, which every client comes from."""
    return Session()


@cached
def dynamodb() -> DynamoDBClient:
    """The DynamoDB client of this container."""
    return session().client("dynamodb", config=_CONFIG)


@cached
def sqs() -> SQSClient:
    """The SQS client of this container."""
    return session().client("sqs", config=_CONFIG)


@cached
def secretsmanager() -> SecretsManagerClient:
    """The Secrets Manager client of this container."""
    return session().client("secretsmanager", config=_CONFIG)
