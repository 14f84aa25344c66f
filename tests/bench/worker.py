"""A clean process for one measure: ``python -m bench.worker MODULE OUT.json OPTIONS.json``.

Imports ``MODULE`` (``bench.receive_cpu``, ``bench.delivery``, ``bench.cost``), calls its
``collect(options)`` and writes what it returns as JSON. Standard output is left to the
functions' log lines; the runner counts or discards it.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Run one measure's ``collect`` and write its result."""
    module, out, options = argv
    result = importlib.import_module(module).collect(json.loads(Path(options).read_text()))
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
