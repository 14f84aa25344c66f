"""``python -m bench``: every measure, side by side with its baseline, printed and written to BENCHMARKS.md.

``BENCH_QUICK=1`` (or ``--quick``) runs each measure once or a few times, on the development
layout, in seconds: enough for the smoke test to see every row written, too few for any figure.
It writes to ``$TMPDIR/BENCHMARKS.quick.md`` unless ``BENCH_OUTPUT`` (or ``--output``) names a file.
"""

# ruff: noqa: RUF001 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.cold_start import cold_start_section, init_ms, measure_cold_starts
from bench.config import REPO, Config
from bench.cost_report import cost_section
from bench.delivery import delivery_section, system_rate
from bench.layer import prepare_layers
from bench.machine import describe_machine
from bench.memory import memory_section
from bench.paper import scale_section, snapstart_section
from bench.receive_cpu import receive_section
from bench.report import render_document, text_table
from bench.sources import measure_sources, sources_section
from bench.spawn import run_worker

__all__ = ["main"]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    parser.add_argument("--output", type=Path, default=os.environ.get("BENCH_OUTPUT") or None)
    args = parser.parse_args(argv)
    if args.output is None:  # a quick run never overwrites the committed figures
        args.output = Path(tempfile.gettempdir(), "BENCHMARKS.quick.md") if args.quick else REPO / "BENCHMARKS.md"
    return args


def _say(started: float, message: str) -> None:
    print(f"[bench {time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the measures, print the table, write the document."""
    args = _arguments(argv)
    started = time.monotonic()
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        config = Config(quick=args.quick, output=args.output, work=Path(scratch))
        layer = prepare_layers(REPO, config.work, quick=config.quick)
        _say(started, f"layer: {layer.how}")
        runs = measure_cold_starts(config, layer)
        _say(started, "cold starts measured")
        per_source = measure_sources(config, layer)
        _say(started, "cold starts per source measured")
        receive = run_worker(
            "bench.receive_cpu", "receive", config, batches=config.receive_batches, singles=config.receive_singles
        )
        _say(started, "receive CPU measured")
        delivery = run_worker("bench.delivery", "deliver", config, batches=config.delivery_batches)
        _say(started, "delivery throughput measured")
        cost = run_worker("bench.cost", "deliver", config, rounds=config.cost_rounds, contacts=config.cost_contacts)
        _say(started, "cost counted")
    sections = [
        cold_start_section(runs),
        sources_section(per_source),
        snapstart_section(init_ms(runs)),
        receive_section(receive, runs),
        delivery_section(delivery),
        cost_section(cost, init_ms(runs)),
        memory_section(runs, receive),
        scale_section(cost, init_ms(runs), system_rate(delivery)),
    ]
    elapsed = time.monotonic() - started
    header = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`, code in `tests/bench/`) from one run: every ratio below "
        "compares two figures of that run. Issue 11's measures and issue 12's cold start per source, on today's "
        "code; nothing here is a test, and no test asserts a timing."
        + (" **Quick mode: one or a few runs each, not figures to quote.**" if config.quick else ""),
        "",
        *machine.lines(),
        f"- the run took {elapsed:.0f} s{' (quick mode)' if config.quick else ''}",
        "",
        "Medians with min–max over the runs named in each section; on a shared 2-core machine the spread is "
        "part of the figure.",
    ]
    document = render_document(header, sections)
    args.output.write_text(document)
    print(text_table([row for section in sections for row in section.rows]))
    _say(started, f"wrote {args.output}")
    return 0
