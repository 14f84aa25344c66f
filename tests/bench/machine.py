"""The machine a run was measured on: cores, CPU model, memory, Python, date and load."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Machine", "describe_machine"]


@dataclass(frozen=True, slots=True)
class Machine:
    """What BENCHMARKS.md says about where and when the figures were taken."""

    cores: int
    cpu_model: str
    memory_gib: float
    python: str
    system: str
    date: str
    load_average: str

    def lines(self) -> list[str]:
        """A Markdown bullet list."""
        return [
            f"- date: {self.date}",
            f"- machine: {self.cores} cores, {self.cpu_model}, {self.memory_gib:.1f} GiB memory ({self.system})",
            f"- Python: {self.python}",
            f"- load average when the run started (1, 5, 15 min): {self.load_average}",
        ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def describe_machine() -> Machine:
    """This machine, now."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return Machine(
        cores=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        memory_gib=_memory_gib(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        system=f"{platform.system()} {platform.machine()}",
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_average=load,
    )
