"""How much a run measures: the full run of ``make bench``, or the quick one (``BENCH_QUICK=1``) for the smoke test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["REPO", "Config"]

REPO = Path(__file__).resolve().parents[2]
"""The repository root."""


@dataclass(frozen=True, slots=True)
class Config:
    """Repetitions per measure, and where the run writes."""

    quick: bool
    output: Path
    work: Path
    """A scratch directory, removed at the end of the run."""

    @property
    def import_runs(self) -> int:
        """Fresh interpreters per import variant (the issue asks for at least 7)."""
        return 1 if self.quick else 9

    @property
    def first_call_runs(self) -> int:
        """Fresh interpreters per import + first call variant."""
        return 1 if self.quick else 5

    @property
    def receive_batches(self) -> int:
        """Warm invocations of the receive handler with a 100-event batch."""
        return 5 if self.quick else 300

    @property
    def receive_singles(self) -> int:
        """Warm invocations of the receive handler with a single event."""
        return 20 if self.quick else 3000

    @property
    def delivery_batches(self) -> int:
        """Deliver invocations of 10 messages at Sphere's 100 ms."""
        return 1 if self.quick else 10

    @property
    def cost_contacts(self) -> int:
        """Contacts sending single changes in the cost run."""
        return 3 if self.quick else 20

    @property
    def cost_rounds(self) -> int:
        """Repetitions of each cost scenario's traffic (3 single changes per contact, 100-event batches)."""
        return 1 if self.quick else 3
