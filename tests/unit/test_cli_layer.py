"""The operator CLI stays out of Lambda: the layer's build leaves ``webhook_adapter/cli`` out, and no module it
ships imports Typer, Rich or Click (a cold start would pay for them, and the layer does not carry them).

Deterministic and offline: the layer's own Makefile recipe runs with an interpreter that skips its ``pip install``
of the dependencies (those come from the development install here), then a fresh interpreter imports every
module the build left and lists ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI_ONLY = ("typer", "rich", "click")


@pytest.fixture(scope="module")
def built_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make build-SharedLayer`` as ``sam build`` runs it, in a copy of the layer folder; the ``python/`` it made."""
    work = tmp_path_factory.mktemp("layer")
    source = work / "shared"
    shutil.copytree(ROOT / "layers" / "shared", source, ignore=shutil.ignore_patterns("__pycache__"))
    python = work / "python3.13"
    python.write_text(f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && exit 0\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    artifacts = work / "artifacts"
    (artifacts / "python").mkdir(parents=True)  # the skipped `pip install --target` would have made it
    make = shutil.which("make")
    assert make is not None, "make is needed to build the layer (as sam build runs it)"
    subprocess.run(  # noqa: S603 - make running the layer's own Makefile
        [make, "--no-print-directory", "build-SharedLayer", f"ARTIFACTS_DIR={artifacts}", f"PYTHON={python}"],
        cwd=source,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        check=True,
        timeout=300,
    )
    return artifacts / "python"


def test_the_layer_build_leaves_the_cli_out(built_layer: Path) -> None:
    # Given the layer as its Makefile builds it
    package = built_layer / "webhook_adapter"

    # Then it holds the shared package without the CLI
    assert (package / "store.py").is_file()
    assert not (package / "cli").exists()


def test_every_module_the_layer_ships_imports_without_the_cli_libraries(built_layer: Path) -> None:
    # Given a fresh interpreter with the built layer first on its path, the dependencies behind it, and Typer,
    # Rich and Click made unimportable, as they are on Lambda (httpx loads its own CLI from them when present)
    script = (
        "import importlib, importlib.abc, json, pkgutil, sys\n"
        "class Absent(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {CLI_ONLY!r}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import webhook_adapter\n"
        "for module in pkgutil.walk_packages(webhook_adapter.__path__, 'webhook_adapter.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    paths = [str(built_layer), sysconfig.get_paths()["purelib"]]

    # When every module of the layer's package is imported
    done = subprocess.run(  # noqa: S603 - this interpreter running our own script
        [sys.executable, "-I", "-S", "-B", "-c", f"import sys; sys.path[:0] = {paths!r}\n{script}"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    # Then every one imports (none needs them), from the layer, and the CLI is not among them
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout))
    assert {"webhook_adapter.store", "webhook_adapter.consume", "webhook_adapter.receive"} <= loaded
    assert (
        sorted(name for name in loaded if name.split(".")[0] in CLI_ONLY or name.startswith("webhook_adapter.cli"))
        == []
    )


def test_no_shipped_module_names_the_cli_libraries() -> None:
    # Given every module of the shared package but the CLI's
    package = ROOT / "layers" / "shared" / "webhook_adapter"
    shipped = [path for path in package.rglob("*.py") if "cli" not in path.relative_to(package).parts]

    # When their imports are read
    imported = {
        (path.name, name)
        for path in shipped
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in ([alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""])
    }

    # Then none is Typer, Rich, Click or the CLI package
    assert len(shipped) > 20
    assert (
        sorted(
            (file, name)
            for file, name in imported
            if name.split(".")[0] in CLI_ONLY or name.startswith("webhook_adapter.cli")
        )
        == []
    )
