"""Replay function: run from the Lambda console's Test tab (or `sam remote invoke`) to replay changes (see README)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhook_adapter.replay import replay_event

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The test event names what to replay (events, a status in a window, a contact, the dead-letter queue)."""
    return replay_event(event)
