"""Business metrics with a ``source`` dimension, as CloudWatch embedded metric format (no API call, no cost per put)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

__all__ = ["count"]


def count(name: str, value: int, *, source: str, **dimensions: str) -> None:
    """Emit one count metric, dimensioned by source (and any extra dimension), right away.

    Honours ``POWERTOOLS_METRICS_DISABLED`` (Powertools' ``single_metric`` itself does not).
    """
    if value <= 0 or is_metrics_disabled():
        return
    with single_metric(
        name=name, unit=MetricUnit.Count, value=value, default_dimensions={"source": source[:64], **dimensions}
    ):
        pass
