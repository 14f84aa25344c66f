"""Deliver function: SQS FIFO event source. Applies each contact's changes to Sphere, in order."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhook_adapter.consume import deliver_batch
from webhook_adapter.telemetry import flushed

logger = Logger()


@logger.inject_lambda_context
@flushed
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    """SQS event source mapping entry point (``ReportBatchItemFailures``): the messages to retry.

    A failed message fails the rest of its contact's messages in the batch (their order is kept);
    other contacts' messages go on.
    """
    records = list(SQSEvent(event).records)
    failed = deliver_batch(records, context.get_remaining_time_in_millis)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
