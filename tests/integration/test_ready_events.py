"""``make events``: tracked ``events/`` files written again byte for byte, fresh signatures in ``events/signed/``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.lambda_events import LambdaContext
from devstack.pipeline import Pipeline
from devstack.sign_events import EVENTS_DIR, FRESH_SIGNATURE, LOCAL_BASE_URL, SIGNED_DIR, write_events
from devstack.vendors import VENDORS
from webhook_adapter import runtime

ROOT = Path(__file__).resolve().parents[2]


def make_events(directory: Path, **variables: str) -> str:
    """``make events``' command (``python -m devstack.sign_events``) writing into ``directory``; what it printed."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("layers/shared", "functions", "tests")),
        **variables,
    }
    done = subprocess.run(  # noqa: S603 - this interpreter running our own module
        [sys.executable, "-m", "devstack.sign_events", str(directory)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_make_events_writes_the_committed_files_again_whatever_the_time_and_the_secrets(tmp_path: Path) -> None:
    # Given your own secret and public URL in the variables, as the README says to set them
    variables = {"HUBSPOT_CLIENT_SECRET": "my-own-hubspot-secret", "PUBLIC_BASE_URL": "https://hooks.example.com"}

    # When make events runs twice
    make_events(tmp_path, **variables)
    again = make_events(tmp_path, **variables)

    # Then the tracked files are the committed ones, byte for byte, and the second run changed none of them
    written = sorted(path.name for path in tmp_path.glob("*.json"))
    # (the replay function's test events name records, not requests: nothing to sign, make events leaves them alone)
    assert written == sorted(path.name for path in EVENTS_DIR.glob("*.json") if not path.name.startswith("replay-"))
    for name in written:
        assert (tmp_path / name).read_bytes() == (EVENTS_DIR / name).read_bytes(), name
    assert " 0 tracked event(s) changed" in again
    # And the fresh ones, one per source, went to the signed folder, signed with your secret for your URL
    assert sorted(path.name for path in (tmp_path / SIGNED_DIR).glob("*.json")) == sorted(
        f"receive-{source}.json" for source in VENDORS
    )
    hubspot = json.loads((tmp_path / SIGNED_DIR / "receive-hubspot.json").read_text(encoding="utf-8"))
    tracked = json.loads((EVENTS_DIR / "receive-hubspot.json").read_text(encoding="utf-8"))
    assert hubspot["headers"]["x-hubspot-signature-v3"] != tracked["headers"]["x-hubspot-signature-v3"]


@pytest.fixture
def local_urls(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """The pipeline configured with ``make run``'s public URL, the one the events are signed for."""
    monkeypatch.setenv("PUBLIC_BASE_URL", LOCAL_BASE_URL)
    runtime.reset()
    return pipeline


def receive(pipeline: Pipeline, path: Path) -> int:
    event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    answer = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    return int(answer["statusCode"])


@pytest.mark.parametrize("source", sorted(VENDORS))
def test_a_tracked_event_works_as_it_is_unless_its_source_wants_a_fresh_signature(
    source: str, local_urls: Pipeline, tmp_path: Path
) -> None:
    # Given the tracked event of a source (signed at a fixed past moment) and the one make events signs now
    write_events(tmp_path, {}, now_ms=int(time.time() * 1000))
    name = f"receive-{source}.json"

    # When the receive function is invoked with each (as `sam local invoke -e` does)
    fresh = receive(local_urls, tmp_path / SIGNED_DIR / name)
    tracked = receive(local_urls, EVENTS_DIR / name)

    # Then the fresh one is accepted; the tracked one too, unless its source checks its signature's age
    # (FRESH_SIGNATURE, what the README lists: use events/signed/ for those)
    assert fresh < 300
    if source in FRESH_SIGNATURE:
        assert tracked == 401
    else:
        assert tracked < 300
