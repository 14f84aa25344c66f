"""Measure 2: the receive handler's CPU per event, warm, with AWS answered inside botocore (``CannedAWS``).

A 100-event HubSpot batch over 10 contacts and a single-event webhook are each posted many times
to the real handler (``functions/receive/app.py``, tracing on and unsampled as on Lambda, logs at
the template's INFO). Each invocation is re-signed before its timer starts. Per invocation: CPU
(``time.process_time``) and wall time of the handler; right after it, ``json.loads`` of the same
request body, timed the same way (ten times, averaged): the baseline the ratio is taken against.
The cold 100-event batch comes from ``bench.cold_start``'s probes.
"""

# ruff: noqa: RUF001 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

import importlib
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.cold_start import ColdRuns
    from bench.report import Section

__all__ = ["cold_cpu_values", "collect", "receive_section"]

_LOADS_REPEAT = 10


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"


def _series(handler: Callable[..., Any], events: Callable[[], list[dict[str, Any]]], count: int) -> dict[str, Any]:
    """Invoke ``handler`` ``count`` times with freshly signed requests of ``events()``; CPU, wall, baseline."""
    from bench.workload import receive_event
    from devstack.lambda_events import LambdaContext

    cpu, wall, loads = [], [], []
    for _ in range(count):
        payload = events()
        event = receive_event(payload)
        body = json.dumps(payload).encode()
        os.environ["_X_AMZN_TRACE_ID"] = _trace_id()
        context = LambdaContext(function_name="receive", aws_request_id=str(uuid.uuid4()))
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        answer = handler(event, context)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started_wall) * 1000)
        if answer["statusCode"] != 202:
            raise RuntimeError(f"receive answered {answer['statusCode']}: {answer.get('body')}")
        started_cpu = time.process_time()
        for _ in range(_LOADS_REPEAT):
            json.loads(body)
        loads.append((time.process_time() - started_cpu) * 1000 / _LOADS_REPEAT)
    return {"cpu_ms": cpu, "wall_ms": wall, "loads_ms": loads, "events": len(payload), "body_bytes": len(body)}


def collect(options: dict[str, Any]) -> dict[str, Any]:
    """Warm receive invocations: ``batch`` (100 events) and ``single`` series, each after a short warm-up."""
    from bench.canned_aws import CannedAWS, canned_environment
    from bench.workload import hubspot_batch, single_change
    from devstack.pipeline import PUBLIC_BASE_URL

    canned = CannedAWS().install()
    os.environ.update(canned_environment("ReceiveFunction", PublicBaseUrl=PUBLIC_BASE_URL))
    handler = importlib.import_module("receive.app").lambda_handler
    numbers = iter(range(10_000, 10**9, 10))

    def batch() -> list[dict[str, Any]]:
        return hubspot_batch(next(numbers))

    def single() -> list[dict[str, Any]]:
        return single_change(next(numbers), "email", "ada@example.com", at=20_000)

    _series(handler, batch, 3)
    _series(handler, single, 10)
    canned.calls.clear()
    result = {"batch": _series(handler, batch, int(options["batches"]))}
    result["batch"]["aws_calls"] = dict(canned.calls)
    canned.calls.clear()
    result["single"] = _series(handler, single, int(options["singles"]))
    result["single"]["aws_calls"] = dict(canned.calls)
    return result


def receive_section(raw: dict[str, Any], runs: ColdRuns) -> Section:
    """Measure 2's rows: warm CPU per event against ``json.loads``, p50/p99, and the cold 100-event batch."""
    from bench.pricing import ASSUMPTIONS
    from bench.report import Row, Section
    from bench.stats import Summary, ms, percentile, times

    rows = []
    for kind, label, target in (("batch", "100-event HubSpot batch", "≤ 50×"), ("single", "single-event webhook", "")):
        series = raw[kind]
        per_event = [value / series["events"] for value in series["cpu_ms"]]
        cpu = Summary.of(per_event)
        loads = Summary.of([value / series["events"] for value in series["loads_ms"]])
        rows.append(
            Row(
                "2",
                f"receive CPU per event, {label} (warm, AWS canned)",
                ms(cpu.median, 3),
                cpu.spread(digits=3),
                f"`json.loads` of the body {ms(loads.median, 4)}/event",
                times(cpu.median / loads.median),
                target,
            )
        )
        rows.append(
            Row(
                "2",
                f"receive handler wall time, {label}: p50 / p99 of {len(series['wall_ms'])}",
                f"{ms(percentile(series['wall_ms'], 0.5), 2)} / {ms(percentile(series['wall_ms'], 0.99), 2)}",
                Summary.of(series["wall_ms"]).spread(digits=2),
            )
        )
    memory, scale = ASSUMPTIONS.memory_mb["receive"], ASSUMPTIONS.cpu_scale("receive")
    layers = ("shipped", "compiled") if "receive/compiled/batch" in runs.results else ("shipped",)
    for layer in layers:
        variant = f"receive/{layer}/batch"
        cold = Summary.of(
            [a + b for a, b in zip(runs.values(variant, "import_ms"), runs.net_call_ms(variant, 0), strict=True)]
        )
        cold_cpu = Summary.of([value * scale for value in cold_cpu_values(runs, variant)])
        shipped = "as shipped" if layer == "shipped" else "layer with .pyc"
        rows.append(
            Row(
                "2",
                f"cold container, a 100-event batch as its first call: import + call, {shipped}, moto out",
                ms(cold.median),
                cold.spread(),
                "HubSpot's 5 s",
                times(cold.median / 5000),
                "far inside 5 s",
            )
        )
        rows.append(
            Row(
                "2",
                f"the same CPU time ({shipped}) at {memory} MB's share of a vCPU (×{scale:.1f}, an estimate)",
                ms(cold_cpu.median),
                cold_cpu.spread(),
                "HubSpot's 5 s",
                times(cold_cpu.median / 5000),
                "far inside 5 s",
            )
        )
    calls = ", ".join(
        f"{name} {count / len(raw['batch']['cpu_ms']):g}" for name, count in raw["batch"]["aws_calls"].items()
    )
    method = [
        "Warm: the real receive handler in one process (development layout, tracing on and unsampled as on Lambda, "
        "logs at INFO), AWS answered inside botocore by `bench.canned_aws.CannedAWS` — a `before-send` hook that "
        "returns each operation's canned success, so requests are still built, validated, serialized and signed "
        "and answers parsed, but neither moto nor the network runs (better for isolating our CPU than moto). "
        "Each invocation is signed afresh before its timer starts and every event is new (nothing known yet). "
        "CPU is `time.process_time()` around the handler; the baseline is `json.loads` of the same request body, "
        f"timed right after each invocation (10 loads averaged). AWS calls per batch invocation: {calls}. "
        f"Body sizes: {raw['batch']['body_bytes']:,} B (batch), {raw['single']['body_bytes']:,} B (single).",
        "",
        "Cold: measure 1's probe with the 100-event batch as the container's first call (moto's time out). "
        "Lambda gives a function CPU in proportion to its memory (1,769 MB buys one vCPU): at the template's "
        f"{memory} MB that is about {1 / scale:.3f} of a vCPU, so CPU-bound time may stretch up to ×{scale:.1f} "
        "there (this machine's core is not calibrated against Graviton's; an estimate, not a measure).",
    ]
    return Section("2", "Receive CPU", rows, method)


def cold_cpu_values(runs: ColdRuns, variant: str) -> list[float]:
    """Each run's import CPU + first call CPU, moto's CPU out (ms)."""
    return [
        a + run["calls"][0]["cpu_ms"] - run["calls"][0]["moto_cpu_ms"]
        for a, run in zip(runs.values(variant, "import_cpu_ms"), runs.results[variant], strict=True)
    ]
