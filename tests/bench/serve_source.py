"""One cold receive container serving one source: import ``app``, then build, verify, parse and answer a request.

Run as a script (``python -I -S -B serve_source.py``) with a JSON request on stdin: ``paths`` (the function's
directory, the layer, the runtime's boto3, in Lambda's order), ``source``, ``url``, ``headers``, ``body``,
``now``, ``secret``. Prints one JSON object: ``import_ms``, ``serve_ms`` (the source's module loaded, the request
verified, parsed and answered; no AWS call) and ``modules`` (``sys.modules`` afterwards). Nothing but the standard
library and the given paths is importable, so what it lists is what the container loaded.

Used by ``bench.sources`` (timed) and ``tests/unit/test_function_imports.py`` (the module list).
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def main() -> int:
    """Serve the request on stdin; print the timings and the loaded modules."""
    sent = json.load(sys.stdin)
    sys.path[:0] = sent["paths"]
    started = time.perf_counter()
    importlib.import_module("app")
    imported = time.perf_counter()
    sources = importlib.import_module("webhook_adapter.sources")
    base = importlib.import_module("webhook_adapter.sources.base")
    source = sources.get_source(sent["source"])
    request = base.WebhookRequest(
        source=sent["source"],
        method="POST",
        url=sent["url"],
        headers=sent["headers"],
        body=sent["body"].encode(),
        received_at=sent["now"],
    )
    source.check_media_type(request)
    source.verify(request, [sent["secret"]])
    events = source.parse(request)
    source.answer(202, {"accepted": [event.event_id for event in events], "duplicates": []})
    served = time.perf_counter()
    result = {
        "import_ms": (imported - started) * 1000,
        "serve_ms": (served - imported) * 1000,
        "events": len(events),
        "modules": sorted(sys.modules),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
