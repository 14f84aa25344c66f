"""One dated table of public AWS prices, US East (N. Virginia), on-demand, without free tiers.

Transcribed from each service's public pricing page (named in ``source``) as known at
``PRICES_DATE``; this machine has no network to re-read them, so re-check the pages before
quoting a figure elsewhere: a price change is a one-line edit here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRICES", "PRICES_DATE", "Price"]

PRICES_DATE = "2026-11-26"
"""When this table was last compared with the pages named below."""


@dataclass(frozen=True, slots=True)
class Price:
    """A unit price in US dollars."""

    dollars: float
    unit: str
    source: str


PRICES = {
    "http_api_request": Price(
        1.00 / 1e6,
        "HTTP API request (each 512 KB counted as one), first 300 M a month",
        "Amazon API Gateway pricing, HTTP APIs",
    ),
    "lambda_request": Price(0.20 / 1e6, "Lambda request", "AWS Lambda pricing, requests"),
    "lambda_arm_gb_second": Price(
        0.0000133334,
        "GB-second of Lambda duration on arm64, first 7.5 bn GB-s a month",
        "AWS Lambda pricing, duration (Arm price), init included since August 2025",
    ),
    "sqs_fifo_request": Price(
        0.50 / 1e6,
        "SQS FIFO request (each started 64 KB of payload counted as one)",
        "Amazon SQS pricing, FIFO queues, first 100 bn requests a month",
    ),
    "dynamodb_write_unit": Price(
        0.625 / 1e6,
        "DynamoDB on-demand write request unit",
        "Amazon DynamoDB pricing, on-demand capacity, Standard table class",
    ),
    "dynamodb_read_unit": Price(
        0.125 / 1e6,
        "DynamoDB on-demand read request unit",
        "Amazon DynamoDB pricing, on-demand capacity, Standard table class",
    ),
    "dynamodb_storage_gb_month": Price(
        0.25, "GB-month of DynamoDB storage (Standard)", "Amazon DynamoDB pricing, data storage"
    ),
    "dynamodb_pitr_gb_month": Price(
        0.20, "GB-month of point-in-time recovery (continuous backups)", "Amazon DynamoDB pricing, backup and restore"
    ),
    "secrets_api_call": Price(0.05 / 10_000, "Secrets Manager API call", "AWS Secrets Manager pricing"),
    "logs_ingested_gb": Price(
        0.50, "GB of CloudWatch Logs ingested (Standard class; Lambda's first tier)", "Amazon CloudWatch pricing, Logs"
    ),
    "logs_stored_gb_month": Price(0.03, "GB-month of CloudWatch Logs archived", "Amazon CloudWatch pricing, Logs"),
    "xray_trace": Price(5.00 / 1e6, "X-Ray trace recorded", "AWS X-Ray pricing, traces recorded"),
    "snapstart_cache_gb_second": Price(
        0.0000015046,
        "GB-second a SnapStart snapshot of a published version is cached (Python, .NET; 3 hours at least)",
        "AWS Lambda pricing, SnapStart (for the paper evaluation only)",
    ),
    "snapstart_restore_gb": Price(
        0.0001397998,
        "GB restored from a SnapStart snapshot (each new execution environment)",
        "AWS Lambda pricing, SnapStart (for the paper evaluation only)",
    ),
}
"""Fixed monthly charges (a secret's $0.40, custom metrics, the event source mapping's idle polling) are left out:
they do not grow with the number of events."""
