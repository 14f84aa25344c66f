"""Time spent inside moto, so a measure can subtract it: moto stands in for AWS, its CPU is not ours.

``MotoMeter.install()`` wraps moto's ``BotocoreStubber`` (the ``before-send`` hook through which
``mock_aws`` answers every botocore request): each answered request is counted per operation,
with moto's wall and CPU time. Install it before ``mock_aws().start()``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MotoMeter"]

_CHUNK = 64 * 1024
"""SQS bills each started 64 KB of a request's payload as one request."""


@dataclass
class MotoMeter:
    """Moto's share of a block of calls: requests and 64 KB request chunks per ``service.Operation``, wall and CPU."""

    calls: Counter[str] = field(default_factory=Counter)
    chunks: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0
    cpu: float = 0.0

    def reset(self) -> None:
        """Start counting afresh."""
        self.calls.clear()
        self.chunks.clear()
        self.wall = self.cpu = 0.0

    @classmethod
    def install(cls) -> MotoMeter:
        """Wrap moto's request hook (once per process) and return the meter it feeds."""
        from moto.core.botocore_stubber import BotocoreStubber

        meter = cls()
        original = BotocoreStubber.__call__

        def metered(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(self, event_name, request, **kwargs)
            finally:
                meter.wall += time.perf_counter() - wall
                meter.cpu += time.process_time() - cpu
                operation = event_name.removeprefix("before-send.")
                meter.calls[operation] += 1
                meter.chunks[operation] += max(1, math.ceil(len(request.body or b"") / _CHUNK))

        BotocoreStubber.__call__ = metered  # type: ignore[method-assign]
        return meter
