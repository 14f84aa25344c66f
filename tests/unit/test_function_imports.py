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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEITHER = ("aws_xray_sdk", "jsonpath_ng", "aws_lambda_powertools.utilities.data_masking")
NOT_LOADED = {
    "receive": (
        *NEITHER,
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
