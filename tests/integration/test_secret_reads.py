"""Secret reads on moto: cached for ``max_age``, refetched on ``refresh`` or after ``runtime.reset()``, one session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from webhook_adapter import aws, runtime
from webhook_adapter.secrets import SecretUnavailable, read_secret, read_secret_values, secrets_provider

SECRET_ID = "local/test-secret"


@pytest.fixture
def reads() -> Iterator[list[str]]:
    """A secret in moto (two whitespace-separated values), and the secret ids the adapter asks Secrets Manager for."""
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=" old-key\nnew-key ")
        asked: list[str] = []
        runtime.reset()

        def count(params: dict[str, Any], **_: Any) -> None:
            asked.append(params["SecretId"])

        aws.secretsmanager().meta.events.register("provide-client-params.secrets-manager.GetSecretValue", count)
        yield asked


def test_a_secret_is_read_once_per_max_age_and_again_when_refreshed(reads: list[str]) -> None:
    # Given a secret read once
    assert read_secret(SECRET_ID, max_age=300) == "old-key\nnew-key"

    # When it is read again within max_age, then with refresh
    again = read_secret_values(SECRET_ID, max_age=300)
    refreshed = read_secret(SECRET_ID, max_age=300, refresh=True)

    # Then the second read came from the container's cache, the refresh from Secrets Manager
    assert again == ["old-key", "new-key"]
    assert refreshed == "old-key\nnew-key"
    assert reads == [SECRET_ID, SECRET_ID]


def test_reset_forgets_the_cached_secret(reads: list[str]) -> None:
    # Given a secret read and cached
    read_secret(SECRET_ID, max_age=300)

    # When the container's caches are reset and the secret is read again
    runtime.reset()
    aws.secretsmanager().meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: reads.append(params["SecretId"])
    )
    read_secret(SECRET_ID, max_age=300)

    # Then it was fetched again, by a new provider
    assert reads == [SECRET_ID, SECRET_ID]


def test_every_client_and_the_secrets_provider_come_from_the_containers_one_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the container's session, watched for the clients it creates
    with mock_aws():
        runtime.reset()
        session = aws.session()
        created: list[str] = []
        make_client: Callable[..., Any] = session.client

        def client(service_name: str, *args: Any, **kwargs: Any) -> Any:
            created.append(service_name)
            return make_client(service_name, *args, **kwargs)

        monkeypatch.setattr(session, "client", client)

        # When every client and the secrets provider are asked for, twice
        for _ in range(2):
            provider = secrets_provider()
            clients = (aws.dynamodb(), aws.sqs(), aws.secretsmanager())

    # Then the session made each client once, and the provider reads through the Secrets Manager one
    assert sorted(created) == ["dynamodb", "secretsmanager", "sqs"]
    assert provider.client is clients[2]


@pytest.mark.parametrize(
    ("secret_id", "why"),
    [
        ("local/absent", "could not read a secret from Secrets Manager"),
        ("local/blank", "the secret has no string value"),
    ],
)
def test_an_unreadable_secret_is_secret_unavailable(reads: list[str], secret_id: str, why: str) -> None:
    # Given a secret that does not exist, and one holding only whitespace
    boto3.client("secretsmanager").create_secret(Name="local/blank", SecretString="  ")

    # When it is read
    with pytest.raises(SecretUnavailable) as raised:
        read_secret(secret_id, max_age=300)

    # Then the error says why without naming a value
    assert str(raised.value) == why
