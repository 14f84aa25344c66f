"""Receive function: ``POST /webhooks/{source}`` on the HTTP API, and EventBridge events (Salesforce's Event Relay).

Answers fast; delivery happens later.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhook_adapter.api import answer_webhook, error_body, unexpected_answer
from webhook_adapter.relay import handle_relay_event, is_relay_event
from webhook_adapter.sources.base import Answer, json_answer
from webhook_adapter.telemetry import flushed

logger = Logger()
app = APIGatewayHttpResolver()


def _response(answer: Answer) -> Response[str]:
    return Response(
        status_code=answer.status, content_type=answer.content_type, body=answer.body, headers=dict(answer.headers)
    )


@app.post("/webhooks/<source>")
def webhook(source: str) -> Response[str]:
    """Verify, queue and record the CRM's webhook; 202 with the accepted event ids (or the source's own answer)."""
    return _response(answer_webhook(app.current_event, source))


@app.not_found
def not_found(_: Exception) -> Response[str]:
    """Anything but ``POST /webhooks/{source}``."""
    return _response(
        json_answer(404, error_body("not_found", "no such route; webhooks are POSTed to /webhooks/{source}"))
    )


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def unexpected(_: Exception) -> Response[str]:
    """A fault of ours, not of the request: a 500 in the source's format (the CRM retries), the traceback logged."""
    logger.exception("receive failed unexpectedly")
    return _response(unexpected_answer((app.current_event.path_parameters or {}).get("source", "")))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@flushed
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) entry point; an EventBridge rule's event goes to the relay instead."""
    if is_relay_event(event):
        return handle_relay_event(event)
    return app.resolve(event, context)
