"""Measure 4's arithmetic: counted calls and bytes of a scenario, times ``bench.prices``, per million events.

What the counts cannot say is an assumption, kept in ``ASSUMPTIONS`` and printed in BENCHMARKS.md:
AWS round-trip times (the in-process run answers instantly), Sphere's latency, how often a
container starts cold, X-Ray's sampling, what Lambda and API Gateway log per invocation, how long
items and logs are kept. Each figure is given at two ends: ``low`` (deliver invocations in full
batches, CPU as fast as here) and ``high`` (one message per deliver invocation, CPU at the share
of a vCPU the configured memory buys).
"""

# ruff: noqa: RUF001 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.prices import PRICES

__all__ = ["ASSUMPTIONS", "Assumptions", "CostLine", "price"]

_PLATFORM_LINES = (
    "START RequestId: 0f3c7a52-5d2e-4a57-9a63-3b1f5c2e8d41 Version: $LATEST\n"
    "END RequestId: 0f3c7a52-5d2e-4a57-9a63-3b1f5c2e8d41\n"
    "REPORT RequestId: 0f3c7a52-5d2e-4a57-9a63-3b1f5c2e8d41\tDuration: 45.67 ms\tBilled Duration: 46 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 131 MB\t\n"
)
"""Lambda's own lines for one invocation (text format, the template's default), as CloudWatch Logs receives them."""
_XRAY_SUFFIX = "XRAY TraceId: 1-6745f0a1-3c5d7e9f1a2b3c4d5e6f7a8b\tSegmentId: 4f6a8b0c2d4e6f80\tSampled: true\t"
_ACCESS_VALUES = {
    "$context.requestId": "CKXyQhX7IAMEbXw=",
    "$context.identity.sourceIp": "54.174.12.34",
    "$context.requestTime": "26/Nov/2026:10:00:00 +0000",
    "$context.routeKey": "POST /webhooks/{source}",
    "$context.path": "/webhooks/hubspot",
    "$context.status": "202",
    "$context.responseLength": "86",
    "$context.integrationStatus": "200",
    "$context.integrationLatency": "48",
    "$context.integrationErrorMessage": "-",
}


def _access_log_bytes() -> int:
    """One API access log line in the template's format, with typical values."""
    from devstack.resources import load_template

    api = load_template()["Resources"]["HttpApi"]["Properties"]
    line = str(api["AccessLogSettings"]["Format"])
    for variable, value in sorted(_ACCESS_VALUES.items(), key=lambda pair: -len(pair[0])):
        line = line.replace(variable, value)
    return len(line.encode()) + 1


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Everything the counts do not say; each one is stated in BENCHMARKS.md."""

    aws_latency_ms: dict[str, float] = field(
        default_factory=lambda: {"dynamodb": 6.0, "sqs": 12.0, "secrets-manager": 20.0}
    )
    """In-region round trip per request, added to billed duration (the in-process run answers at once)."""
    sphere_latency_ms: float = 100.0
    cold_start_share: float = 0.01
    xray_sampling: float = 0.05
    memory_gb: float = 0.25
    cpu_share_at_memory: float = 256 / 1769
    """Lambda gives one vCPU at 1,769 MB, in proportion below it."""
    outcome_months: float = 90 / 30.4
    item_overhead_bytes: int = 100
    log_retention_months: float = 1.0
    refresh_containers: int = 10
    """Warm containers of each function re-reading their secret every 300 s while a million events arrive."""
    api_rate_per_second: float = 100.0

    @property
    def platform_log_bytes(self) -> float:
        """Lambda's START/END/REPORT lines per invocation, X-Ray's suffix on the sampled ones."""
        return len(_PLATFORM_LINES.encode()) + self.xray_sampling * len(_XRAY_SUFFIX)

    @property
    def access_log_bytes(self) -> int:
        """The API's access log line per request."""
        return _access_log_bytes()

    @property
    def secret_refresh_calls_per_million(self) -> float:
        """Refreshes of both functions' containers while a million events arrive at the API's throttle."""
        return 2 * self.refresh_containers * (1e6 / self.api_rate_per_second) / 300


ASSUMPTIONS = Assumptions()


@dataclass(frozen=True, slots=True)
class CostLine:
    """One priced item, dollars per million events, at both ends of the range."""

    item: str
    low: float
    high: float
    basis: str


def _gb_seconds(milliseconds: float) -> float:
    return milliseconds / 1000 * ASSUMPTIONS.memory_gb


def _billed_ms(counts: dict[str, Any], cpu_scale: float) -> float:
    """A function's billed milliseconds: its own time (scaled), plus the AWS round trips it made."""
    latency = ASSUMPTIONS.aws_latency_ms
    waits = float(sum(count * latency[operation.split(".")[0]] for operation, count in counts["aws_calls"].items()))
    own = float(sum(counts["net_ms"])) * cpu_scale
    return own + waits + 0.5 * int(counts["invocations"])


def price(counted: dict[str, Any], init_ms: dict[str, float]) -> list[CostLine]:
    """Dollars per million events for one scenario.

    ``low``: deliver invocations as counted (full batches of the queue's backlog) and CPU as fast as
    here; ``high``: one message per deliver invocation (a trickle) and CPU scaled to the share of a
    vCPU the configured memory gets. ``init_ms``: each function's import + first call, as shipped.
    """
    a, p = ASSUMPTIONS, PRICES
    per_million = 1e6 / counted["events"]
    receive, deliver, units = counted["receive"], counted["deliver"], counted["units"]
    scale_high = 1 / a.cpu_share_at_memory
    sphere_ms = counted["sphere_calls"] * a.sphere_latency_ms
    invocations = {
        "low": receive["invocations"] + deliver["invocations"],
        "high": receive["invocations"] + counted["messages"],
    }
    lines: list[tuple[str, float, float, str]] = []

    def add(item: str, low: float, high: float, basis: str) -> None:
        lines.append((item, low * per_million, high * per_million, basis))

    add(
        "API Gateway HTTP API",
        counted["webhooks"] * p["http_api_request"].dollars,
        counted["webhooks"] * p["http_api_request"].dollars,
        f"{counted['webhooks']} requests for {counted['events']} events (bodies under 512 KB)",
    )
    add(
        "Lambda requests",
        invocations["low"] * p["lambda_request"].dollars,
        invocations["high"] * p["lambda_request"].dollars,
        f"{receive['invocations']} receive + {deliver['invocations']} deliver "
        f"(high: {counted['messages']}, one per message)",
    )
    low_ms = _billed_ms(receive, 1.0) + _billed_ms(deliver, 1.0) + sphere_ms
    high_ms = _billed_ms(receive, scale_high) + _billed_ms(deliver, scale_high) + sphere_ms
    gb_s = p["lambda_arm_gb_second"].dollars
    add(
        "Lambda duration",
        _gb_seconds(low_ms) * gb_s,
        _gb_seconds(high_ms) * gb_s,
        f"{low_ms / counted['events']:.1f}–{high_ms / counted['events']:.1f} ms per event at 256 MB, "
        f"{counted['sphere_calls']} Sphere calls at {a.sphere_latency_ms:.0f} ms",
    )
    share = a.cold_start_share
    init_low = share * (receive["invocations"] * init_ms["receive"] + deliver["invocations"] * init_ms["deliver"])
    init_high = (
        share * (receive["invocations"] * init_ms["receive"] + counted["messages"] * init_ms["deliver"]) * scale_high
    )
    add(
        "Lambda init (billed)",
        _gb_seconds(init_low) * gb_s,
        _gb_seconds(init_high) * gb_s,
        f"{share:.0%} of invocations start cold: "
        f"receive {init_ms['receive']:.0f} ms, deliver {init_ms['deliver']:.0f} ms",
    )
    sends = sum(
        count
        for operation, count in {**receive["aws_chunks"], **deliver["aws_chunks"]}.items()
        if operation.startswith("sqs.")
    )
    deletes = counted["esm_requests"].get("DeleteMessageBatch", 0)
    sqs_low = sends + counted["esm_chunks"] + deletes
    sqs_high = sends + 2 * counted["messages"]
    add(
        "SQS FIFO requests",
        sqs_low * p["sqs_fifo_request"].dollars,
        sqs_high * p["sqs_fifo_request"].dollars,
        f"{sends} sends, {counted['esm_chunks']} receives, {deletes} deletes "
        "(64 KB chunks; high: a receive and a delete per message)",
    )
    writes = units["write_table"] + units["write_index"]
    add(
        "DynamoDB writes",
        writes * p["dynamodb_write_unit"].dollars,
        writes * p["dynamodb_write_unit"].dollars,
        f"{writes / units['events']:.2f} write units per event ({units['write_index']} in the index)",
    )
    add(
        "DynamoDB reads",
        units["read"] * p["dynamodb_read_unit"].dollars,
        units["read"] * p["dynamodb_read_unit"].dollars,
        f"{units['read'] / units['events']:.2f} read units per event "
        f"({units['read_keys']} keys, {units['read_missing']} missing)",
    )
    stored_gb = (
        units["events"] * (units["event_item_bytes"] + a.item_overhead_bytes) * (1 + units["indexed_share"]) / 1e9
    )
    storage = (
        stored_gb * a.outcome_months * (p["dynamodb_storage_gb_month"].dollars + p["dynamodb_pitr_gb_month"].dollars)
    )
    storage *= counted["events"] / units["events"]
    add(
        "DynamoDB storage + PITR",
        storage,
        storage,
        f"{units['event_item_bytes']:.0f} B per event item + 100 B overhead, kept {a.outcome_months:.1f} months",
    )
    refresh = a.secret_refresh_calls_per_million / per_million
    secrets = {bound: share * count + refresh for bound, count in invocations.items()}
    add(
        "Secrets Manager",
        secrets["low"] * p["secrets_api_call"].dollars,
        secrets["high"] * p["secrets_api_call"].dollars,
        "a read per cold start (cached after it), and a refresh every 300 s per warm container",
    )
    log_low = receive["log_bytes"] + deliver["log_bytes"] + invocations["low"] * a.platform_log_bytes
    log_low += counted["webhooks"] * a.access_log_bytes
    log_high = log_low + (invocations["high"] - invocations["low"]) * a.platform_log_bytes
    per_gb = p["logs_ingested_gb"].dollars + p["logs_stored_gb_month"].dollars * a.log_retention_months
    add(
        "CloudWatch Logs",
        log_low / 1e9 * per_gb,
        log_high / 1e9 * per_gb,
        f"{log_low / counted['events']:,.0f} B per event (functions' lines, Lambda's START/END/REPORT, API access log)",
    )
    traces = a.xray_sampling * p["xray_trace"].dollars
    add(
        "X-Ray traces",
        invocations["low"] * traces,
        invocations["high"] * traces,
        f"{a.xray_sampling:.0%} of invocations sampled",
    )
    return [CostLine(*line) for line in lines]
