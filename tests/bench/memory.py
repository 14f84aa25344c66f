"""Measure 5: peak RSS of each function's fresh process after import, a first call and a batch.

Taken from measure 1's probes (``bench.cold_start``): ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
at the end of a probe that imported the function as shipped, started moto (and, for deliver, the
stand-in) in the process, made a first call and then a batch (receive: a 100-event HubSpot batch;
deliver: 10 new contacts' messages). Moto and the stand-in live in the same process, so their
resident memory (measured as the growth of RSS while they were set up) is reported beside it.
"""

# ruff: noqa: RUF001 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

from bench.cold_start import ColdRuns
from bench.prices import PRICES
from bench.pricing import ASSUMPTIONS, cpu_stretch
from bench.receive_cpu import cold_cpu_values
from bench.report import Row, Section, markdown_table
from bench.stats import Summary, mb

__all__ = ["memory_section"]


_CANDIDATES_MB = (256, 512, 1024)
_AWS_WAIT_MS = 40.0
"""A warm one-change webhook's AWS round trips (a read, a send, answered in a few ms each in-region), for the choice."""


def _choice(runs: ColdRuns, receive: dict[str, object]) -> list[str]:
    """Receive's MemorySize: the cold 100-event batch's time against the warm invocation's cost, per candidate."""
    cold_cpu = Summary.of(cold_cpu_values(runs, "receive/shipped/batch")).median
    single = receive["single"]
    assert isinstance(single, dict)
    warm_cpu = Summary.of(single["cpu_ms"]).median
    table, dollars = [], {}
    for memory in _CANDIDATES_MB:
        scale = cpu_stretch(memory)
        warm_ms = warm_cpu * scale + _AWS_WAIT_MS
        dollars[memory] = warm_ms / 1000 * memory / 1024 * PRICES["lambda_arm_gb_second"].dollars * 1e6
        table.append(
            (
                f"{memory} MB" + (" (chosen)" if memory == ASSUMPTIONS.memory_mb["receive"] else ""),
                f"×{scale:.1f}",
                f"{cold_cpu * scale:,.0f} ms",
                f"{warm_ms:.1f} ms",
                f"${dollars[memory]:.2f}",
            )
        )
    return [
        "",
        "Choosing receive's MemorySize: Lambda's CPU grows with memory, so CPU-bound time shrinks as memory grows "
        "and costs the same GB-seconds, while time spent waiting for AWS costs more. A cold container whose first "
        "call is a 100-event batch (measure 2: import + call CPU, as shipped) is what must stay far inside "
        f"HubSpot's 5 s; a warm one-change webhook (measure 2's CPU, plus about {_AWS_WAIT_MS:.0f} ms of AWS round "
        "trips) is what most invocations cost. Both scaled by each candidate's share of a vCPU (an estimate):",
        "",
        *markdown_table(
            ("receive MemorySize", "CPU stretch", "cold 100-event batch", "warm single webhook", "its duration, $/M"),
            table,
        ),
        "",
        f"512 MB keeps the cold batch well inside HubSpot's 5 s for ${dollars[512] - dollars[256]:.2f} more per "
        "million warm webhooks than 256 MB, which would spend most of it. Deliver stays at 256 MB: it waits on "
        "Sphere (its calls in parallel), has no 5 s deadline, and its peak without moto is well under half of it.",
    ]


def memory_section(runs: ColdRuns, receive: dict[str, object] | None = None) -> Section:
    """Measure 5's rows, and the choice of receive's MemorySize from measure 2's figures."""
    rows = []
    for function in ("receive", "deliver"):
        memory = ASSUMPTIONS.memory_mb[function]
        variant = f"{function}/shipped/first"
        peak = Summary.of(runs.values(variant, "peak_rss_mb"))
        imported = Summary.of(runs.values(variant, "rss_after_import_mb"))
        harness = Summary.of(runs.values(variant, "setup_rss_mb"))
        rows.append(
            Row(
                "5",
                f"{function} peak RSS: import + first call + a batch (moto in the process)",
                mb(peak.median),
                peak.spread("MB"),
                f"MemorySize {memory} MB",
                f"{peak.median / memory:.0%}",
            )
        )
        rows.append(
            Row(
                "5",
                f"{function}: RSS after import; moto + stand-in's share of the peak",
                f"{mb(imported.median)}; ≈ {mb(harness.median)}",
                imported.spread("MB"),
                "",
                f"{(peak.median - harness.median) / memory:.0%} without moto",
            )
        )
    method = [
        "From measure 1's import + first call probes, as shipped: `ru_maxrss` at the end of the process, after the "
        "import, the first call and a batch (receive: 100 events over 10 contacts; deliver: 10 messages of new "
        "contacts, 10 PATCHes). Moto and the stand-in run in the same process; the RSS they added while being "
        "set up is shown apart, and the last column is the peak without it, as a share of the function's "
        "MemorySize in the template."
    ]
    if receive is not None:
        method += _choice(runs, receive)
    return Section("5", "Memory", rows, method)
