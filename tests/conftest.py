"""Fixtures shared by every suite: a clean process for each test, moto with the template's resources, the stand-in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from devstack.pipeline import Pipeline, pipeline_environment
from devstack.resources import LOCAL_SECRETS, create_resources
from devstack.sphere_standin import SphereStandIn
from webhook_adapter import runtime
from webhook_adapter.store import EventStore

_BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "crm-sphere-webhooks",
    "POWERTOOLS_METRICS_NAMESPACE": "CrmSphereWebhooks",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


# Powertools names a module's child logger after the service when the module is first imported: test modules
# import the shared package at collection, before any fixture runs, so the service is named for the whole session
# (as the template names it for the Lambda), and every child logger reaches the service logger's JSON handler.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", _BASE_ENV["POWERTOOLS_SERVICE_NAME"])


@pytest.fixture(autouse=True)
def clean_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Offline AWS credentials, no endpoint leaking in from the shell, and no cached settings, clients or secrets."""
    for name, value in _BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def standin() -> Iterator[SphereStandIn]:
    """The Sphere stand-in on a free loopback port, with its seeded customers."""
    with SphereStandIn(token=LOCAL_SECRETS["SphereTokenSecretArn"], port=0) as server:
        yield server


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch, standin: SphereStandIn) -> Iterator[Pipeline]:
    """Both functions on moto (resources from template.yaml) delivering to the stand-in; retries without delay."""
    with mock_aws():
        resources = create_resources(
            dynamodb=boto3.client("dynamodb"),
            sqs=boto3.client("sqs"),
            secretsmanager=boto3.client("secretsmanager"),
        )
        for name, value in pipeline_environment(resources, standin.base_url).items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        store = EventStore(boto3.client("dynamodb"), resources.table_name, 90)
        yield Pipeline(resources, standin, boto3.client("sqs"), store)
