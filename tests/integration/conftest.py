"""Fixtures the integration suites share."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.pipeline import Pipeline
from webhook_adapter import aws


@pytest.fixture
def visibility_changes(pipeline: Pipeline) -> list[tuple[str, int]]:
    """Every ``ChangeMessageVisibility`` the adapter asks for: (receipt handle, seconds)."""
    calls: list[tuple[str, int]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        calls.append((params["ReceiptHandle"], int(params["VisibilityTimeout"])))

    aws.sqs().meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", spy)
    return calls
