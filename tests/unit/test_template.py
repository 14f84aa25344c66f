"""What template.yaml promises: least privilege, per-contact order, retries that end in the DLQ, settings that match.

Offline: the template is read as YAML (``devstack.cfn_yaml``), never deployed. The cfn-lint and SAM-translator
checks run only where those packages are installed.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from devstack.cfn_yaml import load_template, parse_template
from webhook_adapter.readers.attio import AttioReadConfig
from webhook_adapter.readers.hubspot import HubSpotReadConfig
from webhook_adapter.readers.keap import KeapReadConfig
from webhook_adapter.readers.salesforce import SalesforceReadConfig
from webhook_adapter.readers.zoho import ZohoReadConfig
from webhook_adapter.settings import DeliverSettings, ReceiveSettings, ReplaySettings, env_prefix
from webhook_adapter.sources.salesforce_cdc import SalesforceCdcConfig
from webhook_adapter.zoho_channels import CHANNEL_HOURS, ChannelConfig

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"

SECTION_ORDER = [
    "AWSTemplateFormatVersion",
    "Transform",
    "Description",
    "Parameters",
    "Conditions",
    "Globals",
    "Resources",
    "Outputs",
]
AWS_REQUIRES_ANY_RESOURCE = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
"""Actions without resource-level permissions: the only ones a statement may grant on ``*``."""
SAMPLE_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crm/hubspot-AbC123"
PSEUDO_PARAMETERS = {
    "AWS::StackName": "crm-sphere-webhooks-dev",
    "AWS::Region": "eu-west-1",
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": "AWS::NoValue",
}
"""Pseudo parameters, for rendering values as a deployment would see them."""


# ----------------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def resources_of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_name}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def function_setting(template: dict[str, Any], function_id: str, name: str) -> Any:
    """A function property as SAM applies it: the function's own value, else the one in Globals."""
    return props(template, function_id).get(name, template["Globals"]["Function"].get(name))


def function_environment(template: dict[str, Any], function_id: str) -> dict[str, Any]:
    """Globals' variables merged with the function's own, as SAM merges them."""
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    variables.update(props(template, function_id).get("Environment", {}).get("Variables", {}))
    return variables


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement the template writes itself: roles, policies, and SAM ``Policies`` statements."""
    for name, res in template["Resources"].items():
        properties = res.get("Properties", {})
        documents: list[Any] = []
        if res["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif res["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents = [properties["PolicyDocument"]]
        elif res["Type"] == "AWS::Serverless::Function":
            documents = [policy for policy in as_list(properties.get("Policies", [])) if isinstance(policy, dict)]
        for document in documents:
            for statement in as_list(document.get("Statement", [])):
                yield name, statement


def role_grants(template: dict[str, Any], role_id: str) -> dict[str, list[Any]]:
    """Action -> the resources a role's statements grant it on."""
    grants: dict[str, list[Any]] = {}
    for policy in props(template, role_id)["Policies"]:
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                grants.setdefault(action, []).extend(as_list(statement["Resource"]))
    return grants


def referenced_ids(value: Any) -> set[str]:
    """Logical ids and parameters a value refers to (Ref, GetAtt, and ``${...}`` in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
                names = {match.split(".")[0] for match in re.findall(r"\$\{([^}!][^}]*)\}", text)}
                found |= names - set(variables)
                found |= referenced_ids(variables)
            else:
                found |= referenced_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= referenced_ids(inner)
    return found


def sample_parameter(template: dict[str, Any], name: str) -> str:
    """A parameter's default, or a value it accepts (secret ARNs have no default)."""
    if name in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[name]
    parameter = template["Parameters"][name]
    if "Default" in parameter:
        return str(parameter["Default"])
    assert name.endswith("SecretArn"), f"no sample value for parameter {name}"
    return SAMPLE_SECRET_ARN


def condition_holds(template: dict[str, Any], condition: Any) -> bool:
    """Evaluate a condition with default parameters (Equals, Not, And, Or, Condition)."""
    if isinstance(condition, str):
        return condition_holds(template, template["Conditions"][condition])
    if "Condition" in condition:
        return condition_holds(template, condition["Condition"])
    if "Fn::Equals" in condition:
        left, right = (render(template, side) for side in condition["Fn::Equals"])
        return left == right
    if "Fn::Not" in condition:
        return not condition_holds(template, condition["Fn::Not"][0])
    if "Fn::And" in condition:
        return all(condition_holds(template, inner) for inner in condition["Fn::And"])
    if "Fn::Or" in condition:
        return any(condition_holds(template, inner) for inner in condition["Fn::Or"])
    raise AssertionError(f"cannot evaluate condition {condition}")


_NO_VALUE = "AWS::NoValue"


def render(template: dict[str, Any], value: Any) -> str:
    """The string a deployment with default parameters would give ``value`` (resources get stand-in names)."""
    if not isinstance(value, dict):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if "Ref" in value:
        name = value["Ref"]
        if name in template["Resources"]:
            return f"{name.lower()}-id"
        return sample_parameter(template, name)
    if "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        return render(template, when_true if condition_holds(template, condition) else when_false)
    if "Fn::Sub" in value:
        inner = value["Fn::Sub"]
        text, variables = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return render(template, variables[name])
            return render(template, {"Ref": name})

        return re.sub(r"\$\{([^}!][^}]*)\}", substitute, text)
    if "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        rendered = (render(template, item) for item in items)
        return str(separator).join(text for text in rendered if text != _NO_VALUE)
    raise AssertionError(f"cannot render {value}")


def render_environment(template: dict[str, Any], function_id: str) -> dict[str, str]:
    """A function's environment as a deployment with default parameters would set it."""
    return {name: render(template, value) for name, value in function_environment(template, function_id).items()}


def aliases(model: type[BaseModel], *, required_only: bool) -> set[str]:
    return {
        field.alias or name for name, field in model.model_fields.items() if field.is_required() or not required_only
    }


# -------------------------------------------------------------------------------------------------- structure


def test_sections_follow_the_house_order(template: dict[str, Any]) -> None:
    # Given the template as written
    # When its top-level sections are listed
    sections = list(template)

    # Then they come in the house order, with the SAM transform
    assert sections == SECTION_ORDER
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_every_resource_has_a_one_line_comment_and_sits_under_a_banner() -> None:
    # Given the template's text
    lines = TEMPLATE_PATH.read_text(encoding="utf-8").splitlines()
    start = lines.index("Resources:")
    end = lines.index("Outputs:")

    # When each resource's declaration line is found
    declarations = [index for index in range(start, end) if re.fullmatch(r"  [A-Za-z0-9]+:", lines[index])]

    # Then each has a one-line comment of its own above it, and the first resource follows a banner
    assert declarations
    for index in declarations:
        assert lines[index - 1].startswith("  # "), f"no comment above {lines[index].strip()}"
        assert not lines[index - 2].strip(), f"more than one comment line above {lines[index].strip()}"
    banners = [index for index in range(start, end) if lines[index].startswith("  # ----")]
    assert banners
    assert banners[0] < declarations[0]


def test_the_template_has_no_circular_dependency_including_the_ones_sam_adds(template: dict[str, Any]) -> None:
    # Given each resource's references, Globals applied to every function, and the edge SAM adds when it writes a
    # route's integration into an API (the API then refers to the function)
    resources = template["Resources"]
    globals_refs = referenced_ids(template["Globals"]["Function"])
    graph: dict[str, set[str]] = {}
    for name, res in resources.items():
        depends = set(as_list(res.get("DependsOn", [])))
        refs = referenced_ids(res.get("Properties", {})) | depends
        if res["Type"] == "AWS::Serverless::Function":
            refs |= globals_refs
        graph.setdefault(name, set()).update(ref for ref in refs if ref in resources)
    for name, res in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in res["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            api_id = event["Properties"]["ApiId"]["Ref"]
            body = props(template, api_id).get("DefinitionBody", {})
            route = (
                body.get("paths", {}).get(event["Properties"]["Path"], {}).get(event["Properties"]["Method"].lower())
            )
            if not route or "x-amazon-apigateway-integration" not in route:
                graph[api_id].add(name)

    # When the resources are ordered for creation
    # Then an order exists (CloudFormation refuses a template with a dependency loop)
    order = list(graphlib.TopologicalSorter(graph).static_order())
    assert set(order) == set(resources)


def test_cfn_lint_finds_nothing(template: dict[str, Any]) -> None:
    api = pytest.importorskip("cfnlint.api")
    # Given the template's text
    text = TEMPLATE_PATH.read_text(encoding="utf-8")

    # When cfn-lint checks it (as `sam validate --lint` does)
    matches = api.lint(text, config=api.ManualArgs(regions=["us-east-1"]))

    # Then it reports neither an error nor a warning
    assert [str(match) for match in matches] == []


def test_the_loader_reads_short_intrinsic_tags_as_their_long_form() -> None:
    # Given a template fragment in short form
    text = "A: !Ref B\nC: !GetAtt D.Arn\nE: !Sub ['${F}', {F: !Ref G}]\nH: !If [I, !Ref AWS::NoValue, x]\n"

    # When it is parsed
    parsed = parse_template(text)

    # Then each tag became the mapping CloudFormation reads
    assert parsed == {
        "A": {"Ref": "B"},
        "C": {"Fn::GetAtt": ["D", "Arn"]},
        "E": {"Fn::Sub": ["${F}", {"F": {"Ref": "G"}}]},
        "H": {"Fn::If": ["I", {"Ref": "AWS::NoValue"}, "x"]},
    }


# ---------------------------------------------------------------------------------------------------- security


def test_no_statement_grants_a_wildcard_action_or_resource(template: dict[str, Any]) -> None:
    # Given every IAM statement the template writes
    statements = list(policy_statements(template))
    assert statements

    for owner, statement in statements:
        actions = as_list(statement["Action"])
        resources = as_list(statement["Resource"])
        # Then no action is a wildcard
        assert not [action for action in actions if "*" in action], f"{owner}: wildcard action {actions}"
        # And "*" stands only where AWS offers no resource-level permission (X-Ray)
        wildcard = [resource for resource in resources if isinstance(resource, str) and "*" in resource]
        if wildcard:
            assert set(actions) <= AWS_REQUIRES_ANY_RESOURCE, f"{owner}: {actions} on {wildcard}"
        assert "NotAction" not in statement
        assert "NotResource" not in statement


def test_functions_run_with_their_own_roles_so_sam_adds_no_broad_managed_policy(template: dict[str, Any]) -> None:
    # Given the functions (a SAM-made role would get AWSLambdaBasicExecutionRole and, for the SQS event,
    # AWSLambdaSQSQueueExecutionRole: both grant on "*")
    functions = resources_of_type(template, "AWS::Serverless::Function")

    for name, res in functions.items():
        # Then each names an explicit role of the template and no SAM policies
        role = res["Properties"]["Role"]
        assert role == {"Fn::GetAtt": [f"{name}Role", "Arn"]}
        assert template["Resources"][f"{name}Role"]["Type"] == "AWS::IAM::Role"
        assert "Policies" not in res["Properties"]
        assert "ManagedPolicyArns" not in props(template, f"{name}Role")


def test_receive_may_store_enqueue_and_read_the_source_secrets_only(template: dict[str, Any]) -> None:
    # Given the receive function's role
    grants = role_grants(template, "ReceiveFunctionRole")

    # Then it reaches the table, the queue, the secrets of the sources given one and its own logs, nothing else
    table = [{"Fn::GetAtt": ["EventsTable", "Arn"]}]
    secrets = [
        {"Fn::If": [f"Has{name.removesuffix('Arn')}", {"Ref": name}, {"Ref": "AWS::NoValue"}]}
        for name in source_secret_parameters(template)
    ]
    assert grants == {
        "logs:CreateLogStream": [{"Fn::GetAtt": ["ReceiveLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["ReceiveLogGroup", "Arn"]}],
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
        "dynamodb:BatchGetItem": table,
        "dynamodb:BatchWriteItem": table,
        "dynamodb:PutItem": table,
        "sqs:SendMessage": [
            {"Fn::GetAtt": ["ChangesQueue", "Arn"]},
            {
                "Fn::If": [
                    "HasSalesforceEventBus",
                    {"Fn::GetAtt": ["RelayFailuresQueue", "Arn"]},
                    {"Ref": "AWS::NoValue"},
                ]
            },
        ],
        "secretsmanager:GetSecretValue": secrets,
    }


def test_deliver_may_poll_back_off_record_and_read_the_api_tokens_only(template: dict[str, Any]) -> None:
    # Given the deliver function's role
    grants = role_grants(template, "DeliverFunctionRole")

    # Then it reaches the table, the queue (as its event source, and to delay a retry), the Sphere token and its
    # own logs, nothing else
    table = [{"Fn::GetAtt": ["EventsTable", "Arn"]}]
    queue = [{"Fn::GetAtt": ["ChangesQueue", "Arn"]}]
    assert grants == {
        "logs:CreateLogStream": [{"Fn::GetAtt": ["DeliverLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["DeliverLogGroup", "Arn"]}],
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
        "dynamodb:BatchGetItem": table,
        "dynamodb:PutItem": table,
        "dynamodb:BatchWriteItem": table,
        "dynamodb:UpdateItem": table,
        "sqs:ReceiveMessage": queue,
        "sqs:DeleteMessage": queue,
        "sqs:GetQueueAttributes": queue,
        "sqs:ChangeMessageVisibility": queue,
        "secretsmanager:GetSecretValue": [
            {"Ref": "SphereTokenSecretArn"},
            {"Fn::If": ["HasHubSpotApiToken", {"Ref": "HubSpotApiTokenSecretArn"}, {"Ref": "AWS::NoValue"}]},
            {"Fn::If": ["HasAttioApiToken", {"Ref": "AttioApiTokenSecretArn"}, {"Ref": "AWS::NoValue"}]},
            {"Fn::If": ["HasKeapApiToken", {"Ref": "KeapApiTokenSecretArn"}, {"Ref": "AWS::NoValue"}]},
            {
                "Fn::If": [
                    "HasSalesforceCdcCredentials",
                    {"Ref": "SalesforceCdcCredentialsSecretArn"},
                    {"Ref": "AWS::NoValue"},
                ]
            },
            {"Fn::If": ["HasZohoCredentials", {"Ref": "ZohoCredentialsSecretArn"}, {"Ref": "AWS::NoValue"}]},
        ],
    }


def test_replay_may_read_the_table_and_queue_changes_but_write_no_record(template: dict[str, Any]) -> None:
    # Given the replay function's role
    grants = role_grants(template, "ReplayFunctionRole")

    # Then it reads events, the status index and contact states, queues changes and moves dead letters back; every
    # record is deliver's to write, and it reads no secret
    table = [{"Fn::GetAtt": ["EventsTable", "Arn"]}, {"Fn::Sub": "${EventsTable.Arn}/index/StatusByTime"}]
    dead_letters = [{"Fn::GetAtt": ["ChangesDeadLetterQueue", "Arn"]}]
    assert grants == {
        "logs:CreateLogStream": [{"Fn::GetAtt": ["ReplayLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["ReplayLogGroup", "Arn"]}],
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
        "dynamodb:GetItem": table,
        "dynamodb:BatchGetItem": table,
        "dynamodb:Query": table,
        "sqs:SendMessage": [{"Fn::GetAtt": ["ChangesQueue", "Arn"]}],
        "sqs:ReceiveMessage": dead_letters,
        "sqs:DeleteMessage": dead_letters,
        "sqs:ChangeMessageVisibility": dead_letters,
    }


def test_the_replay_function_sets_every_setting_it_needs_and_nothing_else(template: dict[str, Any]) -> None:
    # Given the replay function's environment (the Globals' and its own) and its settings model
    environment = function_environment(template, "ReplayFunction")
    known = aliases(ReplaySettings, required_only=False)

    # Then every variable is a setting (or Powertools'), and every required setting is set
    assert {name for name in environment if name not in known and not name.startswith("POWERTOOLS_")} == set()
    assert aliases(ReplaySettings, required_only=True) <= set(environment)


def test_the_zoho_channel_function_reads_only_its_two_secrets_and_runs_often_enough_to_outlive_failures(
    template: dict[str, Any],
) -> None:
    # Given the Zoho channel function, its role, schedule and alarm
    grants = role_grants(template, "ZohoChannelFunctionRole")
    (schedule,) = props(template, "ZohoChannelFunction")["Events"].values()
    alarm = template["Resources"]["ZohoChannelAlarm"]["Properties"]

    # Then it may write its logs and traces and read the Zoho source's token and the self client's credentials only
    assert grants == {
        "logs:CreateLogStream": [{"Fn::GetAtt": ["ZohoChannelLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["ZohoChannelLogGroup", "Arn"]}],
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
        "secretsmanager:GetSecretValue": [{"Ref": "ZohoSecretArn"}, {"Ref": "ZohoCredentialsSecretArn"}],
    }
    # And it exists only when the channel can be served (the source, the credentials and a channel id given)
    for logical_id in ("ZohoChannelFunction", "ZohoChannelFunctionRole", "ZohoChannelLogGroup", "ZohoChannelAlarm"):
        assert template["Resources"][logical_id]["Condition"] == "HasZohoChannel"
    # And it runs every 30 minutes, so a channel set CHANNEL_HOURS ahead outlives dozens of failed runs, and its
    # alarm fires while more than half of that time is left
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == "rate(30 minutes)"
    alarm_hours = alarm["Period"] * alarm["EvaluationPeriods"] / 3600
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == ("Errors", "Sum", 0)
    assert alarm_hours < CHANNEL_HOURS / 2
    # And its route is the Zoho source's, as Zoho must post the notifications there
    notify_url = function_environment(template, "ZohoChannelFunction")["ZOHO_NOTIFY_URL"]
    assert notify_url["Fn::Sub"][0] == "${Base}/webhooks/zoho"


def source_secret_parameters(template: dict[str, Any]) -> list[str]:
    """The parameters of the sources' verification secrets (what receive's ``<SOURCE>_SECRET_ID`` names)."""
    environment = function_environment(template, "ReceiveFunction")
    named = {value["Ref"] for name, value in environment.items() if name.endswith("_SECRET_ID")}
    return [name for name in template["Parameters"] if name in named]


def test_secret_parameters_take_only_complete_secret_arns(template: dict[str, Any]) -> None:
    # Given the secret parameters: Sphere's token (required) and one per source (empty turns the source off)
    for name in ("SphereTokenSecretArn", *source_secret_parameters(template)):
        pattern = template["Parameters"][name]["AllowedPattern"]

        # Then a complete ARN passes, and a partial one (which IAM would not match) or another service's fails
        assert re.fullmatch(pattern, SAMPLE_SECRET_ARN)
        assert not re.fullmatch(pattern, SAMPLE_SECRET_ARN.removesuffix("-AbC123"))
        assert not re.fullmatch(pattern, "arn:aws:ssm:eu-west-1:123456789012:parameter/crm-AbC123")
        if name == "SphereTokenSecretArn":
            assert "Default" not in template["Parameters"][name]
        else:
            assert template["Parameters"][name]["Default"] == ""
            assert re.fullmatch(pattern, "")


# ----------------------------------------------------------------------------------------------------- storage


def test_the_table_is_recoverable_encrypted_expiring_and_retained(template: dict[str, Any]) -> None:
    # Given the events table
    table = template["Resources"]["EventsTable"]
    properties = table["Properties"]

    # Then it keeps point-in-time backups, is encrypted, expires items on `ttl` and survives a stack deletion
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_the_table_keys_and_indexes_are_the_ones_the_store_uses(template: dict[str, Any]) -> None:
    # Given the events table
    properties = props(template, "EventsTable")

    # When its keys and indexes are read
    attributes = {item["AttributeName"]: item["AttributeType"] for item in properties["AttributeDefinitions"]}
    keys = [(item["AttributeName"], item["KeyType"]) for item in properties["KeySchema"]]
    indexes = {
        index["IndexName"]: (
            [(item["AttributeName"], item["KeyType"]) for item in index["KeySchema"]],
            index["Projection"],
        )
        for index in properties["GlobalSecondaryIndexes"]
    }

    # Then they are pk/sk (a contact and its items) and one sparse status index, every key a string
    assert attributes == dict.fromkeys(["pk", "sk", "status_bucket", "status_at"], "S")
    assert keys == [("pk", "HASH"), ("sk", "RANGE")]
    assert indexes == {
        "StatusByTime": ([("status_bucket", "HASH"), ("status_at", "RANGE")], {"ProjectionType": "ALL"}),
    }


# ------------------------------------------------------------------------------------------------------ queues


def test_the_changes_queue_is_an_encrypted_high_throughput_fifo_queue(template: dict[str, Any]) -> None:
    # Given the changes queue
    queue = props(template, "ChangesQueue")

    # Then it keeps per-contact order, dedups per message group, and encrypts at rest
    assert queue["FifoQueue"] is True
    assert queue["QueueName"]["Fn::Sub"].endswith(".fifo")
    assert queue["ContentBasedDeduplication"] is False
    assert queue["DeduplicationScope"] == "messageGroup"
    assert queue["FifoThroughputLimit"] == "perMessageGroupId"
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 1_209_600


def test_failed_changes_end_in_the_dead_letter_queue_after_the_count_deliver_plans_for(
    template: dict[str, Any],
) -> None:
    # Given the queue's redrive policy and the deliver function's environment
    redrive = props(template, "ChangesQueue")["RedrivePolicy"]
    environment = function_environment(template, "DeliverFunction")

    # Then failed changes move to the DLQ, after the same number of receives deliver's back-off schedule counts
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["ChangesDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == environment["MAX_RECEIVE_COUNT"]
    count = int(render(template, redrive["maxReceiveCount"]))
    assert count == DeliverSettings.model_validate(render_environment(template, "DeliverFunction")).max_receive_count


def test_the_dead_letter_queue_is_fifo_encrypted_and_accepts_redrive_from_the_changes_queue(
    template: dict[str, Any],
) -> None:
    # Given the dead-letter queue
    dlq = props(template, "ChangesDeadLetterQueue")

    # Then it is FIFO (as a FIFO queue's DLQ must be), encrypted, kept 14 days, and the console can redrive it
    # back to the changes queue (named by ARN: !GetAtt would close a loop with the redrive policy)
    assert dlq["FifoQueue"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 1_209_600
    allow = dlq["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    queue_name = props(template, "ChangesQueue")["QueueName"]["Fn::Sub"]
    assert [source["Fn::Sub"] for source in allow["sourceQueueArns"]] == [
        f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{queue_name}"
    ]


def test_the_visibility_timeout_is_at_least_six_times_the_deliver_timeout(template: dict[str, Any]) -> None:
    # Given the queue and the function that consumes it
    visibility = props(template, "ChangesQueue")["VisibilityTimeout"]
    timeout = function_setting(template, "DeliverFunction", "Timeout")

    # Then a message is not handed out again while a slow invocation still works on it (AWS's 6x advice)
    assert visibility >= 6 * timeout


def test_deliver_reports_partial_batch_failures_from_the_changes_queue(template: dict[str, Any]) -> None:
    # Given the deliver function's events
    events = props(template, "DeliverFunction")["Events"]

    # Then its one event reads the changes queue and reports failed messages one by one, with bounded concurrency
    assert len(events) == 1
    (event,) = events.values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["ChangesQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= event["Properties"]["BatchSize"] <= 10
    assert int(render(template, event["Properties"]["ScalingConfig"]["MaximumConcurrency"])) >= 2


def test_deliver_has_a_thread_for_every_message_of_a_batch(template: dict[str, Any]) -> None:
    # Given the deliver function's batch size and its settings as deployed
    (event,) = props(template, "DeliverFunction")["Events"].values()
    settings = DeliverSettings.model_validate(render_environment(template, "DeliverFunction"))

    # Then a full batch of ten contacts is delivered at once
    assert settings.deliver_threads == event["Properties"]["BatchSize"]


def test_each_deliver_container_takes_its_share_of_the_sphere_rate_ceiling(template: dict[str, Any]) -> None:
    # Given the deliver function's event source mapping and its environment
    (event,) = props(template, "DeliverFunction")["Events"].values()
    environment = function_environment(template, "DeliverFunction")

    # Then the function knows the ceiling and the concurrency the mapping is given, from the same parameters
    concurrency = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    assert concurrency == environment["DELIVER_MAX_CONCURRENCY"] == {"Ref": "DeliverMaxConcurrency"}
    assert environment["SPHERE_MAX_CALLS_PER_SECOND"] == {"Ref": "SphereMaxCallsPerSecond"}
    # And with the defaults, each of the 10 containers makes up to 100 calls per second: 10 contacts per 100 ms
    settings = DeliverSettings.model_validate(render_environment(template, "DeliverFunction"))
    assert (settings.deliver_max_concurrency, settings.sphere_calls_per_second) == (10, 100)


# --------------------------------------------------------------------------------------------------- functions


@pytest.mark.parametrize("function_id", ["ReceiveFunction", "DeliverFunction"])
def test_functions_run_python_3_13_on_arm64_with_the_shared_layer_and_tracing(
    template: dict[str, Any], function_id: str
) -> None:
    # Given a function with Globals applied
    # Then it runs Python 3.13 on arm64, loads the shared layer, traced as TracingMode says
    assert function_setting(template, function_id, "Runtime") == "python3.13"
    assert function_setting(template, function_id, "Architectures") == ["arm64"]
    assert {"Ref": "SharedLayer"} in function_setting(template, function_id, "Layers")
    assert function_setting(template, function_id, "Tracing") == {"Ref": "TracingMode"}
    assert template["Parameters"]["TracingMode"]["AllowedValues"] == ["Active", "PassThrough"]
    assert template["Parameters"]["TracingMode"]["Default"] == "PassThrough"
    assert function_setting(template, function_id, "Handler") == "app.lambda_handler"


def test_the_layer_is_built_by_sam_from_the_shared_package(template: dict[str, Any]) -> None:
    # Given the shared layer
    layer = template["Resources"]["SharedLayer"]

    # Then SAM builds it for Python 3.13 on arm64 with the folder's Makefile, from a folder holding the package
    # directly; the Makefile writes the python/ level and ships bytecode valid whatever the files' times
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "webhook_adapter" / "__init__.py").is_file()
    assert not (content / "python").exists()
    makefile = (content / "Makefile").read_text()
    assert "\nbuild-SharedLayer:" in makefile
    assert "LAYER := $(ARTIFACTS_DIR)/python" in makefile
    assert "manylinux2014_aarch64" in makefile
    assert "--only-binary=:all: --implementation cp --python-version 3.13" in makefile
    assert "-m compileall" in makefile
    assert "--invalidation-mode unchecked-hash" in makefile


def test_every_function_logs_to_its_own_log_group_with_retention(template: dict[str, Any]) -> None:
    # Given every function
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert set(functions) == {"ReceiveFunction", "DeliverFunction", "ReplayFunction", "ZohoChannelFunction"}

    for res in functions.values():
        # When its log group is looked up
        group_id = res["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = template["Resources"][group_id]

        # Then it is a log group of the template, named as Lambda would name it, with a retention
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
        function_name = res["Properties"]["FunctionName"]["Fn::Sub"]
        assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{function_name}"}


def test_log_retention_parameter_offers_only_values_cloudwatch_accepts(template: dict[str, Any]) -> None:
    # Given the retention parameter
    parameter = template["Parameters"]["LogRetentionInDays"]

    # Then every choice is one CloudWatch Logs accepts, and the default is one of them
    valid = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
    assert set(parameter["AllowedValues"]) <= valid
    assert parameter["Default"] in parameter["AllowedValues"]


# -------------------------------------------------------------------------------------------------------- API


def test_the_api_has_exactly_one_route_post_webhooks_source(template: dict[str, Any]) -> None:
    # Given every API event of every function, and the API's definition
    routes = [
        (name, event["Properties"]["Method"], event["Properties"]["Path"])
        for name, res in resources_of_type(template, "AWS::Serverless::Function").items()
        for event in res["Properties"].get("Events", {}).values()
        if event["Type"] in {"HttpApi", "Api"}
    ]
    paths = props(template, "HttpApi")["DefinitionBody"]["paths"]

    # Then the only route is POST /webhooks/{source}, to the receive function, with no catch-all
    assert routes == [("ReceiveFunction", "POST", "/webhooks/{source}")]
    assert {path: list(methods) for path, methods in paths.items()} == {"/webhooks/{source}": ["post"]}
    assert props(template, "HttpApi")["StageName"] == "$default"


def test_the_route_integration_invokes_the_receive_function_by_its_name(template: dict[str, Any]) -> None:
    # Given the route's integration (written with the function's ARN, not !GetAtt, to keep the API free of a
    # dependency on the function that is told the API's URL)
    integration = props(template, "HttpApi")["DefinitionBody"]["paths"]["/webhooks/{source}"]["post"][
        "x-amazon-apigateway-integration"
    ]
    text, variables = integration["uri"]["Fn::Sub"]
    function_name = props(template, "ReceiveFunction")["FunctionName"]["Fn::Sub"]

    # Then it is a payload 2.0 Lambda proxy to exactly that function
    assert integration["type"] == "aws_proxy"
    assert integration["payloadFormatVersion"] == "2.0"
    assert text.endswith("/functions/${Arn}/invocations")
    assert variables["Arn"]["Fn::Sub"].endswith(f":function:{function_name}")


def test_the_api_stage_is_throttled_and_access_logged(template: dict[str, Any]) -> None:
    # Given the HTTP API
    api = props(template, "HttpApi")

    # Then its stage has a rate and a burst limit, and writes access logs to a log group with retention
    throttling = api["DefaultRouteSettings"]
    assert throttling["ThrottlingRateLimit"] > 0
    assert throttling["ThrottlingBurstLimit"] >= throttling["ThrottlingRateLimit"]
    group_id = api["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert template["Resources"][group_id]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_public_base_url_defaults_to_the_api_endpoint_and_accepts_only_https_without_trailing_slash(
    template: dict[str, Any],
) -> None:
    # Given the parameter and the receive function's environment with default parameters
    pattern = template["Parameters"]["PublicBaseUrl"]["AllowedPattern"]
    environment = render_environment(template, "ReceiveFunction")

    # Then the default is the API's own endpoint, and only https URLs without a trailing slash are accepted
    assert environment["PUBLIC_BASE_URL"] == "https://httpapi-id.execute-api.eu-west-1.amazonaws.com"
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, "https://hooks.example.com")
    assert re.fullmatch(pattern, "https://hooks.example.com/crm")
    assert not re.fullmatch(pattern, "https://hooks.example.com/")
    assert not re.fullmatch(pattern, "http://hooks.example.com")


# ------------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("function_id", "model"), [("ReceiveFunction", ReceiveSettings), ("DeliverFunction", DeliverSettings)]
)
def test_each_function_sets_every_variable_its_settings_require(
    template: dict[str, Any], function_id: str, model: type[BaseModel]
) -> None:
    # Given the function's environment
    environment = function_environment(template, function_id)

    # Then every required setting is there, and with default parameters the whole environment validates
    assert aliases(model, required_only=True) <= set(environment)
    model.model_validate(render_environment(template, function_id))


def test_the_required_variables_are_where_they_are_needed(template: dict[str, Any]) -> None:
    # Given both functions' environments
    receive = function_environment(template, "ReceiveFunction")
    deliver = function_environment(template, "DeliverFunction")

    # Then each has the variables its path reads
    assert {"TABLE_NAME", "QUEUE_URL", "PUBLIC_BASE_URL", "HUBSPOT_SECRET_ID", "GENERIC_SECRET_ID"} <= set(receive)
    assert {"TABLE_NAME", "QUEUE_URL", "SPHERE_API_URL", "SPHERE_TOKEN_SECRET_ID"} <= set(deliver)
    assert receive["QUEUE_URL"] == deliver["QUEUE_URL"] == {"Ref": "ChangesQueue"}
    assert receive["TABLE_NAME"] == deliver["TABLE_NAME"] == {"Ref": "EventsTable"}


def test_a_source_is_enabled_exactly_when_its_secret_is_given(template: dict[str, Any]) -> None:
    # Given the sources the receive function may answer for, each behind its secret's condition
    environment = function_environment(template, "ReceiveFunction")
    separator, choices = environment["ENABLED_SOURCES"]["Fn::Join"]
    assert separator == ","

    for choice in choices:
        condition, source, otherwise = choice["Fn::If"]
        # Then the condition is "its secret parameter is not empty", and the source reads that parameter
        parameter = environment[f"{env_prefix(source)}_SECRET_ID"]["Ref"]
        assert condition == f"Has{parameter.removesuffix('Arn')}"
        assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
        assert otherwise == {"Ref": "AWS::NoValue"}
    assert len(choices) == len(source_secret_parameters(template))


@pytest.mark.parametrize(
    ("function_id", "model"), [("ReceiveFunction", ReceiveSettings), ("DeliverFunction", DeliverSettings)]
)
def test_no_variable_is_set_that_nothing_reads(
    template: dict[str, Any], function_id: str, model: type[BaseModel]
) -> None:
    # Given the function's environment, its settings model and the sources it serves
    environment = function_environment(template, function_id)
    sources = [
        choice["Fn::If"][1] for choice in environment.get("ENABLED_SOURCES", {"Fn::Join": [",", []]})["Fn::Join"][1]
    ]
    prefixes = tuple(f"{env_prefix(name)}_" for name in sources)
    # Deliver reads each reader source's read settings: those names exactly.
    configs: dict[str, type[BaseModel]] = {
        "HUBSPOT": HubSpotReadConfig,
        "ATTIO": AttioReadConfig,
        "KEAP": KeapReadConfig,
        "SALESFORCE_CDC": SalesforceReadConfig,
        "ZOHO": ZohoReadConfig,
    }
    # Receive reads the relay sources' settings (they have no route, so are not among ENABLED_SOURCES).
    relays: dict[str, type[BaseModel]] = {"SALESFORCE_CDC": SalesforceCdcConfig}
    readers = {
        f"{prefix}_{field.upper()}"
        for prefix, config in (relays if sources else configs).items()
        for field in config.model_fields
    }

    # Then every variable is a setting, a source's setting or Powertools' (a misspelt name would be silently ignored)
    unknown = {
        name
        for name in environment
        if name not in aliases(model, required_only=False)
        and name not in readers
        and not name.startswith("POWERTOOLS_")
        and not (prefixes and name.startswith(prefixes))
    }
    assert unknown == set()


def test_the_zoho_channel_function_sets_every_setting_it_needs_and_nothing_else(template: dict[str, Any]) -> None:
    # Given the channel function's own variables (beyond the Globals every function gets)
    own = props(template, "ZohoChannelFunction")["Environment"]["Variables"]
    fields = {f"ZOHO_{name.upper()}": info for name, info in ChannelConfig.model_fields.items()}

    # Then each is a channel setting, and every required one is set
    assert set(own) <= set(fields)
    assert {name for name, info in fields.items() if info.is_required()} <= set(own)


# ----------------------------------------------------------------------------------------------- monitoring


def test_a_message_in_the_dead_letter_queue_raises_the_alarm(template: dict[str, Any]) -> None:
    # Given the dead-letter alarm
    alarm = props(template, "DeadLetterAlarm")

    # Then one visible message in the DLQ, within a minute, breaches it; no data is not a breach
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ChangesDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 60, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_alarm_notifies_only_when_a_topic_is_given(template: dict[str, Any]) -> None:
    # Given the alarm's actions
    actions = props(template, "DeadLetterAlarm")["AlarmActions"]

    # Then they depend on the topic parameter being set, and are absent otherwise
    assert actions == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert template["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}


def test_outputs_give_the_webhook_urls_and_the_resources_operators_need(template: dict[str, Any]) -> None:
    # Given the outputs
    outputs = template["Outputs"]

    # Then each source's webhook URL (shown when its secret is given), the API endpoint, the table, the queues and the
    # replay function (the CLI finds a deployed stack's resources by these)
    sources = {f"{name.removesuffix('SecretArn')}WebhookUrl": name for name in source_secret_parameters(template)}
    operators = {
        "ApiEndpoint",
        "EventsTableName",
        "ChangesQueueUrl",
        "DeadLetterQueueUrl",
        "RelayFailuresQueueUrl",
        "ReplayFunctionName",
    }
    assert set(outputs) == {*sources, *operators}
    assert outputs["RelayFailuresQueueUrl"]["Condition"] == "HasSalesforceEventBus"
    for output, parameter in sources.items():
        assert outputs[output]["Condition"] == f"Has{parameter.removesuffix('Arn')}"
    # And with default parameters the webhook URLs are the API's endpoint plus the route
    assert render(template, outputs["HubSpotWebhookUrl"]["Value"]) == (
        "https://httpapi-id.execute-api.eu-west-1.amazonaws.com/webhooks/hubspot"
    )
    assert render(template, outputs["GenericWebhookUrl"]["Value"]).endswith("/webhooks/generic")


# ------------------------------------------------------------------------------- Salesforce Change Data Capture


def test_the_salesforce_partner_bus_invokes_receive_only_with_contact_change_events(template: dict[str, Any]) -> None:
    # Given the rule on Salesforce's partner event bus and the permission it invokes receive with
    rule = template["Resources"]["SalesforceCdcRule"]
    permission = template["Resources"]["SalesforceCdcInvokePermission"]

    # Then both exist only when the bus is named, the rule matches Salesforce's Contact change events on that bus
    assert rule["Condition"] == permission["Condition"] == "HasSalesforceEventBus"
    condition = template["Conditions"]["HasSalesforceEventBus"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SalesforceEventBusName"}, ""]}]}
    assert rule["Properties"]["EventBusName"] == {"Ref": "SalesforceEventBusName"}
    assert rule["Properties"]["EventPattern"] == {
        "source": [{"prefix": "aws.partner/salesforce.com"}],
        "detail-type": ["ContactChangeEvent"],
    }
    assert rule["Properties"]["Targets"] == [{"Id": "receive", "Arn": {"Fn::GetAtt": ["ReceiveFunction", "Arn"]}}]
    # And only EventBridge, for this rule, may invoke receive that way
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Ref": "ReceiveFunction"},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": ["SalesforceCdcRule", "Arn"]},
    }
    pattern = template["Parameters"]["SalesforceEventBusName"]["AllowedPattern"]
    assert re.fullmatch(pattern, "aws.partner/salesforce.com/00D5e000000AbCdEAF/0YLRM0000000001")
    assert re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "default")


def test_a_relay_event_that_could_not_be_stored_is_retried_then_kept_and_alarmed(template: dict[str, Any]) -> None:
    # Given receive's asynchronous invocation settings, the failures queue and its alarm
    config = props(template, "ReceiveEventInvokeConfig")
    alarm = props(template, "RelayFailuresAlarm")

    # Then Lambda retries twice, then sends the invocation record to the queue, whose first message raises the alarm
    assert (config["MaximumRetryAttempts"], config["Qualifier"]) == (2, "$LATEST")
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["RelayFailuresQueue", "Arn"]}}}
    assert props(template, "RelayFailuresQueue")["SqsManagedSseEnabled"] is True
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["RelayFailuresQueue", "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    for name in ("ReceiveEventInvokeConfig", "RelayFailuresQueue", "RelayFailuresAlarm"):
        assert template["Resources"][name]["Condition"] == "HasSalesforceEventBus"


def test_contacts_are_read_from_salesforce_with_the_credentials_secret_and_instance_url(
    template: dict[str, Any],
) -> None:
    # Given both functions' environments
    receive = function_environment(template, "ReceiveFunction")
    deliver = function_environment(template, "DeliverFunction")

    # Then receive maps the customer-id field the Outbound Messages source maps, and deliver reads with the secret
    assert receive["SALESFORCE_CDC_CUSTOMER_ID_FIELD"] == {"Ref": "SalesforceCustomerIdField"}
    assert deliver["SALESFORCE_CDC_CUSTOMER_ID_FIELD"] == {"Ref": "SalesforceCustomerIdField"}
    assert deliver["SALESFORCE_CDC_CREDENTIALS_SECRET_ID"] == {"Ref": "SalesforceCdcCredentialsSecretArn"}
    assert deliver["SALESFORCE_CDC_INSTANCE_URL"] == {"Ref": "SalesforceInstanceUrl"}
    # And reads only with both the credentials and the instance URL (payload otherwise: a gap ends incomplete)
    assert deliver["SALESFORCE_CDC_READ_MODE"] == {
        "Fn::If": ["HasSalesforceCdcReads", "fetch-when-incomplete", "payload"]
    }
    assert template["Conditions"]["HasSalesforceCdcReads"] == {
        "Fn::And": [
            {"Condition": "HasSalesforceCdcCredentials"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "SalesforceInstanceUrl"}, ""]}]},
        ]
    }
    assert template["Conditions"]["HasSalesforceCdcCredentials"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SalesforceCdcCredentialsSecretArn"}, ""]}]
    }
