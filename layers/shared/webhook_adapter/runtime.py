"""Wiring: builds each step with its collaborators from the settings, once per warm container.

Handlers call ``receiver()`` and ``delivery()``; tests and the local stack call ``reset()`` after
changing the environment so the next call rebuilds everything against it.
"""

from __future__ import annotations

import time
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters

from webhook_adapter import aws
from webhook_adapter.enqueue import ChangeQueue
from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.model import ContactChange
from webhook_adapter.secrets import read_secret, read_secret_values
from webhook_adapter.settings import deliver_settings, receive_settings, reset_settings
from webhook_adapter.sources import get_source
from webhook_adapter.store import EventStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from webhook_adapter.deliver import Delivery
    from webhook_adapter.receive import Receiver

__all__ = ["change_queue", "deliver_record", "delivery", "now_ms", "receiver", "reset"]

logger = Logger(child=True)


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


@cache
def receiver() -> Receiver:
    """The receive step of this container.

    Raises:
        pydantic.ValidationError: the receive settings are missing or invalid.
    """
    from webhook_adapter.receive import Receiver  # noqa: PLC0415 - the deliver function never loads the receive path

    settings = receive_settings()
    return Receiver(
        settings=settings,
        store=EventStore(aws.dynamodb(), settings.table_name, settings.outcome_ttl_days),
        queue=ChangeQueue(aws.sqs(), settings.queue_url),
        secrets=lambda secret_id: read_secret_values(secret_id, max_age=settings.secret_max_age_seconds),
    )


def reset() -> None:
    """Forget every cached setting, client, source, secret and step."""
    reset_settings()
    aws.reset_clients()
    get_source.cache_clear()
    receiver.cache_clear()
    if delivery.cache_info().currsize:
        delivery().sphere.close()
    delivery.cache_clear()
    change_queue.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@cache
def delivery() -> Delivery:
    """The deliver step of this container, with its pooled Sphere client.

    Raises:
        pydantic.ValidationError: the deliver settings are missing or invalid.
    """
    from webhook_adapter.deliver import Delivery  # noqa: PLC0415 - the receive function never loads httpx
    from webhook_adapter.sphere import SphereClient  # noqa: PLC0415

    settings = deliver_settings()

    def token(refresh: bool) -> str:
        return read_secret(settings.sphere_token_secret_id, max_age=settings.secret_max_age_seconds, refresh=refresh)

    sphere = SphereClient(
        str(settings.sphere_api_url),
        token,
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
    )
    return Delivery(
        store=EventStore(aws.dynamodb(), settings.table_name, settings.outcome_ttl_days),
        sphere=sphere,
        settings=settings,
        now_ms=now_ms,
    )


@cache
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
    from webhook_adapter.deliver import RetryLater  # noqa: PLC0415 - see delivery()

    try:
        delivery().deliver(change, attempt=attempt)
    except RetryLater as exc:
        try:
            change_queue().delay(record.receipt_handle, exc.delay_seconds)
        except StorageUnavailable:
            logger.warning("could not delay the message; it returns after the queue's visibility timeout")
        raise
