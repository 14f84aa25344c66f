"""The operator CLI (``crm-sphere``) through its entry point, on the local stack ``make run`` starts.

The stack is seeded with real signed webhooks over HTTP: a mapped contact (delivered), a contact without
a Sphere id (unmapped) and a forged request (refused). The commands run through the Typer app as the
console script does (``CliRunner``), once as a separate process (``python -m webhook_adapter.cli``),
and once with ``--stack`` against a CloudFormation stack (moto's) whose outputs name the local table and queue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from devstack.crm import generic_request
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.stack import LocalStack, StackOptions
from e2e.support import batch_done, wait_for
from webhook_adapter.cli.app import MAP_KIND, app
from webhook_adapter.masking import ERASED
from webhook_adapter.model import Status

ROOT = Path(__file__).resolve().parents[2]
MAPPED = "crm-cli-mapped"
UNMAPPED = "crm-cli-unmapped"
NEW_CUSTOMER = "customer_c11000000000000000000000000000aa"
EMAIL = "grace@example.com"


@dataclass(frozen=True)
class Seeded:
    stack: LocalStack
    connection: Path
    mapped_event: str
    unmapped_event: str

    def cli(self, *args: str) -> Result:
        """``crm-sphere --local-file <this stack's connection file> ARGS`` through the Typer app."""
        return CliRunner().invoke(app, ["--local-file", str(self.connection), *args], env={"COLUMNS": "200"})

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


def post_generic(stack: LocalStack, payload: dict[str, Any], *, secret: str | None = None) -> httpx.Response:
    headers, body = generic_request(payload, secret=secret or stack.secrets["GenericSecretArn"])
    return httpx.post(f"{stack.url}/webhooks/generic", headers=headers, content=body, timeout=10)


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    """The local stack with a delivered, an unmapped and a refused webhook recorded, and its connection file.

    One stack per test: the suite's autouse fixture resets the process's AWS settings before each test.
    """
    options = StackOptions(port=0, environment={"RETRY_BASE_SECONDS": "0"}, on_batch=batch_done)
    with LocalStack(options) as stack:
        assert stack.standin is not None
        stack.standin.add_customer(NEW_CUSTOMER, firstName="Grace", lastName="Hopper", dateOfBirth="1906-12-09")
        mapped = post_generic(stack, {"id": MAPPED, "sphereCustomerId": SEED_INDIVIDUAL_ID, "email": "ada@example.com"})
        unmapped = post_generic(stack, {"id": UNMAPPED, "email": EMAIL})
        forged = post_generic(stack, {"id": "crm-cli-forged", "email": EMAIL}, secret="whsec_d3Jvbmc=")
        assert (mapped.status_code, unmapped.status_code, forged.status_code) == (202, 202, 401)
        events = {MAPPED: mapped.json()["accepted"][0], UNMAPPED: unmapped.json()["accepted"][0]}
        wait_for(lambda: all(stack.store.get_event("generic", contact, key) for contact, key in events.items()))
        connection = stack.publish_connection(tmp_path / ".make-run.json")
        yield Seeded(stack, connection, events[MAPPED], events[UNMAPPED])


def test_make_runs_connection_file_names_the_stack_and_goes_when_it_stops(tmp_path: Path) -> None:
    # Given a local stack that published its connection file
    path = tmp_path / ".make-run.json"
    with LocalStack(StackOptions(port=0)) as stack:
        stack.publish_connection(path)
        assert stack.resources is not None

        # Then the file names its embedded AWS, table and queues
        assert json.loads(path.read_text()) == {
            "endpoint_url": stack.aws_url,
            "region": "us-east-1",
            "table_name": stack.resources.table_name,
            "queue_url": stack.resources.queue_url,
            "dead_letter_queue_url": stack.resources.dead_letter_queue_url,
        }

    # And it is removed when the stack stops (a later crm-sphere says no local stack runs instead of hanging)
    assert not path.exists()
    result = CliRunner().invoke(app, ["--local-file", str(path), "stats"])
    assert result.exit_code == 1
    assert "make run" in result.stderr


def test_list_shows_the_events_an_operator_acts_on(seeded: Seeded) -> None:
    # When the operator lists without a filter (every indexed status, the last 24 hours)
    table = seeded.cli("list")
    items = seeded.cli_json("list")

    # Then the unmapped event and the refused request are listed, and the delivered one is not (not indexed)
    assert table.exit_code == 0, table.output
    assert UNMAPPED in table.stdout
    assert "unmapped" in table.stdout
    assert "refused" in table.stdout
    statuses = {(item["status"], item.get("contact_id")) for item in items}
    assert statuses == {("unmapped", UNMAPPED), ("refused", None)}

    # And filters by status and source narrow it
    only_unmapped = seeded.cli_json("list", "--status", "unmapped", "--source", "generic")
    assert [item["event_id"] for item in only_unmapped] == [seeded.unmapped_event]
    assert seeded.cli_json("list", "--source", "hubspot") == []


def test_a_status_the_index_leaves_out_needs_scan_or_a_contact(seeded: Seeded) -> None:
    # When the operator asks for delivered events without --scan
    refused = seeded.cli("list", "--status", "delivered")

    # Then the CLI says why and how, without reading the table
    assert refused.exit_code == 2
    assert "--scan" in refused.stderr

    # When they add --scan, or name the contact
    scanned = seeded.cli("list", "--status", "delivered", "--scan", "--json")
    by_contact = seeded.cli_json("list", "--source", "generic", "--contact", MAPPED)

    # Then the delivered event is found both ways (the scan warns about what it reads)
    assert scanned.exit_code == 0
    assert "reads every item" in scanned.stderr
    assert [item["event_id"] for item in json.loads(scanned.stdout)] == [seeded.mapped_event]
    assert [(item["event_id"], item["status"]) for item in by_contact] == [(seeded.mapped_event, "delivered")]

    # And a contact's events narrow by window and status like the others
    narrowed = seeded.cli_json("list", "--source", "generic", "--contact", MAPPED, "--since", "1h", "-s", "delivered")
    assert [item["event_id"] for item in narrowed] == [seeded.mapped_event]
    assert seeded.cli_json("list", "--source", "generic", "--contact", MAPPED, "-s", "unmapped") == []
    assert seeded.cli_json("list", "--source", "generic", "--contact", MAPPED, "--until", "1h") == []
    assert seeded.cli("list", "--contact", MAPPED).exit_code == 2  # a contact id means nothing without its source


def test_show_a_contact_masks_its_details_unless_revealed(seeded: Seeded) -> None:
    # When the operator shows the unmapped contact, then again with --reveal
    masked = seeded.cli("show", "generic", UNMAPPED)
    masked_json = seeded.cli_json("show", "generic", UNMAPPED)
    revealed = seeded.cli_json("show", "generic", UNMAPPED, "--reveal")

    # Then its state and history are shown, the email erased as in recorded requests, unless revealed
    assert masked.exit_code == 0, masked.output
    assert EMAIL not in masked.stdout
    assert ERASED in masked.stdout
    assert masked_json["state"]["fields"]["email"]["value"] == ERASED
    assert EMAIL not in json.dumps(masked_json)
    assert revealed["state"]["fields"]["email"]["value"] == EMAIL
    assert [(item["event_id"], item["status"]) for item in masked_json["events"]] == [
        (seeded.unmapped_event, "unmapped")
    ]


def test_show_one_event_prints_its_record_and_history(seeded: Seeded) -> None:
    # When the operator shows the delivered event by the id the CRM sent
    item = seeded.cli_json("show", "generic", MAPPED, "--event", seeded.mapped_event)
    table = seeded.cli("show", "generic", MAPPED, "-e", seeded.mapped_event)

    # Then its whole record is there: Sphere's customer, the masked request, the history
    assert item["status"] == "delivered"
    assert item["customer_id"] == SEED_INDIVIDUAL_ID
    assert item["request"]["email"] == ERASED
    assert [entry["status"] for entry in item["history"]] == ["queued", "delivered"]
    assert table.exit_code == 0
    assert "history" in table.stdout
    assert SEED_INDIVIDUAL_ID in table.stdout

    # And an unknown event or contact exits 1 with a message
    missing = seeded.cli("show", "generic", MAPPED, "--event", "msg_nope")
    assert missing.exit_code == 1
    assert "no event msg_nope" in missing.stderr
    assert seeded.cli("show", "generic", "crm-nobody").exit_code == 1


def test_stats_count_the_indexed_statuses_and_scan_counts_the_rest(seeded: Seeded) -> None:
    # When the operator asks for stats, then with --scan
    indexed = seeded.cli_json("stats", "--since", "1h")
    scanned = seeded.cli_json("stats", "--since", "1h", "--scan")
    table = seeded.cli("stats")

    # Then the index counts the unmapped event and the refused request, and names what it cannot count
    assert indexed["counts"]["unmapped"] == {"generic": 1}
    assert indexed["counts"]["refused"] == {"generic": 1}
    assert indexed["counts"]["rejected"] == {}
    assert "delivered" in indexed["not_counted"]
    assert "delivered" not in indexed["counts"]
    assert "not counted" in table.stdout

    # And the scan counts every status, delivered included
    assert scanned["not_counted"] == []
    assert scanned["counts"]["delivered"] == {"generic": 1}
    assert scanned["counts"]["unmapped"] == {"generic": 1}


def test_map_queues_a_change_that_deliver_sends_to_the_new_customer_and_records(seeded: Seeded) -> None:
    stack = seeded.stack
    assert stack.standin is not None
    # Given the unmapped contact (its email known, no Sphere id)
    # When the operator maps it to a Sphere customer
    result = seeded.cli("map", "generic", UNMAPPED, NEW_CUSTOMER)

    # Then the receipt names the queued change and how to see its outcome
    assert result.exit_code == 0, result.output
    key = next(word for word in result.stdout.split() if word.startswith("operator:map:")).rstrip(":")
    assert f"show generic {UNMAPPED} --event {key}" in result.stdout

    # And deliver merges it with the known email and PATCHes the new customer once
    item = wait_for(lambda: stack.store.get_event("generic", UNMAPPED, key))
    patches = stack.standin.patches(NEW_CUSTOMER)
    assert [patch.body for patch in patches] == [{"email": EMAIL}]

    # And its outcome is recorded like any change's, and the contact's state holds the new id
    assert item["status"] == Status.DELIVERED
    assert item["kind"] == MAP_KIND
    assert item["customer_id"] == NEW_CUSTOMER
    shown = seeded.cli_json("show", "generic", UNMAPPED, "--event", key)
    assert shown["fields"] == ["customer_id"]
    state = seeded.cli_json("show", "generic", UNMAPPED)["state"]
    assert state["fields"]["customer_id"]["value"] == NEW_CUSTOMER

    # When a contact nothing was recorded for is mapped, as JSON
    first = seeded.cli("map", "generic", "crm-cli-new", NEW_CUSTOMER, "--json")

    # Then the receipt is JSON, and the operator is told the id waits for the contact's first change
    assert first.exit_code == 0, first.output
    receipt = json.loads(first.stdout)
    assert receipt["contact_id"] == "crm-cli-new"
    assert receipt["accepted"][0].startswith("operator:map:")
    assert "nothing was recorded for generic contact crm-cli-new" in first.stderr


def test_map_refuses_a_malformed_id_or_an_unknown_source_before_connecting(tmp_path: Path) -> None:
    # Given no stack at all (nothing can be queued)
    cli = ["--local-file", str(tmp_path / "none.json"), "map"]

    # When the operator maps to an id Sphere would never accept, or under a source that does not exist
    bad_id = CliRunner().invoke(app, [*cli, "generic", UNMAPPED, "cus_123"])
    bad_source = CliRunner().invoke(app, [*cli, "hubspott", UNMAPPED, NEW_CUSTOMER])

    # Then both are usage errors naming the problem, raised before the stack is looked for
    assert (bad_id.exit_code, bad_source.exit_code) == (2, 2)
    assert "customer_[a-z0-9]+" in bad_id.stderr
    assert "not a source" in bad_source.stderr


def test_the_module_entry_point_runs_as_its_own_process(seeded: Seeded) -> None:
    # Given a separate process, as the console script runs (its package on the path as `pip install -e .` puts it)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "layers" / "shared"),
        "HOME": os.environ.get("HOME", "/tmp"),
    }

    # When it lists the stack's unmapped events as JSON
    done = subprocess.run(  # noqa: S603 - this interpreter running our own module
        [sys.executable, "-m", "webhook_adapter.cli", "--local-file", str(seeded.connection), "list", "--json"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    # Then it answers from the stack (placeholder credentials: none are needed or read for the local stack)
    assert done.returncode == 0, done.stderr
    assert UNMAPPED in {item.get("contact_id") for item in json.loads(done.stdout)}


def test_stack_reads_the_deployed_stacks_outputs(seeded: Seeded) -> None:
    stack = seeded.stack
    assert stack.resources is not None
    # Given a CloudFormation stack (moto's) whose outputs name the local table and queue, and AWS settings from
    # the usual places (the environment) pointing at that AWS
    name = f"crm-sphere-cli-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-marker"}}},
        "Outputs": {
            "EventsTableName": {"Value": stack.resources.table_name},
            "ChangesQueueUrl": {"Value": stack.resources.queue_url},
            "DeadLetterQueueUrl": {"Value": stack.resources.dead_letter_queue_url},
        },
    }
    stack.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    # (for the CLI's run only: a monkeypatched variable would outlive the stack, restored after it stopped)
    aws = {"AWS_ENDPOINT_URL": stack.aws_url, "AWS_DEFAULT_REGION": "us-east-1"}

    # When the operator names the stack
    items = CliRunner().invoke(app, ["--stack", name, "list", "--status", "unmapped", "--json"], env=aws)
    missing = CliRunner().invoke(app, ["--stack", f"{name}-gone", "stats"], env=aws)

    # Then the CLI found the table through the outputs; an unknown stack exits 1 naming it
    assert items.exit_code == 0, items.output
    assert [item["contact_id"] for item in json.loads(items.stdout)] == [UNMAPPED]
    assert missing.exit_code == 1
    assert f"{name}-gone" in missing.stderr


def test_stack_and_local_are_exclusive() -> None:
    # When both are named
    result = CliRunner().invoke(app, ["--stack", "prod", "--local", "stats"])

    # Then it is a usage error, before any AWS call
    assert result.exit_code == 2
    assert "either" in result.stderr


def test_a_window_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    # When the operator gives a window the CLI cannot read
    result = CliRunner().invoke(app, ["--local-file", str(tmp_path / "none.json"), "stats", "--since", "last tuesday"])

    # Then it says what it accepts
    assert result.exit_code == 2
    assert "30m, 24h, 7d" in result.stderr


def test_replay_previews_then_replays_an_unmapped_change_once_its_contact_is_mapped(seeded: Seeded) -> None:
    stack = seeded.stack
    assert stack.standin is not None
    # Given the unmapped contact, mapped by the operator to its Sphere customer (deliver sends its email)
    assert seeded.cli("map", "generic", UNMAPPED, NEW_CUSTOMER).exit_code == 0
    wait_for(lambda: stack.standin is not None and stack.standin.patches(NEW_CUSTOMER))

    # When the operator previews the unmapped events of the last hour, then replays them
    preview = seeded.cli_json("replay", "--status", "unmapped", "--since", "1h", "--dry-run")
    replayed = seeded.cli_json("replay", "--status", "unmapped", "--since", "1h", "--replay-id", "cli-replay")

    # Then the preview shows the request (masked) Sphere already has; the replay queued the event, which deliver
    # sent once more and recorded delivered, saying it was replayed
    [contact] = preview["contacts"]
    assert (contact["contactId"], contact["customerId"]) == (UNMAPPED, NEW_CUSTOMER)
    assert contact["compared"] == {"email": "the same as Sphere last accepted"}
    assert EMAIL not in json.dumps(preview)
    assert (replayed["matched"], replayed["queued"], replayed["messages"]) == (1, 1, 1)
    item = wait_for(
        lambda: (
            (found := stack.store.get_event("generic", UNMAPPED, seeded.unmapped_event))
            and found["status"] == Status.DELIVERED
            and found
        )
    )
    assert "replayed by the operator (cli-replay)" in item["reason"]
    assert [patch.body for patch in stack.standin.patches(NEW_CUSTOMER)] == [{"email": EMAIL}] * 2


def test_replay_names_what_it_skipped_and_refuses_a_request_of_no_form(seeded: Seeded) -> None:
    # Given a delivered event, replayed by id without --force
    result = seeded.cli("replay", "--event", f"generic/{MAPPED}/{seeded.mapped_event}")

    # Then the table says it was skipped and why; naming no form, or two, is a usage error
    assert result.exit_code == 0, result.output
    assert "set force" in result.stdout
    assert seeded.cli("replay").exit_code == 2
    assert seeded.cli("replay", "--dead-letters", "--contact", "generic", MAPPED).exit_code == 2
    assert seeded.cli("replay", "--event", "no-slashes").exit_code == 2


def test_replay_a_contact_and_the_dead_letter_queue_dry_then_for_real(seeded: Seeded) -> None:
    stack = seeded.stack
    assert stack.standin is not None
    # When the operator previews a replay of the delivered contact, then replays it, then looks at the dead letters
    preview = seeded.cli_json("replay", "--contact", "generic", MAPPED, "--dry-run")
    replayed = seeded.cli_json("replay", "--contact", "generic", MAPPED, "--replay-id", "whole")
    dead = seeded.cli_json("replay", "--dead-letters", "--dry-run")

    # Then the preview shows the contact's request Sphere already has, the replay sends it once more and records
    # its own event, and an empty dead-letter queue matches nothing
    [contact] = preview["contacts"]
    assert (contact["customerId"], contact["compared"]) == (
        SEED_INDIVIDUAL_ID,
        {"email": "the same as Sphere last accepted"},
    )
    assert (replayed["queued"], replayed["messages"]) == (1, 1)
    wait_for(
        lambda: (item := stack.store.get_event("generic", MAPPED, "replay:whole")) and item["status"] == "delivered"
    )
    assert len(stack.standin.patches(SEED_INDIVIDUAL_ID)) == 2
    assert (dead["matched"], dead["queued"]) == (0, 0)
