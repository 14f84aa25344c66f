"""Deliver function: SQS FIFO event source. Applies each contact's changes to Sphere, in order."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhook_adapter.consume import deliver_record

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A failed message fails the rest of its contact's messages in the batch (their order is kept);
# other contacts' messages go on.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# A batch whose every message failed is reported like any other (item failures), not as a crash.
processor.raise_on_entire_batch_failure = False


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Deliver one contact change; raising reports the message as a batch item failure."""
    deliver_record(record)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """SQS event source mapping entry point (``ReportBatchItemFailures``)."""
    metrics.add_metric(name="ChangesReceived", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    return process_partial_response(
        event=event,
        record_handler=record_handler,
        processor=processor,
        context=context,
    )
