"""Every source plug-in is wired everywhere a user meets it: the template, the README, events/."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.resources import load_template
from devstack.sign_events import EVENTS_DIR
from webhook_adapter.sources import SOURCE_MODULES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(SOURCE_MODULES))
def test_each_source_is_enabled_secured_documented_and_has_a_ready_event(name: str) -> None:
    # Given the receive function's environment in the template
    variables = load_template()["Resources"]["ReceiveFunction"]["Properties"]["Environment"]["Variables"]

    # Then the source is enabled, has its own signing secret, a README section naming its route, and an event
    assert name in variables["ENABLED_SOURCES"].split(",")
    assert f"{name.upper()}_SECRET_ID" in variables
    assert f"/webhooks/{name}" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert (EVENTS_DIR / f"receive-{name}.json").is_file()


def test_no_source_is_enabled_that_has_no_module() -> None:
    # Given the sources the template enables
    variables = load_template()["Resources"]["ReceiveFunction"]["Properties"]["Environment"]["Variables"]

    # Then each has a plug-in module (a typo would answer 404 for every webhook)
    assert set(variables["ENABLED_SOURCES"].split(",")) <= set(SOURCE_MODULES)
