"""``make test-events`` publishes every ``events/`` file as a shareable test event of the function it is for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from devstack.sign_events import EVENTS_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_every_event_file_is_put_to_its_function_of_the_named_stack(tmp_path: Path) -> None:
    # Given a stand-in for the SAM CLI that records how it is called
    calls = tmp_path / "calls"
    sam = tmp_path / "sam"
    sam.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n', encoding="utf-8")
    sam.chmod(0o755)

    # When make test-events runs for a stack
    make = shutil.which("make")
    assert make is not None
    subprocess.run(  # noqa: S603 - our own Makefile, fixed arguments
        [make, "-s", "-o", ".venv-sam/.installed", "test-events", "STACK=crm-sphere-webhooks-prod", f"SAM={sam}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )

    # Then each file was put once, as a named test event of its function in that stack, overwriting an older one
    expected = set()
    for path in sorted(EVENTS_DIR.glob("*.json")):
        name = path.stem
        function = {"deliver": "DeliverFunction", "replay": "ReplayFunction"}.get(name.split("-")[0], "ReceiveFunction")
        expected.add(
            f"remote test-event put {function} --stack-name crm-sphere-webhooks-prod --name {name} "
            f"--file events/{path.name} --force"
        )
    assert set(calls.read_text(encoding="utf-8").splitlines()) == expected
    assert len(expected) == len(list(EVENTS_DIR.glob("*.json")))
