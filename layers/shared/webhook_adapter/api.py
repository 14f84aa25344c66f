"""HTTP at the rim of the receive step: API Gateway (payload 2.0) in, the answer in the source's format out.

Also the receive function's wiring (``receiver()``), built once per warm container.

The one place where errors become status codes. Every 4xx is recorded (why, and a digest of the
body, never the body); no answer repeats a secret, a signature or a payload value.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import ValidationError

from webhook_adapter import aws
from webhook_adapter.enqueue import ChangeQueue
from webhook_adapter.errors import AdapterError, InvalidPayload
from webhook_adapter.receive import Receiver
from webhook_adapter.runtime import cached
from webhook_adapter.secrets import read_secret_values
from webhook_adapter.settings import receive_settings
from webhook_adapter.sources import WebhookRequest
from webhook_adapter.sources.base import Answer, describe_validation_error, json_answer
from webhook_adapter.store import EventStore
from webhook_adapter.telemetry import count

__all__ = ["answer_webhook", "error_body", "receiver", "request_from_event", "unexpected_answer"]

logger = Logger(child=True)

_CLIENT_ERROR = 400
_SERVER_ERROR = 500
_ACCEPTED = 202


@cached
def receiver() -> Receiver:
    """The receive step of this container.

    Raises:
        pydantic.ValidationError: the receive settings are missing or invalid.
    """
    settings = receive_settings()
    return Receiver(
        settings=settings,
        store=EventStore(aws.dynamodb(), settings.table_name, settings.outcome_ttl_days),
        queue=ChangeQueue(aws.sqs(), settings.queue_url),
        secrets=lambda secret_id: read_secret_values(secret_id, max_age=settings.secret_max_age_seconds),
    )


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON every error answer carries."""
    return {"error": {"code": code, "message": message}}


def request_from_event(
    event: APIGatewayProxyEventV2, source: str, *, public_url: str, received_at: float
) -> WebhookRequest:
    """The CRM's request from an API Gateway HTTP API event: raw body bytes, lower-cased headers.

    Raises:
        InvalidPayload: the body is flagged base64 but is not.
    """
    raw = event.body or ""
    if event.is_base64_encoded:
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidPayload("request body is not valid base64") from exc
    else:
        try:
            body = raw.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: a direct invoke or a console test event can send one
            raise InvalidPayload("request body is not valid UTF-8 text") from exc
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    return WebhookRequest(
        source=source,
        method=event.request_context.http.method.upper(),
        url=public_url,
        headers=headers,
        body=body,
        received_at=received_at,
    )


def answer_webhook(event: APIGatewayProxyEventV2, source: str, *, build: Callable[[], Receiver] = receiver) -> Answer:
    """Receive one webhook and answer in the source's format: ``202`` with the accepted event ids, or an error.

    Never raises: bad input gets its 4xx (and is recorded), a failure to store gets a 5xx so the
    CRM retries, and a misconfiguration gets a 500 that names the setting, not its value. Sources
    that do not speak JSON (Salesforce's SOAP) render the same outcome their own way.
    """
    received_at = time.time()
    body = b""
    try:
        receiver = build()
    except ValidationError as exc:
        logger.error("receive function is misconfigured", problems=describe_validation_error(exc))
        return json_answer(
            _SERVER_ERROR, error_body("misconfigured", "the receive function is not configured correctly")
        )
    render = _renderer(receiver, source)
    try:
        public_url = receiver.settings.public_url(f"/webhooks/{source}", event.raw_query_string or "")
        request = request_from_event(event, source, public_url=public_url, received_at=received_at)
        body = request.body
        receipt = receiver.receive(request, correlation_id=event.request_context.request_id)
    except AdapterError as exc:
        if exc.status_code < _SERVER_ERROR:
            _record_refusal(receiver, event, source, exc, body, received_at)
        else:
            logger.error("webhook not accepted, CRM will retry", source=source, code=exc.code, error=exc.message)
        return render(exc.status_code, error_body(exc.code, exc.message))
    except ValidationError as exc:
        logger.error("source is misconfigured", source=source, problems=describe_validation_error(exc))
        return render(_SERVER_ERROR, error_body("misconfigured", f"the {source} source is not configured correctly"))
    if receipt.handshake is not None:
        return receipt.handshake
    return render(_ACCEPTED, receipt.as_json())


def unexpected_answer(source: str, *, build: Callable[[], Receiver] = receiver) -> Answer:
    """A fault of ours, not of the request: a 500 in the source's format (the CRM retries), naming no detail."""
    problem = error_body("internal_error", "the webhook could not be processed; retry later")
    try:
        render = _renderer(build(), source)
    except ValidationError:  # the receive function itself is misconfigured: no source to ask
        render = json_answer
    return render(_SERVER_ERROR, problem)


def _renderer(receiver: Receiver, source: str) -> Callable[[int, Mapping[str, Any]], Answer]:
    """How ``source`` wants its answers; JSON for a name that is no enabled source or one that is misconfigured."""
    try:
        return receiver.source_for(source).answer
    except (AdapterError, ValidationError):
        return json_answer


def _record_refusal(
    receiver: Receiver, event: APIGatewayProxyEventV2, source: str, exc: AdapterError, body: bytes, received_at: float
) -> None:
    logger.warning("webhook refused", source=source[:64], status=exc.status_code, code=exc.code, error=exc.message)
    # The path segment is unauthenticated: only known sources become a metric dimension (bounded cost).
    known = source if source in receiver.settings.source_names else "unknown"
    count("RequestsRefused", 1, source=known, code=exc.code)
    try:
        receiver.store.record_refused(
            request_id=event.request_context.request_id or f"local-{received_at}",
            source=source[:64],
            status_code=exc.status_code,
            code=exc.code,
            message=exc.message,
            body=body,
            now_ms=int(received_at * 1000),
        )
    except AdapterError as store_error:
        # The answer stays the 4xx it is: a failure to record it must not make the CRM retry bad input.
        logger.error("could not record the refused request", code=store_error.code)
