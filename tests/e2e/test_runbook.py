"""The README's runbook, run as written: every ``crm-sphere`` command of it, in order, on a local stack."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from devstack.crm import generic_request
from devstack.stack import LocalStack
from e2e.support import stack_with, wait_for
from webhook_adapter.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND = re.compile(r"`(crm-sphere [^`]+)`")


def runbook_commands() -> list[str]:
    """The ``crm-sphere`` commands of the README's "Runbook" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Runbook\n", 1)[1].split("\n## ", 1)[0]
    return [" ".join(match.split()) for match in COMMAND.findall(section)]


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The local stack with the runbook's situations: an unmapped contact crm-42, a refused request; the CLI finds it
    from the working directory, as after `make run`."""
    stacks = stack_with()
    running = next(stacks)
    secret = running.secrets["GenericSecretArn"]
    headers, body = generic_request({"id": "crm-42", "email": "ada@example.com"}, secret=secret)
    accepted = httpx.post(f"{running.url}/webhooks/generic", headers=headers, content=body, timeout=10)
    headers, body = generic_request({"id": "crm-42", "email": "x@example.com"}, secret="whsec_d3Jvbmc=")
    refused = httpx.post(f"{running.url}/webhooks/generic", headers=headers, content=body, timeout=10)
    assert (accepted.status_code, refused.status_code) == (202, 401)
    key = accepted.json()["accepted"][0]
    wait_for(lambda: running.store.get_event("generic", "crm-42", key))
    running.publish_connection(tmp_path / ".make-run.json")
    monkeypatch.chdir(tmp_path)
    yield running
    stacks.close()


def test_every_runbook_command_runs_as_written(stack: LocalStack) -> None:
    # Given the runbook's commands (the README's words, not a copy of them)
    commands = runbook_commands()
    assert len(commands) >= 10
    assert any(command.startswith("crm-sphere replay --dead-letters") for command in commands)

    # When each is run in order, as an operator would type it
    for command in commands:
        result = CliRunner().invoke(app, shlex.split(command)[1:], env={"COLUMNS": "200"})

        # Then it succeeds
        assert result.exit_code == 0, f"{command}: {result.output}"

    # And the map reached Sphere; the replay the runbook then describes (its dry run without --dry-run) delivers
    # the change that was unmapped
    wait_for(lambda: {item["kind"] for item in stack.store.contact_history("generic", "crm-42")} >= {"operator.map"})
    replay = "crm-sphere replay --status unmapped --since 24h"
    assert f"`{replay} --dry-run`" in README.read_text(encoding="utf-8")
    assert CliRunner().invoke(app, shlex.split(replay)[1:]).exit_code == 0
    wait_for(lambda: {item["status"] for item in stack.store.contact_history("generic", "crm-42")} == {"delivered"})
