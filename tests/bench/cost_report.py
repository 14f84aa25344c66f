"""Measure 4's section: each scenario's dollars per million events, line by line, against the issue's targets."""

# ruff: noqa: RUF001 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

from typing import Any

from bench.prices import PRICES, PRICES_DATE
from bench.pricing import ASSUMPTIONS, price
from bench.report import Row, Section, markdown_table

__all__ = ["TARGETS", "cost_section"]

TARGETS = {"single": 5.50, "batch": 2.00}
"""Issue 11's targets, dollars per million events."""
_TITLES = {
    "single": "one change per webhook",
    "batch": "HubSpot batches of 100 over 10 contacts",
    "read": "one redacted value per webhook, the contact read from HubSpot",
}


def cost_section(raw: dict[str, Any], init_ms: dict[str, float]) -> Section:
    """Rows per scenario, the priced lines, the assumptions and the price table."""
    rows, details = [], []
    for name in (name for name in _TITLES if name in raw):
        counted = raw[name]
        lines = price(counted, init_ms)
        low, high = sum(line.low for line in lines), sum(line.high for line in lines)
        target = TARGETS.get(name)
        against = (
            (f"target ${target:.2f}", f"{low / target:.2f}×–{high / target:.2f}×", f"≤ ${target:.2f}/M")
            if target is not None
            else ("", "", "")
        )
        rows.append(Row("4", f"cost per million events, {_TITLES[name]}", f"${low:.2f}–{high:.2f}", "", *against))
        log_bytes = (counted["receive"]["log_bytes"] + counted["deliver"]["log_bytes"]) / counted["events"]
        rows.append(Row("4", f"function log bytes per event, {_TITLES[name]}", f"{log_bytes:,.0f} B"))
        details += [
            "",
            f"**{_TITLES[name]}** — {counted['events']} events, {counted['webhooks']} webhooks, "
            f"{counted['messages']} messages, {counted['sphere_calls']} Sphere calls, "
            f"{counted.get('crm_reads', 0)} CRM record reads"
            + (
                f" (misses the target by ${low - target:+.2f} to ${high - target:+.2f} per million):"
                if target is not None
                else ":"
            ),
            "",
        ]
        table = [(line.item, f"${line.low:.3f}", f"${line.high:.3f}", line.basis) for line in lines]
        table.append(("**total**", f"**${low:.2f}**", f"**${high:.2f}**", ""))
        details += markdown_table(("item", "low $/M", "high $/M", "counted / basis"), table)
    latency = ASSUMPTIONS.aws_latency_ms
    method = [
        "Both handlers run in one process on moto with the template's resources, the stand-in answering at once; "
        "a local event source mapping receives batches of up to 10 and deletes what succeeded. Each scenario "
        "runs in a fresh stack after a warm-up that is not counted, twice: timed (handler wall time less moto's "
        "own; every AWS request and its 64 KB chunks; bytes the functions print at the template's INFO level, "
        "captured from standard output; Sphere calls) and metered (DynamoDB write units from "
        "`tests/devstack/write_units.py`, read units from each asked-for item's size, `tests/devstack/read_units.py`; "
        "event item sizes). Assumptions, each a named constant in `bench/pricing.py`:",
        "",
        f"- **low / high**: low = deliver invocations in full batches (a backlog) and CPU as fast as this machine; "
        f"high = one message per deliver invocation (a trickle: a receive, a delete, a request per message) and "
        f"CPU time ×{ASSUMPTIONS.cpu_scale('receive'):.1f} for receive and ×{ASSUMPTIONS.cpu_scale('deliver'):.1f} "
        f"for deliver (their MemorySize's share of a vCPU: {ASSUMPTIONS.memory_mb['receive']} and "
        f"{ASSUMPTIONS.memory_mb['deliver']} MB of the 1,769 MB that buy one).",
        f"- AWS round trips added to billed durations: DynamoDB {latency['dynamodb']:.0f} ms, SQS "
        f"{latency['sqs']:.0f} ms, Secrets Manager {latency['secrets-manager']:.0f} ms per request; Sphere "
        f"{ASSUMPTIONS.sphere_latency_ms:.0f} ms per PATCH, a deliver invocation's calls waiting in rounds of "
        f"{ASSUMPTIONS.deliver_threads} (its parallel calls; high: one call per invocation); +0.5 ms per invocation "
        "for billing's 1 ms rounding.",
        f"- Init billed: {ASSUMPTIONS.cold_start_share:.0%} of invocations start cold (AWS describes cold "
        f"starts as typically under 1 %), each billing measure 1's import + first call as shipped (receive "
        f"{init_ms['receive']:.0f} ms, deliver {init_ms['deliver']:.0f} ms).",
        "- SQS: the send calls' and the mapping's receive payloads in 64 KB chunks, one delete per batch; the "
        "mapping's idle long polling (a fixed monthly cost) is left out.",
        "- DynamoDB storage: each event item (measured size + DynamoDB's 100 B per item, twice when it is in the "
        f"index) kept {ASSUMPTIONS.outcome_months:.1f} months (`OutcomeTtlDays` 90), with point-in-time "
        "recovery billed on the same size.",
        "- Secrets Manager: one read per cold start, plus, while a million events arrive at the API's 100/s "
        "throttle, ten warm containers of each function re-reading every 300 s.",
        f"- CloudWatch Logs (GB = 10⁹ B): the functions' own lines as counted, Lambda's START/END/REPORT lines "
        f"({ASSUMPTIONS.platform_log_bytes:.0f} B per invocation, X-Ray's suffix on sampled ones), "
        f"the API's access log line ({ASSUMPTIONS.access_log_bytes:.0f} B per request, the template's "
        "format), kept one month (30 days' retention) at the raw size.",
        f"- X-Ray: {ASSUMPTIONS.xray_sampling:.0%} of invocations recorded as traces (the template's default "
        "`TracingMode`; Active would record about 5 %).",
        "- Left out: fixed monthly charges (the secrets' $0.40 each, custom metrics, alarms), KMS (AWS-managed "
        "keys), data transfer to Sphere, free tiers.",
    ]
    prices = [(key, f"${value.dollars:.10g}", value.unit, value.source) for key, value in PRICES.items()]
    details += ["", f"Prices (`bench/prices.py`, US East (N. Virginia), as of {PRICES_DATE}):", ""]
    details += markdown_table(("price", "USD", "per", "source"), prices)
    return Section("4", "Cost per million events", rows, method, details)
