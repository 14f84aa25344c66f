"""``crm-sphere``: the operator's command line (list, show, map, stats) over a local or a deployed stack.

Not part of the Lambda layer (its Makefile leaves this package out): it needs Typer and Rich, which
the functions never load. ``pip install -e .`` installs it with the project.
"""

from __future__ import annotations

__all__: list[str] = []
