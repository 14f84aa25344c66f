"""``make run``: the local stack with the demo, then serving webhooks until Ctrl-C.

Environment (all optional): ``PORT`` (3000), ``HUBSPOT_CLIENT_SECRET``, ``GENERIC_WEBHOOK_SECRET``
(the local signing secrets), ``SPHERE_API_URL`` with ``SPHERE_API_TOKEN`` (a real Sphere instead
of the stand-in), ``DEMO=0`` to skip the demo.
"""

from __future__ import annotations

import logging
import os
import threading

from devstack.demo import OutcomePrinter, run_demo
from devstack.resources import secrets_from_environment
from devstack.stack import LocalStack, StackOptions


def main() -> None:
    """Run until interrupted (Ctrl-C)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    secrets = secrets_from_environment()
    real_sphere = os.environ.get("SPHERE_API_URL") and os.environ.get("SPHERE_API_TOKEN")
    printer = OutcomePrinter()
    options = StackOptions(
        port=int(os.environ.get("PORT", "3000")),
        sphere_url=os.environ["SPHERE_API_URL"] if real_sphere else None,
        sphere_token=os.environ["SPHERE_API_TOKEN"] if real_sphere else None,
        secrets=secrets,
        # The functions log JSON at INFO in AWS; locally the printed outcomes say what happened.
        environment={"POWERTOOLS_LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")},
        on_batch=printer,
    )
    stack = LocalStack(options)
    try:
        stack.start()
    except OSError as exc:
        raise SystemExit(
            f"Could not start the local stack on port {options.port} ({exc.strerror}); try PORT=3001."
        ) from exc
    try:
        printer.stack = stack
        sphere = stack.standin.base_url if stack.standin else "the real Sphere API"
        print(f"Local stack up. Webhooks: {stack.url}/webhooks/{{hubspot,generic}}; deliveries go to {sphere}.")
        if os.environ.get("DEMO", "1") != "0":
            run_demo(stack, printer)
        print(f"\nServing webhooks on {stack.url} (Ctrl-C to stop).")
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nStopping.")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
