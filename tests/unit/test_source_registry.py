"""Every source plug-in is wired everywhere a user meets it: the template, the README, events/, its vendor's sample.

Adding a source means: its module (``SOURCE_MODULES``), its vendor kit (``devstack.vendors``), its template wiring
(secret parameter, condition, variables, the role's secret, the URL output), a README section, ``make events``, and
a test on the vendor's documented sample in ``tests/fixtures/<source>/``. This test names whichever is missing.
A relay source (``RELAY_SOURCES``: EventBridge invokes receive, no route, no signature) has no route, kit or secret,
but still its fixtures' test, a README section and a ready event (``events/relay-<source>.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devstack.resources import LOCAL_SECRETS, load_template
from devstack.sign_events import EVENTS_DIR
from devstack.vendors import VENDORS, vendor
from webhook_adapter.relay import RELAY_SOURCES, is_relay_event
from webhook_adapter.settings import env_prefix
from webhook_adapter.sources import SOURCE_MODULES

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


@pytest.mark.parametrize("name", sorted(SOURCE_MODULES))
def test_each_source_is_wired_in_the_template_behind_its_own_secret(name: str) -> None:
    # Given the template and the receive function's environment
    template = load_template()
    variables = template["Resources"]["ReceiveFunction"]["Properties"]["Environment"]["Variables"]

    # Then the source reads its own secret parameter, is enabled when it is given, may read it, and has its URL output
    parameter = variables[f"{env_prefix(name)}_SECRET_ID"]["Ref"]
    condition = f"Has{parameter.removesuffix('Arn')}"
    assert parameter in template["Parameters"]
    assert {"Fn::If": [condition, name, {"Ref": "AWS::NoValue"}]} in variables["ENABLED_SOURCES"]["Fn::Join"][1]
    statements = template["Resources"]["ReceiveFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    readable = next(s for s in statements["Statement"] if s["Action"] == "secretsmanager:GetSecretValue")["Resource"]
    assert {"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]} in readable
    output = template["Outputs"][f"{parameter.removesuffix('SecretArn')}WebhookUrl"]
    assert output["Condition"] == condition
    assert f"/webhooks/{name}" in output["Value"]["Fn::Sub"][0]


@pytest.mark.parametrize("name", sorted(SOURCE_MODULES))
def test_each_source_has_a_vendor_kit_a_local_secret_a_ready_event_and_a_readme_section(name: str) -> None:
    # Given the source's vendor kit
    assert name in VENDORS, f"{name} has no kit in devstack.vendors"
    kit = vendor(name)

    # Then the local stack gives it its secret, events/ has its ready event, and the README a section on its route
    assert LOCAL_SECRETS[kit.secret_parameter] == kit.local_secret
    assert (EVENTS_DIR / f"receive-{name}.json").is_file()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.split(r"^#{2,4} ", readme, flags=re.MULTILINE)
    assert any(f"/webhooks/{name}" in section and "secret" in section.lower() for section in sections)


@pytest.mark.parametrize("name", sorted(SOURCE_MODULES.keys() | RELAY_SOURCES))
def test_each_source_is_tested_on_its_vendors_documented_sample(name: str) -> None:
    # Given the vendor's samples, as documented, in the source's fixtures
    samples = sorted(path.name for path in (TESTS / "fixtures" / name).glob("*") if path.suffix != ".txt")
    assert samples, f"tests/fixtures/{name}/ holds no vendor sample"

    # Then a test reads each of them
    tests = "\n".join(path.read_text(encoding="utf-8") for path in TESTS.rglob("*.py"))
    for sample in samples:
        assert sample in tests, f"no test reads tests/fixtures/{name}/{sample}"


def test_every_source_in_the_template_and_every_kit_has_a_module() -> None:
    # Given the sources the template can enable and the vendor kits
    variables = load_template()["Resources"]["ReceiveFunction"]["Properties"]["Environment"]["Variables"]
    templated = {choice["Fn::If"][1] for choice in variables["ENABLED_SOURCES"]["Fn::Join"][1]}

    # Then each has a plug-in module (a typo would answer 404 for every webhook)
    assert templated == set(SOURCE_MODULES) == set(VENDORS)


@pytest.mark.parametrize("name", sorted(RELAY_SOURCES))
def test_each_relay_source_has_a_ready_event_and_a_readme_section_but_no_route(name: str) -> None:
    # Given a source EventBridge delivers
    # Then it has no route nor kit, a ready EventBridge event in events/, and a README section naming its settings
    assert name not in SOURCE_MODULES
    assert name not in VENDORS
    ready = json.loads((EVENTS_DIR / f"relay-{name}.json").read_text(encoding="utf-8"))
    assert is_relay_event(ready)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.split(r"^#{2,4} ", readme, flags=re.MULTILINE)
    assert any(f"{env_prefix(name)}_" in section and "EventBridge" in section for section in sections)
