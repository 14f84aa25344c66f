"""Measure 1c: a cold receive container per source, and the modules it loads for it.

Each source's vendor sample is served by a fresh ``python -I -S -B`` (``bench.serve_source``) whose path is the
receive function's directory, the built layer and the runtime's boto3, with the source's settings as the local
stack gives them: ``import app``, then the source's module, verification, parsing and the answer (no AWS call).
The receive function serves every source, so what matters per source is what its first request adds, and that
it loads no other source's code.
"""

# ruff: noqa: RUF001 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.cold_start import lambda_environment
from bench.config import Config
from bench.layer import BuiltLayer
from bench.report import Row, Section, markdown_table
from bench.stats import Summary, ms
from devstack.source_config import source_environment
from devstack.vendors import vendor
from webhook_adapter.sources import SOURCE_MODULES

__all__ = ["SourceRuns", "measure_sources", "sources_section"]

_SCRIPT = Path(__file__).with_name("serve_source.py")
_PARSERS = {"salesforce": ("defusedxml",)}
"""Third-party parsers only one source uses: any other source loading them is a regression."""


@dataclass
class SourceRuns:
    """Each source's fresh-container runs."""

    results: dict[str, list[dict[str, object]]] = field(default_factory=dict)


def _serve(layer: BuiltLayer, source: str) -> dict[str, object]:
    """One fresh container serving the source's sample.

    Raises:
        RuntimeError: the container failed (its error output is quoted).
    """
    kit = vendor(source)
    now = time.time()
    sent = kit.sample(secret=kit.local_secret, base_url="https://hooks.example.test", now_ms=int(now * 1000))
    function_dir = layer.functions["receive"]
    request = {
        "paths": [str(function_dir), *(str(path) for path in layer.shipped)],
        "source": source,
        "url": f"https://hooks.example.test{sent.path}",
        "headers": {name.lower(): value for name, value in sent.headers.items()},
        "body": sent.body.decode(),
        "now": now,
        "secret": kit.local_secret,
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-I", "-S", "-B", str(_SCRIPT)],
        input=json.dumps(request),
        env=lambda_environment("receive", function_dir) | source_environment(source),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode:
        raise RuntimeError(f"serving {source} failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


def measure_sources(config: Config, layer: BuiltLayer) -> SourceRuns:
    """Every source's container ``first_call_runs`` times, round-robin over the sources."""
    runs = SourceRuns({source: [] for source in SOURCE_MODULES})
    for _ in range(config.first_call_runs):
        for source in SOURCE_MODULES:
            runs.results[source].append(_serve(layer, source))
    return runs


def _top_level(modules: list[str]) -> set[str]:
    return {module.split(".", 1)[0] for module in modules}


def _own(source: str, modules: list[str]) -> list[str]:
    """The source's module and its own parsers among ``modules``."""
    parsers = set(_PARSERS.get(source, ())) & _top_level(modules)
    return sorted({SOURCE_MODULES[source]} & set(modules) | parsers)


def _foreign(source: str, modules: list[str]) -> list[str]:
    """Modules of other sources, and parsers only another source uses, among ``modules``."""
    others = {module for name, module in SOURCE_MODULES.items() if name != source} & set(modules)
    parsers = {parser for name, names in _PARSERS.items() if name != source for parser in names}
    return sorted(others | (parsers - set(_PARSERS.get(source, ()))) & _top_level(modules))


def sources_section(runs: SourceRuns) -> Section:
    """Measure 1c's rows, method and per-source table."""
    rows: list[Row] = []
    table = []
    for source, results in runs.results.items():
        imported = Summary.of([float(str(run["import_ms"])) for run in results])
        served = Summary.of([float(str(run["serve_ms"])) for run in results])
        listed = results[-1]["modules"]
        modules = [str(name) for name in listed] if isinstance(listed, list) else []
        rows.append(
            Row(
                "1c",
                f"receive serving `{source}` first: the source's module, verify, parse, answer",
                ms(served.median),
                served.spread(),
                f"import app {ms(imported.median)}",
                "",
                "no other source's code",
            )
        )
        table.append(
            (
                source,
                f"{ms(imported.median)} ({imported.spread()})",
                f"{ms(served.median)} ({served.spread()})",
                str(results[-1]["events"]),
                ", ".join(f"`{name}`" for name in _own(source, modules)) or "—",
                ", ".join(f"`{name}`" for name in _foreign(source, modules)) or "none",
            )
        )
    details = markdown_table(
        (
            "source",
            "import app (min–max)",
            "first request's source work (min–max)",
            "events in the sample",
            "its own modules",
            "other sources' modules loaded",
        ),
        table,
    )
    repeats = min((len(results) for results in runs.results.values()), default=0)
    method = [
        "One receive function serves every source, and `sources/__init__.py` imports a source's module on its "
        "first request only. Each figure is a fresh `python -I -S -B` (`tests/bench/serve_source.py`) whose path "
        "is the receive function's directory, the built layer and the runtime's boto3, with Lambda's environment "
        "and the source's settings as `make run` gives them. It imports `app`, then serves the source's vendor "
        "sample (its kit in `tests/devstack/vendors/`): the module loaded and built, the request verified and "
        f"parsed, the answer rendered; no AWS call. {repeats} runs per source, round-robin. The last columns list "
        "the source modules (and one-source parsers such as defusedxml) in `sys.modules` afterwards; "
        "`tests/unit/test_function_imports.py` asserts the same on every `make test`.",
    ]
    return Section("1c", "Cold start per source", rows, method, details)
