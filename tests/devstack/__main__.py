"""``make run``: the local stack with the demo, then serving webhooks until Ctrl-C or SIGTERM.

The console shows requests and outcomes only: the functions' JSON log lines (Powertools' logs and
metrics), Python's warnings and the stack's own log records go to a log file, whose path is printed
first, unless ``LOGS=1`` asks for them on the console.

Environment (all optional): ``PORT`` (3000), ``HUBSPOT_CLIENT_SECRET``, ``GENERIC_WEBHOOK_SECRET``
(the local signing secrets), ``SPHERE_API_URL`` with ``SPHERE_API_TOKEN`` (a real Sphere instead
of the stand-in), ``DEMO=0`` to skip the demo, ``LOGS=1`` (logs on the console), ``RUN_LOG`` (the log
file, ``make-run.log`` otherwise), ``LOG_LEVEL`` (``INFO`` into the file, ``WARNING`` on the console),
``RETRY_BASE_SECONDS``, ``RETRY_MAX_SECONDS``, ``MAX_RECEIVE_COUNT`` (the retry schedule and the redrive
policy), and ``SPHERE_FAILURE_RATE`` with ``SPHERE_FAILURE_SEED`` (the stand-in fails that share of calls).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from devstack.demo import HEADER, ConsoleStack, OutcomePrinter, Say, run_demo
from devstack.stack import StackOptions

DEFAULT_LOG = "make-run.log"


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # stop as Ctrl-C does: the stack's servers close and the process exits 0


@contextmanager
def _logs_routed(environ: Mapping[str, str]) -> Iterator[tuple[TextIO, Path | None]]:
    """The console stream, and the log file the logs go to meanwhile (``None`` with ``LOGS=1``).

    Powertools' Logger writes to ``sys.stdout`` as it was when the function module was imported (at the
    stack's start), its metrics and Python's ``print`` to ``sys.stdout`` at the time: pointing
    ``sys.stdout`` at the file before the stack starts sends them all there. Tracebacks stay on stderr.
    """
    console = sys.stdout
    if environ.get("LOGS", "0") not in {"", "0"}:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        yield console, None
        return
    path = Path(environ.get("RUN_LOG") or DEFAULT_LOG).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", buffering=1) as log_file:
        logging.basicConfig(
            level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=log_file
        )
        logging.captureWarnings(True)
        sys.stdout = log_file
        try:
            yield console, path
        finally:
            sys.stdout = console
            logging.captureWarnings(False)


def main() -> None:
    """Run until interrupted (Ctrl-C, or SIGTERM when started in the background)."""
    # Installed explicitly: a shell starting us in the background leaves SIGINT ignored, and SIGTERM
    # would otherwise end the process without stopping the stack.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with _logs_routed(os.environ) as (console, log_path):

        def say(line: str) -> None:
            console.write(line + "\n")
            console.flush()

        environ = dict(os.environ)
        if log_path is not None:
            say(f"Logs (the functions' JSON lines, warnings) go to {log_path}; LOGS=1 prints them here instead.")
            environ.setdefault("LOG_LEVEL", "INFO")  # a file has room for every line the functions log
        printer = OutcomePrinter(say=say)
        try:
            options = StackOptions.from_environment(environ, on_batch=printer)
        except ValueError as exc:
            raise SystemExit(f"make run: {exc}") from exc
        _serve(ConsoleStack(options, printer), printer, say)


def _serve(stack: ConsoleStack, printer: OutcomePrinter, say: Say) -> None:
    try:
        stack.start()
    except OSError as exc:
        raise SystemExit(
            f"Could not start the local stack on port {stack.options.port} ({exc.strerror}); try PORT=3001."
        ) from exc
    try:
        printer.stack = stack
        stack.publish_connection()  # crm-sphere finds this stack through it
        sphere = stack.standin.base_url if stack.standin else "the real Sphere API"
        say(f"Local stack up. Webhooks: {stack.url}/webhooks/<source>; deliveries go to {sphere}.")
        demo = os.environ.get("DEMO", "1") != "0"
        if demo:
            run_demo(stack, printer, say=say)
        stack.reporting = True
        say(f"\nServing webhooks on {stack.url} (Ctrl-C to stop): each request prints as the demo's did.")
        if not demo:
            say(HEADER)  # the demo printed it first otherwise
        threading.Event().wait()
    except KeyboardInterrupt:
        say("\nStopping.")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
