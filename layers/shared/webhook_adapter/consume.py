"""SQS at the rim of the deliver step: one queue message in, delivered or delayed for a retry.

Also the deliver function's wiring: the step and its collaborators, built once per warm container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from webhook_adapter import aws
from webhook_adapter.deliver import Delivery, RetryLater
from webhook_adapter.enqueue import ChangeQueue
from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.model import ContactChange
from webhook_adapter.runtime import cached, now_ms, on_reset
from webhook_adapter.secrets import read_secret
from webhook_adapter.settings import deliver_settings
from webhook_adapter.sphere import SphereClient
from webhook_adapter.store import EventStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

__all__ = ["change_queue", "deliver_record", "delivery"]

logger = Logger(child=True)


@cached
def delivery() -> Delivery:
    """The deliver step of this container, with its pooled Sphere client.

    Raises:
        pydantic.ValidationError: the deliver settings are missing or invalid.
    """
    settings = deliver_settings()

    def token(refresh: bool) -> str:
        return read_secret(settings.sphere_token_secret_id, max_age=settings.secret_max_age_seconds, refresh=refresh)

    sphere = SphereClient(
        str(settings.sphere_api_url),
        token,
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
    )
    on_reset(sphere.close)
    return Delivery(
        store=EventStore(aws.dynamodb(), settings.table_name, settings.outcome_ttl_days),
        sphere=sphere,
        settings=settings,
        now_ms=now_ms,
    )


@cached
def change_queue() -> ChangeQueue:
    """The queue the deliver function consumes (to delay a message it will retry)."""
    return ChangeQueue(aws.sqs(), deliver_settings().queue_url)


def deliver_record(record: SQSRecord) -> None:
    """Deliver one SQS message; on a transient failure delay it and raise so the batch reports it failed.

    Raises:
        RetryLater: the change will be retried after the delay set on the message.
        pydantic.ValidationError: the message body is not a contact change (it ends in the DLQ).
    """
    change = ContactChange.model_validate_json(record.body)
    attempt = int(record.attributes.approximate_receive_count or "1")
    try:
        delivery().deliver(change, attempt=attempt)
    except RetryLater as exc:
        try:
            change_queue().delay(record.receipt_handle, exc.delay_seconds)
        except StorageUnavailable:
            logger.warning("could not delay the message; it returns after the queue's visibility timeout")
        raise
