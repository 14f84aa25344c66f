"""Measure 1 (and the cold parts of 2 and 5): fresh Lambda-like interpreters importing and invoking each function.

Every figure comes from ``bench.probe`` run as ``python -I -S -B``: no bytecode written, no
site-packages, the function's directory, the layer, then the runtime's boto3 on ``sys.path``.
Variants run round-robin, so the machine's load drifts over all of them alike, and each is
compared with a bare ``import boto3`` (the runtime's, compiled) in the same run.
"""

# ruff: noqa: RUF001 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import sysconfig
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import REPO, Config
from bench.layer import BuiltLayer
from bench.report import Row, Section, markdown_table
from bench.stats import Summary, ms, paired_ratio, times
from bench.workload import deliver_records, hubspot_batch, receive_event, single_change
from devstack.pipeline import PUBLIC_BASE_URL
from devstack.resources import load_template

__all__ = ["ColdRuns", "cold_start_section", "init_ms", "lambda_environment", "measure_cold_starts"]

_PROBE = Path(__file__).with_name("probe.py")
_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:crm-sphere-local-changes.fifo"
_LOGICAL_IDS = {"receive": "ReceiveFunction", "deliver": "DeliverFunction"}


@dataclass
class ColdRuns:
    """Every probe's result, by variant name (``receive/shipped/import``, ``deliver/source/import`` ...)."""

    layer: BuiltLayer
    results: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def values(self, variant: str, key: str, call: int | None = None) -> list[float]:
        """One number of each run of ``variant``: a top-level key, or a key of its ``call``-th invocation."""
        runs = self.results[variant]
        if call is None:
            return [float(run[key]) for run in runs]
        return [float(run["calls"][call][key]) for run in runs]

    def net_call_ms(self, variant: str, call: int) -> list[float]:
        """Each run's ``call``-th invocation, wall time less moto's own time inside it."""
        return [run["calls"][call]["wall_ms"] - run["calls"][call]["moto_ms"] for run in self.results[variant]]


def lambda_environment(function: str, function_dir: Path) -> dict[str, str]:
    """What Lambda sets before the runtime imports the handler, with the template's static Globals.

    Tracing is on as ``TracingMode: Active`` (the default) makes it: Lambda records invocations itself,
    no SDK in the function; the daemon address is loopback, and invocations run unsampled (``Sampled=0``),
    as 95 % do.
    """
    template = load_template()
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    static = {name: value for name, value in variables.items() if isinstance(value, str)}
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"crm-sphere-local-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(template["Globals"]["Function"]["MemorySize"]),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": str(function_dir),
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        **static,
    }


def _plan(function: str, kind: str, work: Path) -> Path:
    """The events a probe invokes: ``first`` (one change, then a batch) or ``batch`` (a batch first)."""
    if function == "receive":
        batch = receive_event(hubspot_batch(1))
        events = [receive_event(single_change(500, "email", "ada@example.com", at=20_000)), batch]
        plan: dict[str, Any] = {"kind": "receive", "customers": [], "events": events if kind == "first" else [batch]}
    else:
        first, customers = deliver_records(1, 1, queue_arn=_QUEUE_ARN)
        records, more = deliver_records(2, 10, queue_arn=_QUEUE_ARN)
        plan = {"kind": "deliver", "customers": customers + more, "events": [{"Records": first}, {"Records": records}]}
    plan |= {"function": _LOGICAL_IDS[function], "public_base_url": PUBLIC_BASE_URL}
    path = work / f"plan-{function}-{kind}.json"
    path.write_text(json.dumps(plan))
    return path


def _probe(
    layer: list[Path], function_dir: Path, function: str, work: Path, *, module: str, plan: Path | None
) -> dict[str, Any]:
    """Run one fresh interpreter; its result.

    Raises:
        RuntimeError: the probe failed (its error output is quoted).
    """
    out = work / "probe.json"
    command = [sys.executable, "-I", "-S", "-B", str(_PROBE), "--function-dir", str(function_dir), "--module", module]
    command += [argument for path in layer for argument in ("--layer", str(path))]
    command += ["--out", str(out)]
    if plan is not None:
        site = sysconfig.get_paths()["purelib"]
        command += ["--events", str(plan), "--tests", str(REPO / "tests"), "--site", site]
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        command, env=lambda_environment(function, function_dir), capture_output=True, check=False, timeout=300
    )
    if done.returncode:
        raise RuntimeError(f"probe {function} {module} failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["stdout_bytes"] = len(done.stdout)
    return result


def measure_cold_starts(config: Config, layer: BuiltLayer) -> ColdRuns:
    """Run every probe variant, round-robin: imports ``import_runs`` times, first calls ``first_call_runs`` times.

    The baseline (a bare ``import boto3``, the runtime's) runs once a round; the layer without bytecode is
    measured for its import only.
    """
    runs = ColdRuns(layer)
    layers: Mapping[str, list[Path]] = {"shipped": layer.shipped} | (
        {"source": layer.source_only} if layer.source_only else {}
    )
    for _ in range(config.import_runs):
        runs.results["boto3/shipped/import"].append(
            _probe(layer.shipped, layer.functions["receive"], "receive", config.work, module="boto3", plan=None)
        )
        for name, paths in layers.items():
            for function in ("receive", "deliver"):
                runs.results[f"{function}/{name}/import"].append(
                    _probe(paths, layer.functions[function], function, config.work, module="app", plan=None)
                )
    for _ in range(config.first_call_runs):
        for function, kind in (("receive", "first"), ("receive", "batch"), ("deliver", "first")):
            plan = _plan(function, kind, config.work)
            runs.results[f"{function}/shipped/{kind}"].append(
                _probe(layer.shipped, layer.functions[function], function, config.work, module="app", plan=plan)
            )
    return runs


def init_ms(runs: ColdRuns) -> dict[str, float]:
    """Each function's import + first call as shipped (moto's time out): what a cold start bills before warm work."""
    return {
        function: statistics.median(
            imported + first
            for imported, first in zip(
                runs.values(f"{function}/shipped/first", "import_ms"),
                runs.net_call_ms(f"{function}/shipped/first", 0),
                strict=True,
            )
        )
        for function in ("receive", "deliver")
    }


def cold_start_section(runs: ColdRuns) -> Section:
    """Measure 1's rows, method and per-variant detail."""
    layer = runs.layer
    built = layer.source_only is not None
    variants = ["shipped", *(["source"] if built else [])]
    label = {"shipped": "as shipped (.pyc)" if built else "as installed", "source": "without its .pyc (before)"}
    targets = {"receive": "≤ 1.3×", "deliver": "≤ 1.5×"}
    boto3_runs = runs.values("boto3/shipped/import", "import_ms")
    boto3 = Summary.of(boto3_runs)
    rows = [Row("1", "bare `import boto3` (the runtime's, compiled)", ms(boto3.median), boto3.spread())]
    for variant in variants:
        for function in ("receive", "deliver"):
            imported_runs = runs.values(f"{function}/{variant}/import", "import_ms")
            imported = Summary.of(imported_runs)
            rows.append(
                Row(
                    "1",
                    f"{function} `import app`, layer {label[variant]}",
                    ms(imported.median),
                    imported.spread(),
                    f"boto3 {ms(boto3.median)}",
                    times(paired_ratio(imported_runs, boto3_runs)),
                    targets[function],
                )
            )
    for function in ("receive", "deliver"):
        variant = f"{function}/shipped/first"
        total = Summary.of(
            [a + b for a, b in zip(runs.values(variant, "import_ms"), runs.net_call_ms(variant, 0), strict=True)]
        )
        rows.append(
            Row(
                "1",
                f"{function} import + first call, as shipped (moto's own time subtracted)",
                ms(total.median),
                total.spread(),
                f"boto3 {ms(boto3.median)}",
                times(total.median / boto3.median),
                targets[function],
            )
        )
    if built:
        size = f"{layer.size_bytes / 1e6:.1f} MB ({layer.source_size_bytes / 1e6:.1f} MB without .pyc)"
        rows.append(Row("1", "layer size, unzipped (`sam build` output)", size))
    else:
        rows.append(Row("1", "package size (development layout)", f"{layer.size_bytes / 1e6:.1f} MB"))
    table = []
    for function in ("receive", "deliver"):
        for variant in variants:
            imported_runs = runs.values(f"{function}/{variant}/import", "import_ms")
            imported = Summary.of(imported_runs)
            first = f"{function}/{variant}/first"
            if first in runs.results:
                call = Summary.of(runs.net_call_ms(first, 0))
                moto = Summary.of(runs.values(first, "moto_ms", 0))
                setup = Summary.of(runs.values(first, "setup_ms"))
                called = (f"{ms(call.median)} ({call.spread()})", ms(moto.median), ms(setup.median))
            else:
                called = ("—", "—", "—")
            table.append(
                (
                    function,
                    label[variant],
                    f"{ms(imported.median)} ({imported.spread()})",
                    times(paired_ratio(imported_runs, boto3_runs)),
                    f"{statistics.median(runs.values(f'{function}/{variant}/import', 'modules')):.0f}",
                    *called,
                )
            )
    details = markdown_table(
        (
            "function",
            "layer",
            "import (min–max)",
            "import ÷ boto3",
            "modules",
            "first call, moto's time out (min–max)",
            "moto inside it",
            "moto setup (apart)",
        ),
        table,
    )
    if layer.largest:
        details += ["", "Largest parts of the layer (unzipped, `.pyc` included):", ""]
        details += markdown_table(("path", "MB"), [(name, f"{size / 1e6:.1f}") for name, size in layer.largest])
    repeats = len(runs.results["boto3/shipped/import"])
    first_repeats = len(runs.results["receive/shipped/first"])
    method = [
        f"Layer: {layer.how}.",
        "",
        "Each figure is a fresh `python -I -S -B` (no site-packages, no bytecode written: Lambda's `/opt` is "
        "read-only) whose `sys.path` is the function's directory, the layer, then the runtime's boto3 — Lambda's "
        "order (`/var/task`, `/opt/python`, `/var/runtime`). `import app` is timed with `time.perf_counter()` "
        "inside the interpreter (interpreter start-up excluded). The environment is what Lambda sets "
        "(`LAMBDA_TASK_ROOT`, the function name, memory) plus the template's Globals. The baseline is a bare "
        "`import boto3` in the same kind of interpreter with the same path, once a round; the variants run "
        f"round-robin, {repeats} times each (import + first call, as shipped: {first_repeats} times). An import's "
        "ratio is the median of its per-round ratios to boto3 (the machine's load drifts less within a round than "
        "across the run); the first-call rows divide medians. The layer without its `.pyc` is the same build with "
        "its `__pycache__` folders removed: every cold start then compiles the layer's code (the runtime's boto3 "
        "stays compiled).",
        "",
        "Import + first call: after the import the probe puts the test tree and the development site-packages "
        "*behind* the layer, starts `moto.mock_aws` in the process and creates the template's resources "
        "(`create_resources`, through a boto3 session of its own so the function still loads its own service "
        "models), sets the function's environment (`function_environment`, `LOCAL_SECRETS`), and for deliver starts "
        "the Sphere stand-in on 127.0.0.1. Then `lambda_handler` is called with a real-shaped event: receive a "
        "signed one-change HubSpot webhook, deliver one SQS record (a new contact's id and fields, one PATCH). "
        "The call's wall time is reported less the time spent inside moto (measured by wrapping moto's botocore "
        "hook); moto's setup is reported apart. The X-Ray daemon address is loopback and invocations are unsampled.",
    ]
    return Section("1", "Cold start", rows, method, details)
