"""Secrets from AWS Secrets Manager through Powertools Parameters, cached per warm container.

``max_age`` bounds how long a rotated secret goes unnoticed; ``refresh=True`` refetches at once
(Sphere answered 401: the key was rotated). Values are never logged nor put in an error message.
The provider reads through the container's Secrets Manager client (``aws.secretsmanager``): left
to itself, Powertools would build a boto3 session of its own and load the SDK's data twice.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from webhook_adapter import aws
from webhook_adapter.errors import SecretUnavailable
from webhook_adapter.runtime import cached

__all__ = ["SecretUnavailable", "read_secret", "read_secret_values", "secrets_provider"]


@cached
def secrets_provider() -> SecretsProvider:
    """The container's Secrets Manager reader, with its cache (forgotten by ``runtime.reset()``)."""
    return SecretsProvider(boto3_client=aws.secretsmanager())


def read_secret(secret_id: str, *, max_age: int, refresh: bool = False) -> str:
    """The secret's string value, from the container's cache unless older than ``max_age`` or ``refresh``.

    Raises:
        SecretUnavailable: Secrets Manager did not return a string value.
    """
    try:
        value = secrets_provider().get(secret_id, max_age=max_age, force_fetch=refresh)
    except GetParameterError as exc:
        raise SecretUnavailable("could not read a secret from Secrets Manager") from exc
    if not isinstance(value, str) or not value.strip():
        raise SecretUnavailable("the secret has no string value")
    return value.strip()


def read_secret_values(secret_id: str, *, max_age: int) -> list[str]:
    """A secret holding one or more whitespace-separated values (old and new keys during a rotation).

    Raises:
        SecretUnavailable: the secret could not be read.
    """
    return read_secret(secret_id, max_age=max_age).split()
