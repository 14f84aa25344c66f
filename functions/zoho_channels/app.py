"""Zoho channel function: on a schedule, keeps Zoho CRM's notification channel open (it expires within a day)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhook_adapter.zoho_channels import renew_from_settings

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str | None]:
    """EventBridge Scheduler entry point: renew the channel; an error fails the run (the function's alarm sees it)."""
    renewal = renew_from_settings()
    expires_at = renewal.expires_at.isoformat() if renewal.expires_at is not None else None
    logger.info("zoho channel renewed", channel_id=renewal.channel_id, method=renewal.method, expires_at=expires_at)
    return {"channelId": renewal.channel_id, "method": renewal.method, "expiresAt": expires_at}
