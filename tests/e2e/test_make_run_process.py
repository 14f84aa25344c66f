"""``make run`` as a process: started in the background, it stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0
STOP_SECONDS = 30.0


class Output:
    """Collects a process's output lines in a thread, so the test can wait for one with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float) -> None:
        """Return once a line containing ``text`` was printed; fail if the output ends or time runs out."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return
        pytest.fail(f"make run did not print {text!r} in time; it printed {self.seen}")

    def rest(self, timeout: float) -> str:
        """Everything printed until the output ends."""
        self._thread.join(timeout)
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


def test_make_run_in_the_background_stops_cleanly_on_sigterm() -> None:
    # Given make run started in the background (SIGINT ignored, as a non-interactive shell leaves it), no demo
    environment = {
        **os.environ,
        "PORT": "0",
        "DEMO": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("layers/shared", "functions", "tests")),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - only sets a signal
    )
    output = Output(process)
    try:
        output.wait_for("Serving webhooks", START_SECONDS)

        # When it is sent SIGTERM
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # Then it says it stops, stops its servers and exits 0
    assert "Stopping." in output.rest(STOP_SECONDS)
    assert process.returncode == 0
