"""``make bench`` stays runnable: its quick mode runs every measure and writes every row (no figure is checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEASURES = ("1", "2", "3", "4", "5", "6")


def test_quick_bench_writes_a_row_for_every_measure(tmp_path: Path) -> None:
    # Given the harness's quick mode, writing to a file of its own
    output = tmp_path / "BENCHMARKS.md"
    environment = {
        **os.environ,
        "BENCH_QUICK": "1",
        "BENCH_OUTPUT": str(output),
        "PYTHONPATH": os.pathsep.join(str(REPO / part) for part in ("layers/shared", "functions", "tests")),
    }

    # When it runs as `make bench` runs it
    done = subprocess.run(
        [sys.executable, "-B", "-m", "bench"], cwd=REPO, env=environment, capture_output=True, timeout=600, check=False
    )

    # Then it succeeded, printed the table and wrote the document with rows of every measure and their method
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    document = output.read_text()
    assert "## Headline figures" in document
    for number in MEASURES:
        assert f"\n| {number} | " in document, number
        assert f"\n## {number}. " in document, number
    assert "\n## 1b. Lambda SnapStart, on paper" in document
    assert "Quick mode" in document
    assert "cost per million events" in done.stdout.decode()
