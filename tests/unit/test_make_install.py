"""``make install`` refuses an interpreter other than 3.13 at once, before it creates or installs anything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_python_override_that_is_not_3_13_stops_before_the_venv_is_made(tmp_path: Path) -> None:
    # Given a copy of the project's Makefile and the files its install rule depends on, and PYTHON naming an
    # interpreter that answers as 3.11 does (its version check fails, its --version says 3.11.7)
    for name in ("Makefile", "pyproject.toml", "layers/shared/requirements.txt", "layers/shared/cli-requirements.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / "python3.11"
    python.write_text('#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.11.7"; exit 0; }\nexit 1\n')
    python.chmod(0o755)
    make = shutil.which("make")
    assert make is not None

    # When `make install` runs with it
    done = subprocess.run(  # noqa: S603 - make running the project's own Makefile
        [make, "--no-print-directory", "install", f"PYTHON={python}"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    # Then it fails naming the interpreter and its version, and no venv was made
    assert done.returncode != 0
    assert f"PYTHON={python} is not Python 3.13 (Python 3.11.7)" in done.stdout + done.stderr
    assert not (tmp_path / ".venv").exists()
