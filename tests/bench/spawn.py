"""Start a measure's worker (``bench.worker``) in a fresh process with a Lambda-like environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.cold_start import lambda_environment
from bench.config import REPO, Config

__all__ = ["run_worker"]

_PYTHONPATH = ":".join(str(REPO / part) for part in ("layers/shared", "functions", "tests"))


def run_worker(module: str, function: str, config: Config, **options: Any) -> dict[str, Any]:
    """``module.collect(options)`` in a fresh ``python -B`` with ``function``'s Lambda environment; its result.

    The worker's standard output (the functions' log lines) is counted into ``stdout_bytes``.

    Raises:
        RuntimeError: the worker failed (its error output is quoted).
    """
    name = module.rsplit(".", 1)[-1]
    out, arguments = config.work / f"{name}.json", config.work / f"{name}-options.json"
    arguments.write_text(json.dumps({"quick": config.quick, **options}))
    environment = lambda_environment(function, REPO / "functions" / function) | {"PYTHONPATH": _PYTHONPATH}
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-B", "-m", "bench.worker", module, str(out), str(arguments)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        check=False,
        timeout=900,
    )
    if done.returncode:
        raise RuntimeError(f"{module} failed:\n{done.stderr.decode(errors='replace')[-4000:]}")
    result: dict[str, Any] = json.loads(Path(out).read_text())
    result["stdout_bytes"] = len(done.stdout)
    return result
