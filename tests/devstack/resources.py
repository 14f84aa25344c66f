"""Create the adapter's AWS resources on moto from ``template.yaml``'s own definitions.

The local stack and the integration tests call ``create_resources``: the table (keys, indexes,
TTL), the FIFO queue and its dead-letter queue (attributes, redrive policy) and the secrets the
template takes as parameters. Reading the template, rather than a copy of it, keeps the local
stack from drifting from what is deployed. ``function_environment`` resolves a function's
environment variables the way CloudFormation would, against these local resources.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack.cfn_yaml import load_template as parse_template_file
from devstack.crm_shapes import Crm
from devstack.crm_standin import (
    DEFAULT_TOKENS,
    SALESFORCE_CLIENT_ID,
    SALESFORCE_CLIENT_SECRET,
    ZOHO_CLIENT_ID,
    ZOHO_CLIENT_SECRET,
    ZOHO_REFRESH_TOKEN,
)
from devstack.vendors import VENDORS, vendor

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "LOCAL_PARAMETERS",
    "LOCAL_SECRETS",
    "TEMPLATE",
    "LocalResources",
    "Resolver",
    "create_resources",
    "function_environment",
    "load_template",
    "secrets_from_environment",
]

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
STACK_NAME = "crm-sphere-local"
REGION = "us-east-1"
ACCOUNT = "123456789012"

_KITS = [vendor(source) for source in VENDORS]

LOCAL_SECRETS = {
    "SphereTokenSecretArn": "local-sphere-token",
    "HubSpotApiTokenSecretArn": DEFAULT_TOKENS[Crm.HUBSPOT],
    "AttioApiTokenSecretArn": DEFAULT_TOKENS[Crm.ATTIO],
    "KeapApiTokenSecretArn": DEFAULT_TOKENS[Crm.KEAP],
    "SalesforceCdcCredentialsSecretArn": json.dumps(
        {"client_id": SALESFORCE_CLIENT_ID, "client_secret": SALESFORCE_CLIENT_SECRET}
    ),
    "ZohoCredentialsSecretArn": json.dumps(
        {"client_id": ZOHO_CLIENT_ID, "client_secret": ZOHO_CLIENT_SECRET, "refresh_token": ZOHO_REFRESH_TOKEN}
    ),
    **{kit.secret_parameter: kit.local_secret for kit in _KITS},
}
"""Default values of the secrets the template takes as ARN parameters (override per run): every source is on, and
HubSpot contacts, Attio people, Keap contacts and Salesforce Contacts (the connected app's client credentials) can be
read from the CRM stand-in, and Zoho contacts too, with the self client's refresh grant, which also keeps the Zoho
notification channel open."""

SECRET_VARIABLES = {kit.secret_parameter: kit.secret_variable for kit in _KITS}
"""The environment variables that override the local signing secrets (``make run``, ``make events``)."""

LOCAL_PARAMETERS: dict[str, str] = {name: value for kit in _KITS for name, value in kit.parameters.items()}
"""Values of the template's other per-source parameters on the local stack (allow-lists, custom field keys)."""

_NO_VALUE = object()


def secrets_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The local signing secrets set in ``environ`` (the process environment by default), by template parameter."""
    environ = os.environ if environ is None else environ
    return {parameter: value for parameter, name in SECRET_VARIABLES.items() if (value := environ.get(name))}


@cache
def _parsed(path: Path) -> dict[str, Any]:
    return parse_template_file(path)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data (parsed once per process; each caller gets its own copy)."""
    return copy.deepcopy(_parsed(Path(path).resolve()))


_QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "MessageRetentionPeriod",
    "VisibilityTimeout",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "RedrivePolicy",
    "RedriveAllowPolicy",
)
_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")


@dataclass
class Resolver:
    """Evaluates CloudFormation intrinsics (Ref, GetAtt, Sub, If, conditions, FindInMap, Join, Select)."""

    template: Mapping[str, Any]
    parameters: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, spec in self.template.get("Parameters", {}).items():
            self.parameters.setdefault(name, spec.get("Default", ""))
        self.pseudo = {
            "AWS::StackName": STACK_NAME,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }

    def ref(self, name: str) -> Any:
        """The value of ``!Ref name``."""
        for scope in (self.parameters, self.refs, self.pseudo):
            if name in scope:
                return scope[name]
        raise KeyError(f"nothing local for Ref {name}")

    def condition(self, name: str) -> bool:
        """A named condition of the template."""
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic replaced by its value (``AWS::NoValue`` entries dropped)."""
        if isinstance(node, list):
            return [value for item in node if (value := self.resolve(item)) is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        return {key: value for key, item in node.items() if (value := self.resolve(item)) is not _NO_VALUE}

    def _function(self, key: str, arg: Any) -> Any:
        match key:
            case "Fn::GetAtt":
                return self.attributes[(arg[0], arg[1])]
            case "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub_value(m.group(1), variables)), text)
            case "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            case "Fn::Equals":
                left, right = self.resolve(arg)
                return str(left) == str(right)
            case "Fn::Not":
                return not self.resolve(arg[0])
            case "Fn::And":
                return all(self.resolve(arg))
            case "Fn::Or":
                return any(self.resolve(arg))
            case "Fn::FindInMap":
                mapping, top, second = self.resolve(arg)
                return self.template["Mappings"][mapping][top][second]
            case "Fn::Join":
                separator, items = arg
                return str(separator).join(str(item) for item in self.resolve(items))
            case "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
        raise KeyError(f"the local stack does not evaluate {key}")

    def _sub_value(self, name: str, variables: Mapping[str, Any]) -> Any:
        if name in variables:
            return variables[name]
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.attributes[(resource, attribute)]
        return self.ref(name)


@dataclass(frozen=True)
class LocalResources:
    """What ``create_resources`` made, and the resolver that knows them."""

    table_name: str
    queue_url: str
    dead_letter_queue_url: str
    secret_arns: dict[str, str]
    resolver: Resolver

    @property
    def max_receive_count(self) -> int:
        """The queue's redrive ``maxReceiveCount``, as the template sets it."""
        queue = self.resolver.template["Resources"]["ChangesQueue"]["Properties"]
        return int(self.resolver.resolve(queue["RedrivePolicy"])["maxReceiveCount"])


def _queue_attributes(properties: Mapping[str, Any]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for name in _QUEUE_ATTRIBUTES:
        if name not in properties:
            continue
        value = properties[name]
        if isinstance(value, dict):
            attributes[name] = json.dumps(value)
        elif isinstance(value, bool):
            attributes[name] = str(value).lower()
        else:
            attributes[name] = str(value)
    return attributes


def create_resources(
    *,
    dynamodb: DynamoDBClient,
    sqs: SQSClient,
    secretsmanager: SecretsManagerClient,
    secrets: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    template_path: Path = TEMPLATE,
) -> LocalResources:
    """Create the table, the queues and the secrets on the given (moto) clients, from the template.

    ``secrets`` maps the template's secret ARN parameters to their values (``LOCAL_SECRETS`` by
    default); ``parameters`` overrides other template parameters.
    """
    template = load_template(template_path)
    resolver = Resolver(template, {**LOCAL_PARAMETERS, **(parameters or {})})
    resources = template["Resources"]

    arns: dict[str, str] = {}
    for parameter, value in {**LOCAL_SECRETS, **(secrets or {})}.items():
        name = f"{STACK_NAME}/{parameter.removesuffix('Arn')}"
        arns[parameter] = secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
    resolver.parameters.update(arns)

    table = resolver.resolve(resources["EventsTable"]["Properties"])
    table_name = f"{STACK_NAME}-events"
    options = {key: table[key] for key in _TABLE_KEYS if key in table}
    if "SSESpecification" in table:  # CloudFormation says SSEEnabled where the API says Enabled
        sse = dict(table["SSESpecification"])
        options["SSESpecification"] = {"Enabled": sse.pop("SSEEnabled", True), **sse}
    dynamodb.create_table(TableName=table_name, **options)
    ttl = table.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    resolver.refs["EventsTable"] = table_name
    resolver.attributes[("EventsTable", "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"

    urls: dict[str, str] = {}
    for logical_id in ("ChangesDeadLetterQueue", "ChangesQueue"):
        properties = resolver.resolve(resources[logical_id]["Properties"])
        name = properties["QueueName"]
        url = sqs.create_queue(QueueName=name, Attributes=_queue_attributes(properties))["QueueUrl"]  # type: ignore[arg-type]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        urls[logical_id] = url
        resolver.refs[logical_id] = url
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "QueueName")] = name
        resolver.attributes[(logical_id, "QueueUrl")] = url

    return LocalResources(
        table_name=table_name,
        queue_url=urls["ChangesQueue"],
        dead_letter_queue_url=urls["ChangesDeadLetterQueue"],
        secret_arns=arns,
        resolver=resolver,
    )


def function_environment(resources: LocalResources, logical_id: str, **parameters: Any) -> dict[str, str]:
    """A function's environment variables (Globals first) as CloudFormation would resolve them locally.

    ``parameters`` set template parameters for this resolution (``PublicBaseUrl``, ``SphereApiUrl``).
    """
    resolver = resources.resolver
    resolver.parameters.update(parameters)
    template = resolver.template
    resolver.refs.setdefault("HttpApi", "local")
    merged: dict[str, Any] = {}
    global_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    function_env = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    for variables in (global_env, function_env):
        merged.update(resolver.resolve(variables))
    return {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in merged.items()}
