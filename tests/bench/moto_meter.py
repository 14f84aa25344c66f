"""Time spent inside moto, so a measure can subtract it: moto stands in for AWS, its CPU is not ours.

``MotoMeter.install()`` wraps moto's ``BotocoreStubber`` (the ``before-send`` hook through which
``mock_aws`` answers every botocore request): each answered request is counted per operation,
with moto's wall and CPU time. Install it before ``mock_aws().start()``. With several threads
calling AWS at once, ``thread_cpu`` is the one to subtract: the CPU moto used in the threads that
called it (``cpu`` is the process's, other threads' included; ``wall`` adds up overlapping calls).
"""

from __future__ import annotations

import math
import threading
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
    thread_cpu: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Start counting afresh."""
        with self.lock:
            self.calls.clear()
            self.chunks.clear()
            self.wall = self.cpu = self.thread_cpu = 0.0

    @classmethod
    def install(cls) -> MotoMeter:
        """Wrap moto's request hook (once per process) and return the meter it feeds."""
        from moto.core.botocore_stubber import BotocoreStubber

        meter = cls()
        original = BotocoreStubber.__call__

        def metered(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            wall, cpu, thread_cpu = time.perf_counter(), time.process_time(), time.thread_time()
            try:
                return original(self, event_name, request, **kwargs)
            finally:
                spent = (time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - thread_cpu)
                operation = event_name.removeprefix("before-send.")
                with meter.lock:
                    meter.wall += spent[0]
                    meter.cpu += spent[1]
                    meter.thread_cpu += spent[2]
                    meter.calls[operation] += 1
                    meter.chunks[operation] += max(1, math.ceil(len(request.body or b"") / _CHUNK))

        BotocoreStubber.__call__ = metered  # type: ignore[method-assign]
        return meter
