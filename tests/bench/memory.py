"""Measure 5: peak RSS of each function's fresh process after import, a first call and a batch.

Taken from measure 1's probes (``bench.cold_start``): ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
at the end of a probe that imported the function as shipped, started moto (and, for deliver, the
stand-in) in the process, made a first call and then a batch (receive: a 100-event HubSpot batch;
deliver: 10 new contacts' messages). Moto and the stand-in live in the same process, so their
resident memory (measured as the growth of RSS while they were set up) is reported beside it.
"""

from __future__ import annotations

from bench.cold_start import ColdRuns
from bench.pricing import ASSUMPTIONS
from bench.report import Row, Section
from bench.stats import Summary, mb

__all__ = ["memory_section"]


def memory_section(runs: ColdRuns) -> Section:
    """Measure 5's rows."""
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
    return Section("5", "Memory", rows, method)
