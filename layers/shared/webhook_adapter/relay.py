"""Events another AWS service delivers to the receive function: Salesforce's Event Relay through EventBridge.

An EventBridge rule on the partner event bus invokes the receive function asynchronously with the event.
Nobody waits for an answer, so what HTTP sources say with a status code is said here by raising or not:

- a storage or queue failure raises: Lambda retries the event (twice, then the function's on-failure
  handling), and the dedup keys make a retry of what was already queued a duplicate;
- an event that is not a change event the adapter can read is recorded as refused (why, and a digest of
  it) and not raised: a retry would not fix it;
- an event from another partner source or of another type (a rule matching more than it should) is
  logged and dropped.

The record id is the contact, without the org id in front: one deployment's rule listens to one org's
relay, and its record reads go to that org (Salesforce ids are unique within an org).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook_adapter.api import receiver
from webhook_adapter.errors import AdapterError, InvalidPayload
from webhook_adapter.receive import Receiver
from webhook_adapter.runtime import cached
from webhook_adapter.salesforce_fields import CDC_DETAIL_TYPE, CDC_NAME, CDC_PARTNER_SOURCE_PREFIX
from webhook_adapter.telemetry import count

if TYPE_CHECKING:
    from webhook_adapter.sources.salesforce_cdc import SalesforceCdcSource

__all__ = ["RELAY_SOURCES", "handle_relay_event", "is_relay_event"]

logger = Logger(child=True)

_REFUSED = 400

RELAY_SOURCES = frozenset({CDC_NAME})
"""Sources that reach the receive function through EventBridge, not a route: no ``SOURCE_MODULES`` entry."""


class _EventBridgeEvent(BaseModel):
    """The EventBridge envelope: what the relay checks before the Salesforce event inside it."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Annotated[str, Field(max_length=256)]
    detail_type: Annotated[str, Field(alias="detail-type", max_length=256)]
    detail: Any = None


def is_relay_event(event: Mapping[str, Any]) -> bool:
    """Whether the receive function's input is an EventBridge event rather than an HTTP API request."""
    return "detail-type" in event and "source" in event and "requestContext" not in event


@cached
def _source() -> SalesforceCdcSource:
    """The source, built on the first relay event: an HTTP-only container never loads it."""
    from webhook_adapter.sources.salesforce_cdc import build  # noqa: PLC0415 - imported on first use

    return build()


def handle_relay_event(event: Mapping[str, Any], *, build: Callable[[], Receiver] = receiver) -> dict[str, Any]:
    """Queue and record what one EventBridge event brings; the summary is only logged by Lambda.

    Raises:
        StorageUnavailable: the table or the queue could not take it now (Lambda retries the event).
        pydantic.ValidationError: the receive function or the source is misconfigured (retried, then
            the on-failure handling has it: fixing the setting and redriving recovers it).
    """
    received_at = int(time.time() * 1000)
    try:
        envelope = _EventBridgeEvent.model_validate(event)
    except ValidationError:
        logger.warning("relay event ignored: not an EventBridge event")
        return {"ignored": "not an EventBridge event"}
    if not envelope.source.startswith(CDC_PARTNER_SOURCE_PREFIX) or (envelope.detail_type != CDC_DETAIL_TYPE):
        # The names are AWS's and Salesforce's, not contact data: logged so a rule matching too much shows.
        logger.warning("relay event ignored", event_source=envelope.source[:256], detail_type=envelope.detail_type)
        count("RelayEventsIgnored", 1, source=CDC_NAME)
        return {"ignored": "not a Salesforce ContactChangeEvent"}
    take = build()
    try:
        receipt = take.accept(
            CDC_NAME, _source().parse(envelope.detail), received_at=received_at, correlation_id=envelope.id
        )
    except InvalidPayload as exc:
        _record_refusal(take, envelope, exc, event, received_at)
        return {"refused": exc.code}
    except AdapterError as exc:
        logger.error("relay event not accepted, Lambda retries it", code=exc.code, error=exc.message)
        raise
    return receipt.as_json()


def _record_refusal(
    take: Receiver, envelope: _EventBridgeEvent, exc: InvalidPayload, event: Mapping[str, Any], received_at: int
) -> None:
    """Record a change event that cannot be read (a digest of it, never its values).

    Raises:
        StorageUnavailable: the record could not be written (Lambda retries: the refusal is its only trace).
    """
    logger.warning("relay event refused", event_id=envelope.id, code=exc.code, error=exc.message)
    count("RequestsRefused", 1, source=CDC_NAME, code=exc.code)
    take.store.record_refused(
        request_id=f"eventbridge-{envelope.id}",
        source=CDC_NAME,
        status_code=_REFUSED,
        code=exc.code,
        message=exc.message,
        body=json.dumps(event, sort_keys=True, default=repr).encode("utf-8", errors="replace"),
        now_ms=received_at,
    )
