"""How ``crm-sphere`` finds its stack: the local connection file, or a deployed stack's outputs (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from webhook_adapter.cli.target import LOCAL_FILE_NAME, TargetUnavailable, find_local_file, local, stack

CONNECTION = {
    "endpoint_url": "http://127.0.0.1:5000",
    "region": "eu-west-1",
    "table_name": "crm-sphere-local-events",
    "queue_url": "http://127.0.0.1:5000/123456789012/crm-sphere-local-changes.fifo",
    "dead_letter_queue_url": "http://127.0.0.1:5000/123456789012/crm-sphere-local-changes-dlq.fifo",
}


@pytest.fixture
def cloudformation() -> Iterator[None]:
    with mock_aws():
        yield


def test_the_connection_file_is_found_from_a_folder_below_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given make run's connection file at the root, and the operator in a folder two levels down
    (tmp_path / LOCAL_FILE_NAME).write_text(json.dumps(CONNECTION))
    below = tmp_path / "tests" / "e2e"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)

    # When the CLI looks for the local stack
    target = local(None)

    # Then it found the file up the tree and reads the stack from it, in its region
    assert find_local_file(below) == tmp_path / LOCAL_FILE_NAME
    assert (target.name, target.table_name, target.queue_url) == (
        "local",
        CONNECTION["table_name"],
        CONNECTION["queue_url"],
    )
    assert target.endpoint_url == CONNECTION["endpoint_url"]
    assert target.session.region_name == "eu-west-1"


def test_a_file_that_is_not_a_connection_file_is_refused_by_name(tmp_path: Path) -> None:
    # Given a file without the table name, and one that is not JSON
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"endpoint_url": "http://127.0.0.1:1"}))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json")

    # When the CLI reads them
    # Then each is refused naming the file
    for path in (partial, garbage):
        with pytest.raises(TargetUnavailable, match="not a local stack's connection file"):
            local(path)


@pytest.mark.usefixtures("cloudformation")
def test_a_stack_without_the_adapters_outputs_is_refused_naming_them() -> None:
    # Given a stack that is not this adapter's (no EventsTableName, no ChangesQueueUrl)
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"Other": {"Value": "x"}}}
    boto3.client("cloudformation").create_stack(StackName="someone-else", TemplateBody=json.dumps(template))

    # When the CLI is pointed at it
    # Then it says which outputs are missing
    with pytest.raises(TargetUnavailable, match="no output EventsTableName, ChangesQueueUrl, DeadLetterQueueUrl"):
        stack("someone-else")
