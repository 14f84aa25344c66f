"""One cold container: a fresh, Lambda-like interpreter that imports a function and may then invoke it.

Run as a script by ``bench.cold_start`` with ``python -I -S -B`` (no site-packages, no bytecode
written: Lambda's ``/opt`` is read-only), so ``sys.path`` holds only the standard library until
this script puts the function's directory first, then the ``--layer`` entries in order (the layer's
``python`` directory, then the runtime's boto3), as Lambda does. ``--module boto3`` is the
baseline: a bare ``import boto3`` with the same path.

With ``--events``, after the import it adds the test tree and the development site-packages
(moto, the stand-in) *behind* the layer, starts moto in-process with the template's resources
(``create_resources``, through a boto3 session of its own, so the function's first call still
loads its own service models), sets the environment the template gives the function, starts the
Sphere stand-in for ``deliver``, and invokes ``lambda_handler`` once per event. Each call is timed
with moto's own time inside it (``MotoMeter``) reported apart. The result is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _rss_mb() -> float:
    """Resident memory now, MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--function-dir", type=Path, required=True)
    parser.add_argument("--layer", type=Path, action="append", required=True, help="in path order")
    parser.add_argument("--module", choices=("app", "boto3"), default="app")
    parser.add_argument(
        "--events", type=Path, help="JSON: kind, function, public_base_url, customers, the events to invoke in order"
    )
    parser.add_argument("--tests", type=Path, help="the test tree (devstack, bench)")
    parser.add_argument("--site", type=Path, help="site-packages holding moto")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def _invoke(handler: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Start moto and the stand-in, set the function's environment, invoke once per event."""
    sys.path += [str(args.tests), str(args.site)]
    rss_before, wall, cpu = _rss_mb(), time.perf_counter(), time.process_time()
    import boto3
    from moto import mock_aws

    from bench.moto_meter import MotoMeter
    from devstack.lambda_events import LambdaContext
    from devstack.resources import LOCAL_SECRETS, create_resources, function_environment
    from devstack.sphere_standin import SphereStandIn

    plan = json.loads(args.events.read_text())
    meter = MotoMeter.install()
    mock_aws().start()
    session = boto3.session.Session()
    resources = create_resources(
        dynamodb=session.client("dynamodb"), sqs=session.client("sqs"), secretsmanager=session.client("secretsmanager")
    )
    parameters: dict[str, str] = {"PublicBaseUrl": plan["public_base_url"]}
    standin = None
    if plan["kind"] == "deliver":
        standin = SphereStandIn(token=LOCAL_SECRETS["SphereTokenSecretArn"], port=0)
        standin.start()
        for customer in plan["customers"]:
            standin.add_customer(customer)
        parameters["SphereApiUrl"] = standin.base_url
    os.environ.update(function_environment(resources, plan["function"], **parameters))
    setup = {
        "setup_ms": (time.perf_counter() - wall) * 1000,
        "setup_cpu_ms": (time.process_time() - cpu) * 1000,
        "setup_rss_mb": _rss_mb() - rss_before,
    }
    calls = []
    for event in plan["events"]:
        os.environ["_X_AMZN_TRACE_ID"] = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        context = LambdaContext(function_name=plan["function"], aws_request_id=str(uuid.uuid4()))
        meter.reset()
        wall, cpu = time.perf_counter(), time.process_time()
        response = handler(event, context)
        calls.append(
            {
                "wall_ms": (time.perf_counter() - wall) * 1000,
                "cpu_ms": (time.process_time() - cpu) * 1000,
                "moto_ms": meter.wall * 1000,
                "moto_cpu_ms": meter.cpu * 1000,
                "aws_calls": dict(meter.calls),
                "ok": response.get("statusCode") == 202
                if plan["kind"] == "receive"
                else not response["batchItemFailures"],
            }
        )
    if standin is not None:
        calls[-1]["sphere_connections"] = standin.connection_count
        calls[-1]["sphere_patches"] = len(standin.patches())
        standin.stop()
    return {**setup, "calls": calls}


def main(argv: list[str] | None = None) -> int:
    """Import (and maybe invoke) as a cold container does; write the timings to ``--out``."""
    args = _arguments(argv)
    sys.path[:0] = [str(args.function_dir), *(str(layer) for layer in args.layer)]
    wall, cpu = time.perf_counter(), time.process_time()
    module = importlib.import_module(args.module)
    result: dict[str, Any] = {
        "import_ms": (time.perf_counter() - wall) * 1000,
        "import_cpu_ms": (time.process_time() - cpu) * 1000,
        "rss_after_import_mb": _rss_mb(),
        "modules": len(sys.modules),
        "boto3_from": str(Path(importlib.import_module("boto3").__file__ or "").parent),
    }
    if args.events:
        result |= _invoke(module.lambda_handler, args)
    result["peak_rss_mb"] = _peak_rss_mb()
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
