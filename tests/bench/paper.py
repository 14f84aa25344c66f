"""Measures 6 and 1b, on paper: a CRM bulk import at scale, and Lambda SnapStart, from this run's measured figures.

Nothing here runs the adapter: each figure is arithmetic over what the run measured (cost per
million events, init times), the template's own settings (throttle, batch size, concurrency,
memory, the Sphere rate ceiling) and the service limits named in ``LIMITS``. Every input is
printed beside its result so the reader can redo the sum.
"""

# ruff: noqa: RUF001, RUF002 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.delivery import mapping_settings
from bench.prices import PRICES
from bench.pricing import function_memory_mb, price
from bench.report import Row, Section, markdown_table
from devstack.resources import load_template

__all__ = ["LIMITS", "Import", "TemplateFigures", "scale_section", "snapstart_section"]

LIMITS = {
    "dynamodb_partition_wu": 1_000,
    "dynamodb_new_table_wu": 4_000,
    "dynamodb_new_table_ru": 12_000,
    "sqs_fifo_calls_per_action": 300,
}
"""Service limits the import meets (AWS documentation): a partition key value's write units per second; what a
new on-demand table absorbs at once (it doubles its previous peak within 30 minutes); a FIFO queue's API calls per
second per action without high-throughput mode (the template turns that mode on: the limit is then per group)."""

_MONTH_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Import:
    """The bulk import of issue 11, item 6."""

    contacts: int = 1_000_000
    properties: int = 6
    batch_events: int = 100

    @property
    def events(self) -> int:
        """Property changes HubSpot sends."""
        return self.contacts * self.properties

    @property
    def webhooks(self) -> int:
        """Requests of ``batch_events`` each."""
        return math.ceil(self.events / self.batch_events)


@dataclass(frozen=True, slots=True)
class TemplateFigures:
    """The template's settings the arithmetic uses."""

    api_rate: float
    api_burst: float
    batch_size: int
    max_concurrency: int
    retention_seconds: int
    memory_mb: dict[str, int]
    sphere_ceiling: float | None

    @classmethod
    def read(cls) -> TemplateFigures:
        """From ``template.yaml``: the stage's throttle, the mapping's batch and concurrency, queue and memory."""
        template = load_template()
        resources, parameters = template["Resources"], template.get("Parameters", {})
        stage = resources["HttpApi"]["Properties"]["DefaultRouteSettings"]
        batch_size, max_concurrency = mapping_settings()
        ceiling = parameters.get("SphereMaxCallsPerSecond", {}).get("Default")
        return cls(
            api_rate=float(stage["ThrottlingRateLimit"]),
            api_burst=float(stage["ThrottlingBurstLimit"]),
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            retention_seconds=int(resources["ChangesQueue"]["Properties"]["MessageRetentionPeriod"]),
            memory_mb=function_memory_mb(),
            sphere_ceiling=float(ceiling) if ceiling not in (None, "") else None,
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def scale_section(
    cost: dict[str, Any], init_ms: dict[str, float], measured_rate: float | None = None, sphere_latency_s: float = 0.1
) -> Section:
    """Measure 6: absorbing and draining 1 M contacts × 6 properties, from the batch scenario's measured unit costs."""
    bulk, t = Import(), TemplateFigures.read()
    batch = cost["batch"]
    lines = price(batch, init_ms)
    low, high = sum(line.low for line in lines), sum(line.high for line in lines)
    events_per_message = bulk.properties
    messages = bulk.contacts
    absorb_s = bulk.webhooks / t.api_rate
    bound = t.max_concurrency * t.batch_size / sphere_latency_s
    reachable = min(bound, measured_rate) if measured_rate else bound
    drain_rate = min(reachable, t.sphere_ceiling) if t.sphere_ceiling else reachable
    drain_s = messages / drain_rate
    receive_reads = t.api_rate * bulk.batch_events * 0.5
    per_message_writes = 1 + events_per_message  # the contact's state, then each event's outcome item
    drain_writes = drain_rate * per_message_writes
    send_calls = t.api_rate * math.ceil(bulk.batch_events / bulk.properties / 10)
    ceiling = f"{t.sphere_ceiling:,.0f}/s (`SphereMaxCallsPerSecond`)" if t.sphere_ceiling else "none set"
    table = [
        ("events", f"{bulk.events:,}", f"{bulk.contacts:,} contacts × {bulk.properties} properties"),
        ("webhooks", f"{bulk.webhooks:,}", f"HubSpot batches of {bulk.batch_events}"),
        (
            "time to absorb",
            _duration(absorb_s),
            f"the API stage's throttle: {t.api_rate:.0f} requests/s (burst {t.api_burst:.0f}); HubSpot retries "
            "what a 429 turns back",
        ),
        (
            "messages, PATCHes",
            f"{messages:,}, ≤ {messages:,}",
            f"a contact's {bulk.properties} changes in one batch make one message (receive groups a webhook's "
            "events per contact) and one PATCH; spread over two batches they make two messages, coalesced into "
            "one PATCH when the mapping hands them out together",
        ),
        (
            "time to drain",
            _duration(drain_s),
            f"{drain_rate:,.0f} PATCH/s: the bound {t.max_concurrency} invocations × {t.batch_size} messages ÷ "
            f"{sphere_latency_s * 1000:.0f} ms = {bound:,.0f}/s"
            + (f", measure 3's {measured_rate:,.0f}/s (moto in its own process)" if measured_rate else "")
            + f", Sphere's ceiling {ceiling}: the lowest",
        ),
        (
            "queue retention",
            _duration(t.retention_seconds),
            "the backlog's oldest message must be delivered before this: "
            + ("met" if drain_s + absorb_s < t.retention_seconds else "NOT met"),
        ),
        (
            "DynamoDB while absorbing",
            f"{receive_reads:,.0f} read units/s",
            f"receive's duplicate check, eventually consistent (½ unit a key), {bulk.batch_events} keys a request; "
            f"a new on-demand table takes {LIMITS['dynamodb_new_table_ru']:,}/s at once; settled events only are "
            "written",
        ),
        (
            "DynamoDB while draining",
            f"{drain_writes:,.0f} write units/s",
            f"{per_message_writes} items of under 1 KB per message (state + {events_per_message} outcomes); a new "
            f"on-demand table takes {LIMITS['dynamodb_new_table_wu']:,}/s at once and doubles its peak in 30 min"
            + (
                " — more than that at first: throttled writes fail their message, which the queue retries after "
                "its backoff (nothing lost, the drain slows until the table has scaled); set the table's warm "
                "throughput before a planned import to avoid it"
                if drain_writes > LIMITS["dynamodb_new_table_wu"]
                else ""
            )
            + f"; each contact is its own partition key ({LIMITS['dynamodb_partition_wu']:,}/s each, far off); "
            "delivered events are not in the status index",
        ),
        (
            "SQS",
            f"{send_calls:,.0f} SendMessageBatch/s",
            f"≤ {LIMITS['sqs_fifo_calls_per_action']}/s per action even without high-throughput mode, which the "
            "template turns on",
        ),
        (
            "cost",
            f"${bulk.events / 1e6 * low:,.2f}–{bulk.events / 1e6 * high:,.2f}",
            f"measure 4's HubSpot-batch rate (${low:.2f}–{high:.2f} per million events, measured with 10 events "
            f"per contact and message; at {events_per_message} per message the per-message items weigh about "
            f"{10 / events_per_message:.1f}× more per event)",
        ),
    ]
    rows = [
        Row("6", "bulk import of 1 M contacts × 6 properties: time to absorb", _duration(absorb_s)),
        Row("6", "the same: time to drain at Sphere's rate", _duration(drain_s)),
        Row("6", "the same: cost", f"${bulk.events / 1e6 * low:,.2f}–{bulk.events / 1e6 * high:,.2f}"),
    ]
    method = [
        "On paper, from this run's figures and the template's settings (`bench/paper.py`): a CRM bulk import of "
        f"{bulk.contacts:,} contacts with {bulk.properties} properties each, sent as HubSpot batches of "
        f"{bulk.batch_events}. Sphere answers in {sphere_latency_s * 1000:.0f} ms (measure 3's stand-in).",
    ]
    details = markdown_table(("quantity", "figure", "from"), table)
    return Section("6", "Scale on paper", rows, method, details)


def snapstart_section(init_ms: dict[str, float]) -> Section:
    """Lambda SnapStart for Python, on paper: what a restore costs against the init it replaces."""
    t = TemplateFigures.read()
    gb_second = PRICES["lambda_arm_gb_second"].dollars
    cache, restore = PRICES["snapstart_cache_gb_second"].dollars, PRICES["snapstart_restore_gb"].dollars
    table, rows = [], []
    for function in ("receive", "deliver"):
        gb = t.memory_mb[function] / 1024
        init_cost = init_ms[function] / 1000 * gb * gb_second
        restore_cost = gb * restore
        monthly_cache = gb * cache * _MONTH_SECONDS
        table.append(
            (
                function,
                f"{t.memory_mb[function]} MB",
                f"{init_ms[function]:,.0f} ms = ${init_cost * 1e6:,.2f} per million cold starts",
                f"${restore_cost * 1e6:,.2f} per million",
                f"{restore_cost / init_cost:,.0f}×",
                f"${monthly_cache:.2f}",
            )
        )
        rows.append(
            Row(
                "1",
                f"SnapStart, {function}: a restore's price ÷ the billed init it replaces",
                f"{restore_cost / init_cost:,.0f}×",
                "",
                f"init {init_ms[function]:,.0f} ms",
                "",
                "offer it if it pays",
            )
        )
    details = markdown_table(
        (
            "function",
            "MemorySize",
            "init billed today (this run's import + first call)",
            "restore instead",
            "restore ÷ init",
            "cache per version, a month",
        ),
        table,
    )
    method = [
        "SnapStart (Python 3.12 and later) runs init when a version is published, snapshots the microVM, and "
        "restores new execution environments from it. Its price: the snapshot's GB cached per second for each "
        "published version, and each restore per GB; the restore replaces the init that is billed today. A "
        f"restore costs as much as {restore / gb_second:.1f} s of init at the same memory, so it pays on price "
        f"only for an init longer than that; ours is well under a second. It would cut latency (a cold receive "
        "answers HubSpot in a fraction of its 5 s either way, measure 2), but it needs published versions "
        "(`AutoPublishAlias`), the event source mapping and the API pointed at the alias, and a cached snapshot "
        "per version. Init here is safe to snapshot (no connection, random value or timestamp is made at import: "
        "clients, pools and secrets are created on first use), so nothing would need a restore hook. "
        "**Not offered as a template option: it does not pay at these init times.**",
    ]
    return Section("1b", "Lambda SnapStart, on paper", rows, method, details)
