"""``make run``: the local stack with the demo, then serving webhooks until Ctrl-C or SIGTERM.

Environment (all optional): ``PORT`` (3000), ``HUBSPOT_CLIENT_SECRET``, ``GENERIC_WEBHOOK_SECRET``
(the local signing secrets), ``SPHERE_API_URL`` with ``SPHERE_API_TOKEN`` (a real Sphere instead
of the stand-in), ``DEMO=0`` to skip the demo, ``LOG_LEVEL``, ``RETRY_BASE_SECONDS``,
``RETRY_MAX_SECONDS``, ``MAX_RECEIVE_COUNT`` (the retry schedule and the redrive policy), and
``SPHERE_FAILURE_RATE`` with ``SPHERE_FAILURE_SEED`` (the stand-in fails that share of calls).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from devstack.demo import OutcomePrinter, run_demo
from devstack.stack import LocalStack, StackOptions


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # stop as Ctrl-C does: the stack's servers close and the process exits 0


def main() -> None:
    """Run until interrupted (Ctrl-C, or SIGTERM when started in the background)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Installed explicitly: a shell starting us in the background leaves SIGINT ignored, and SIGTERM
    # would otherwise end the process without stopping the stack.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    printer = OutcomePrinter()
    try:
        options = StackOptions.from_environment(os.environ, on_batch=printer)
    except ValueError as exc:
        raise SystemExit(f"make run: {exc}") from exc
    stack = LocalStack(options)
    try:
        stack.start()
    except OSError as exc:
        raise SystemExit(
            f"Could not start the local stack on port {options.port} ({exc.strerror}); try PORT=3001."
        ) from exc
    try:
        printer.stack = stack
        stack.publish_connection()  # crm-sphere finds this stack through it
        sphere = stack.standin.base_url if stack.standin else "the real Sphere API"
        print(f"Local stack up. Webhooks: {stack.url}/webhooks/{{hubspot,generic}}; deliveries go to {sphere}.")
        if os.environ.get("DEMO", "1") != "0":
            run_demo(stack, printer)
        print(f"\nServing webhooks on {stack.url} (Ctrl-C to stop).", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nStopping.", flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
