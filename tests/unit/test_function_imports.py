"""Each function imports only what its own path uses: a cold start pays for every module imported.

Deterministic (no timing): a fresh interpreter imports a function's ``app`` as Lambda does and
lists ``sys.modules``. Receive never calls Sphere, normalizes nor records a delivery outcome
(deliver does); deliver never routes HTTP nor verifies a signature (receive does); neither loads
the X-Ray SDK (Lambda traces without it) nor a jsonpath parser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from devstack.source_config import source_environment
from devstack.vendors import vendor
from webhook_adapter.sources import SOURCE_MODULES

ROOT = Path(__file__).resolve().parents[2]
NEITHER = ("aws_xray_sdk", "jsonpath_ng", "aws_lambda_powertools.utilities.data_masking")
NOT_LOADED = {
    "receive": (
        *NEITHER,
        "webhook_adapter.sources.salesforce_cdc",  # the relay's source: loaded by the first EventBridge event
        "httpx",
        "webhook_adapter.sphere",
        "webhook_adapter.masking",
        "webhook_adapter.normalize",
        "webhook_adapter.outcome",
        "webhook_adapter.deliver",
        "webhook_adapter.consume",
        "phonenumbers",
        "email_validator",
        "pycountry",
    ),
    "deliver": (
        *NEITHER,
        "aws_lambda_powertools.event_handler",
        "webhook_adapter.signatures",
        "webhook_adapter.sources",
        "webhook_adapter.receive",
        "webhook_adapter.api",
    ),
}


def modules_after_import(function: str) -> set[str]:
    """``sys.modules`` of a fresh interpreter that imported the function's ``app`` with Lambda's path order."""
    function_dir = ROOT / "functions" / function
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(function_dir), str(ROOT / "layers" / "shared")]),
        "LAMBDA_TASK_ROOT": str(function_dir),
        "AWS_LAMBDA_FUNCTION_NAME": f"crm-sphere-local-{function}",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "crm-sphere-webhooks",
        "POWERTOOLS_METRICS_NAMESPACE": "CrmSphereWebhooks",
    }
    done = subprocess.run(
        [sys.executable, "-B", "-c", "import json, sys\nimport app\nprint(json.dumps(sorted(sys.modules)))"],
        env=environment,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("function", ["receive", "deliver"])
def test_a_function_does_not_import_what_its_path_never_uses(function: str) -> None:
    # Given a fresh interpreter, as a cold container is
    # When the function's handler module is imported
    loaded = modules_after_import(function)

    # Then it is the function's own app, and none of the modules only the other path (or nothing) uses is loaded
    assert "app" in loaded
    assert "webhook_adapter" in loaded
    unwanted = sorted(
        name for name in loaded for prefix in NOT_LOADED[function] if name == prefix or name.startswith(f"{prefix}.")
    )
    assert unwanted == []


_SERVE_SOURCE = ROOT / "tests" / "bench" / "serve_source.py"
SITE_PACKAGES = sysconfig.get_paths()["purelib"]
"""The development install of the layer's dependencies, behind the layer's own code (``-I -S`` leaves it out)."""


def serve_one_source(source: str) -> set[str]:
    """``sys.modules`` of a fresh receive interpreter that served the source's sample (``bench.serve_source``)."""
    kit = vendor(source)
    now = time.time()
    sent = kit.sample(secret=kit.local_secret, base_url="https://hooks.example.test", now_ms=int(now * 1000))
    request = {
        "paths": [
            str(ROOT / "functions" / "receive"),
            str(ROOT / "layers" / "shared"),
            sysconfig.get_paths()["purelib"],
        ],
        "source": source,
        "url": f"https://hooks.example.test{sent.path}",
        "headers": {name.lower(): value for name, value in sent.headers.items()},
        "body": sent.body.decode(),
        "now": now,
        "secret": kit.local_secret,
    }
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_REGION": "us-east-1"}
    done = subprocess.run(  # noqa: S603 - this interpreter running our own script
        [sys.executable, "-I", "-S", "-B", str(_SERVE_SOURCE)],
        input=json.dumps(request),
        env=environment | source_environment(source),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(done.stdout)["modules"])


@pytest.mark.parametrize("source", sorted(SOURCE_MODULES))
def test_receive_loads_only_the_modules_of_the_source_it_serves(source: str) -> None:
    # Given a fresh receive interpreter configured as the local stack configures the source
    # When it verifies, parses and answers the source's vendor sample
    loaded = serve_one_source(source)

    # Then the source's own module is loaded, and no other source's module nor its parser (defusedxml: Salesforce)
    assert SOURCE_MODULES[source] in loaded
    others = {module for name, module in SOURCE_MODULES.items() if name != source}
    others.add("webhook_adapter.sources.salesforce_cdc")  # the relay's source (EventBridge), never an HTTP route
    assert sorted(loaded & others) == []
    if source != "salesforce":
        assert not any(name == "defusedxml" or name.startswith("defusedxml.") for name in loaded)
