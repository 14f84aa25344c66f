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

import math
from dataclasses import dataclass, field
from typing import Any

from bench.prices import PRICES

__all__ = ["ASSUMPTIONS", "VCPU_MB", "Assumptions", "CostLine", "cpu_stretch", "function_memory_mb", "price"]

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


VCPU_MB = 1769
"""Lambda gives a function one full vCPU at 1,769 MB of memory, and CPU in proportion below it."""


def cpu_stretch(memory_mb: int) -> float:
    """How much longer CPU-bound work takes at ``memory_mb`` than on one full vCPU."""
    return max(1.0, VCPU_MB / memory_mb)


def _deliver_threads() -> int:
    """How many Sphere calls a deliver invocation makes at once by default (``DELIVER_THREADS``)."""
    from webhook_adapter.settings import DeliverSettings

    return int(DeliverSettings.model_fields["deliver_threads"].default)


def _tracing_mode() -> str:
    """The template's default ``TracingMode``."""
    from devstack.resources import load_template

    return str(load_template()["Parameters"]["TracingMode"]["Default"])


def function_memory_mb() -> dict[str, int]:
    """Each function's ``MemorySize`` in the template (its own, else the Globals')."""
    from devstack.resources import load_template

    template = load_template()
    default = int(template["Globals"]["Function"].get("MemorySize", 128))
    resources = template["Resources"]
    return {
        name: int(resources[f"{name.capitalize()}Function"]["Properties"].get("MemorySize", default))
        for name in ("receive", "deliver")
    }


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Everything the counts do not say; each one is stated in BENCHMARKS.md."""

    aws_latency_ms: dict[str, float] = field(
        default_factory=lambda: {"dynamodb": 6.0, "sqs": 12.0, "secrets-manager": 20.0}
    )
    """In-region round trip per request, added to billed duration (the in-process run answers at once)."""
    sphere_latency_ms: float = 100.0
    crm_latency_ms: float = 100.0
    """A record read from a CRM's API (HubSpot's contact read), waited for before the Sphere call."""
    deliver_threads: int = field(default_factory=_deliver_threads)
    """Sphere calls one deliver invocation makes at once (its thread pool): calls in parallel wait together."""
    cold_start_share: float = 0.01
    xray_sampling: float = field(default_factory=lambda: 0.05 if _tracing_mode() == "Active" else 0.0)
    """Share of invocations recorded as X-Ray traces: Lambda's default sampling under ``TracingMode`` Active."""
    memory_mb: dict[str, int] = field(default_factory=function_memory_mb)
    """Each function's configured memory: what a GB-second is counted on, and the CPU it buys."""
    outcome_months: float = 90 / 30.4
    item_overhead_bytes: int = 100
    log_retention_months: float = 1.0
    refresh_containers: int = 10
    """Warm containers of each function re-reading their secret every 300 s while a million events arrive."""
    api_rate_per_second: float = 100.0

    def memory_gb(self, function: str) -> float:
        """``function``'s memory in GB, as Lambda bills it (MB ÷ 1,024)."""
        return self.memory_mb[function] / 1024

    def cpu_scale(self, function: str) -> float:
        """How much longer CPU-bound work takes at ``function``'s memory than on one full vCPU."""
        return cpu_stretch(self.memory_mb[function])

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


def _gb_seconds(function: str, milliseconds: float) -> float:
    return milliseconds / 1000 * ASSUMPTIONS.memory_gb(function)


def _billed_ms(counts: dict[str, Any], cpu_scale: float) -> float:
    """A function's billed milliseconds: its own time (scaled), plus the AWS round trips it made."""
    latency = ASSUMPTIONS.aws_latency_ms
    waits = float(sum(count * latency[operation.split(".")[0]] for operation, count in counts["aws_calls"].items()))
    own = float(sum(counts["net_ms"])) * cpu_scale
    return own + waits + 0.5 * int(counts["invocations"])


def _sphere_wait_ms(counted: dict[str, Any], *, high: bool) -> float:
    """Deliver's billed wait for Sphere: per invocation, its calls in rounds of ``deliver_threads``.

    ``high`` (one message per invocation): every call waits alone.
    """
    latency = ASSUMPTIONS.sphere_latency_ms
    if high:
        return float(counted["sphere_calls"]) * latency
    threads = ASSUMPTIONS.deliver_threads
    return float(sum(math.ceil(calls / threads) for calls in counted["deliver"]["sphere_calls"])) * latency


def _read_wait_ms(counted: dict[str, Any], *, high: bool) -> float:
    """Deliver's billed wait for the CRM's record reads, in rounds of ``deliver_threads`` as Sphere's calls."""
    latency = ASSUMPTIONS.crm_latency_ms
    reads = counted["deliver"].get("crm_reads", [])
    if high:
        return float(sum(reads)) * latency
    threads = ASSUMPTIONS.deliver_threads
    return float(sum(math.ceil(count / threads) for count in reads)) * latency


def _duration(counted: dict[str, Any], *, high: bool) -> tuple[float, float]:
    """Both functions' billed GB-seconds and milliseconds; ``high`` scales CPU to each one's share of a vCPU."""
    receive_ms = _billed_ms(counted["receive"], ASSUMPTIONS.cpu_scale("receive") if high else 1.0)
    deliver_ms = _billed_ms(counted["deliver"], ASSUMPTIONS.cpu_scale("deliver") if high else 1.0)
    deliver_ms += _sphere_wait_ms(counted, high=high) + _read_wait_ms(counted, high=high)
    return _gb_seconds("receive", receive_ms) + _gb_seconds("deliver", deliver_ms), receive_ms + deliver_ms


def price(counted: dict[str, Any], init_ms: dict[str, float]) -> list[CostLine]:
    """Dollars per million events for one scenario.

    ``low``: deliver invocations as counted (full batches of the queue's backlog) and CPU as fast as
    here; ``high``: one message per deliver invocation (a trickle) and CPU scaled to the share of a
    vCPU the configured memory gets. ``init_ms``: each function's import + first call, as shipped.
    """
    a, p = ASSUMPTIONS, PRICES
    per_million = 1e6 / counted["events"]
    receive, deliver, units = counted["receive"], counted["deliver"], counted["units"]
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
    (low_gb_s, low_ms), (high_gb_s, high_ms) = _duration(counted, high=False), _duration(counted, high=True)
    gb_s = p["lambda_arm_gb_second"].dollars
    memory = f"receive {a.memory_mb['receive']} MB, deliver {a.memory_mb['deliver']} MB"
    add(
        "Lambda duration",
        low_gb_s * gb_s,
        high_gb_s * gb_s,
        f"{low_ms / counted['events']:.1f}–{high_ms / counted['events']:.1f} ms per event ({memory}), "
        f"{counted['sphere_calls']} Sphere calls at {a.sphere_latency_ms:.0f} ms"
        + (
            f" and {counted['crm_reads']} CRM record reads at {a.crm_latency_ms:.0f} ms"
            if counted.get("crm_reads")
            else ""
        )
        + f", {a.deliver_threads} at once per invocation (low)",
    )
    share = a.cold_start_share
    init_low = share * (
        _gb_seconds("receive", receive["invocations"] * init_ms["receive"])
        + _gb_seconds("deliver", deliver["invocations"] * init_ms["deliver"])
    )
    init_high = share * (
        _gb_seconds("receive", receive["invocations"] * init_ms["receive"] * a.cpu_scale("receive"))
        + _gb_seconds("deliver", counted["messages"] * init_ms["deliver"] * a.cpu_scale("deliver"))
    )
    add(
        "Lambda init (billed)",
        init_low * gb_s,
        init_high * gb_s,
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
