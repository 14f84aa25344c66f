"""Secrets from AWS Secrets Manager through Powertools Parameters, cached per warm container.

``max_age`` bounds how long a rotated secret goes unnoticed; ``refresh=True`` refetches at once
(Sphere answered 401: the key was rotated). Values are never logged nor put in an error message.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from webhook_adapter.errors import SecretUnavailable

__all__ = ["SecretUnavailable", "read_secret", "read_secret_values"]


def read_secret(secret_id: str, *, max_age: int, refresh: bool = False) -> str:
    """The secret's string value, from the container's cache unless older than ``max_age`` or ``refresh``.

    Raises:
        SecretUnavailable: Secrets Manager did not return a string value.
    """
    try:
        value = parameters.get_secret(secret_id, max_age=max_age, force_fetch=refresh)
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
