"""What template.yaml promises operators: alarms on metrics the code writes, wired to the topic, and a dashboard.

Offline: the template is read as YAML, never deployed. Which metrics the code writes (their names and
dimensions) is read from the shared package's ``count`` and ``observe_ms`` calls; the integration test
``tests/integration/test_observability.py`` proves the handlers write them.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.cfn_yaml import load_template
from webhook_adapter.model import TERMINAL_STATUSES, Status
from webhook_adapter.sphere import TIMED_OUT, UNREACHABLE, status_class

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "shared" / "webhook_adapter"
STACK = "crm-sphere-webhooks-dev"
REGION = "eu-west-1"
TOPIC = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
OPERATOR_ALARMS = (
    "DeadLetterAlarm",
    "OldestChangeAlarm",
    "RejectionRateAlarm",
    "SphereErrorRateAlarm",
    "ReceiveErrorsAlarm",
)
CALL_CLASSES = {status_class(code) for code in range(200, 600)} | {TIMED_OUT, UNREACHABLE}
"""Every status class a call to Sphere is counted under."""


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def powertools(template: dict[str, Any]) -> tuple[Any, str]:
    """The metrics namespace (one per stack) and the service name the functions write their metrics under."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    return variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]


def emitted_metrics() -> dict[str, set[str]]:
    """Each metric the shared package writes (``count``/``observe_ms`` calls), with its dimensions' names."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"count", "observe_ms"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names = {keyword.arg for keyword in node.keywords if keyword.arg is not None}
                found.setdefault(str(node.args[0].value), set()).update(names)
    return found


def metric_stats(alarm: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """An alarm's metrics by id: its own (a single-metric alarm is ``m``) or its metric math's."""
    if "MetricName" in alarm:
        yield (
            "m",
            {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"], "Dimensions": alarm["Dimensions"]},
        )
        return
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            yield query["Id"], query["MetricStat"]["Metric"]


def dimensions(metric: dict[str, Any]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in metric["Dimensions"]}


_OPERATORS: dict[type[ast.AST], Callable[[float, float], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.GtE: operator.ge,
    ast.Gt: operator.gt,
}


def evaluate(expression: str, values: dict[str, float | None]) -> float:
    """A metric-math expression of the kinds the alarms use (+ - * /, >= >, IF, FILL), ``None`` a missing point."""

    def walk(node: ast.AST) -> Any:
        match node:
            case ast.Expression(body=body):
                return walk(body)
            case ast.Constant(value=value):
                return value
            case ast.Name(id=name):
                return values[name]
            case ast.BinOp(left=left, op=op, right=right):
                return _OPERATORS[type(op)](walk(left), walk(right))
            case ast.Compare(left=left, ops=[op], comparators=[right]):
                return _OPERATORS[type(op)](walk(left), walk(right))
            case ast.Call(func=ast.Name(id="FILL"), args=[series, default]):
                value = walk(series)
                return walk(default) if value is None else value
            case ast.Call(func=ast.Name(id="IF"), args=[condition, when_true, when_false]):
                return walk(when_true) if walk(condition) else walk(when_false)
        raise AssertionError(f"cannot evaluate {ast.dump(node)}")

    return float(walk(ast.parse(expression.replace("\n", " "), mode="eval")))


def alarm_value(alarm: dict[str, Any], values: dict[str, float | None]) -> float:
    """What a metric-math alarm compares with its threshold, its metrics having ``values`` (missing: ``None``)."""
    known: dict[str, float | None] = dict(values)
    expressions = {query["Id"]: query["Expression"] for query in alarm["Metrics"] if "Expression" in query}
    for name, expression in reversed(expressions.items()):  # the returned one comes first, its parts after it
        known[name] = evaluate(expression, known)
    [returned] = [query["Id"] for query in alarm["Metrics"] if query["ReturnData"]]
    result = known[returned]
    assert result is not None
    return result


# ---------------------------------------------------------------------------------------------------- alarms


@pytest.mark.parametrize("logical_id", OPERATOR_ALARMS)
def test_every_operator_alarm_notifies_the_topic_when_one_is_given(template: dict[str, Any], logical_id: str) -> None:
    # Given one of the alarms the issue asks for
    alarm = props(template, logical_id)

    # Then it notifies AlarmTopicArn when it fires and when it clears, and stays quiet without data
    assert alarm["AlarmActions"] == TOPIC
    assert alarm["OKActions"] == TOPIC
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmDescription"]
    # And a metric-math alarm returns exactly one series
    if "Metrics" in alarm:
        assert [query["Id"] for query in alarm["Metrics"] if query["ReturnData"]] == ["rate"]


@pytest.mark.parametrize("logical_id", OPERATOR_ALARMS)
def test_every_alarm_reads_a_metric_the_code_writes_with_the_same_dimensions(
    template: dict[str, Any], logical_id: str
) -> None:
    # Given the metrics the shared package writes and the namespace and service the template gives them
    written = emitted_metrics()
    namespace, service = powertools(template)

    # When the alarm's metrics in our namespace are read
    ours = [metric for _, metric in metric_stats(props(template, logical_id)) if metric["Namespace"] == namespace]

    # Then each is written by the code, and read without the source (the totals every line also declares)
    for metric in ours:
        assert metric["MetricName"] in written, metric["MetricName"]
        named = dimensions(metric)
        assert set(named) == {"service"} | (written[metric["MetricName"]] - {"source"}), metric
        assert named["service"] == service
    # And the others are AWS's own metrics of this stack's queue or API
    for _, metric in metric_stats(props(template, logical_id)):
        if metric["Namespace"] != namespace:
            assert metric["Namespace"] in {"AWS/SQS", "AWS/ApiGateway"}


def test_the_oldest_queued_change_alarms_after_half_an_hour_long_before_the_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    # Given the alarm on the changes queue's oldest message
    alarm = props(template, "OldestChangeAlarm")
    deliver = template["Resources"]["DeliverFunction"]["Properties"]["Environment"]["Variables"]

    # Then it watches the changes queue (not the dead-letter queue), at its maximum
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "Maximum",
    )
    assert dimensions(alarm) == {"QueueName": {"Fn::GetAtt": ["ChangesQueue", "QueueName"]}}
    # And fires once a change waited longer than one maximal backoff, well before its receives run out
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert int(deliver["RETRY_MAX_SECONDS"]) <= alarm["Threshold"] <= 3600


def test_the_rejection_rate_alarm_fires_on_a_tenth_of_ended_events_and_ignores_a_trickle(
    template: dict[str, Any],
) -> None:
    # Given the rejection-rate alarm and the statuses its metrics read
    alarm = props(template, "RejectionRateAlarm")
    read = {name: dimensions(metric)["status"] for name, metric in metric_stats(alarm)}

    # Then it counts every status deliver ends an event in, except the ones that never reached a decision
    assert set(read.values()) == {str(status) for status in TERMINAL_STATUSES} - {"ignored", "refused"}
    assert set(read) == set(read.values())  # each metric's id is its status: the expressions read plainly

    def rate(**counts: float | None) -> float:
        return alarm_value(alarm, {status: counts.get(status) for status in read})

    # When 30 of 100 ended events are rejected, the rate is 30 %: over the 10 % threshold
    assert rate(delivered=60, rejected=30, unchanged=10) == pytest.approx(30.0)
    assert rate(delivered=60, rejected=30, unchanged=10) > alarm["Threshold"] == 10
    # And a status with no data point counts as none
    assert rate(delivered=90, rejected=10) == pytest.approx(10.0)
    # And 3 rejections out of 5 ended events are too few to alarm on
    assert rate(delivered=2, rejected=3) == 0
    # And it needs two of three five-minute periods over the threshold
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)
    assert {query["MetricStat"]["Period"] for query in alarm["Metrics"] if "MetricStat" in query} == {300}


def test_the_sphere_error_rate_alarm_counts_5xx_timeouts_and_unreachable_over_all_calls(
    template: dict[str, Any],
) -> None:
    # Given the Sphere error-rate alarm and the status classes its metrics read
    alarm = props(template, "SphereErrorRateAlarm")
    read = {name: dimensions(metric)["status_class"] for name, metric in metric_stats(alarm)}

    # Then its calls are every class a call is counted under that Sphere answers in practice (no 1xx, no 3xx)
    assert set(read.values()) == CALL_CLASSES - {"1xx", "3xx"}

    def rate(**counts: float | None) -> float:
        by_class = {read[name]: name for name in read}
        return alarm_value(alarm, dict.fromkeys(read) | {by_class[k]: v for k, v in counts.items()})

    # When 10 of 40 calls fail (5xx, timeouts, unreachable), the rate is 25 %: over the threshold
    assert rate(**{"2xx": 28, "4xx": 1, "429": 1, "5xx": 6, TIMED_OUT: 3, UNREACHABLE: 1}) == pytest.approx(25.0)
    assert alarm["Threshold"] == 10
    # And 429s and 4xx are not failures of Sphere (the pace and the rejections have their own signals)
    assert rate(**{"2xx": 50, "4xx": 25, "429": 25}) == 0
    # And a handful of calls is too few to alarm on
    assert rate(**{"5xx": 5}) == 0


def test_the_receive_errors_alarm_is_the_share_of_webhooks_answered_5xx_by_the_api(template: dict[str, Any]) -> None:
    # Given the receive-errors alarm
    alarm = props(template, "ReceiveErrorsAlarm")
    metrics = dict(metric_stats(alarm))

    # Then it reads the HTTP API's own request count and 5xx (a crash of the function counts too)
    assert {name: (metric["Namespace"], metric["MetricName"]) for name, metric in metrics.items()} == {
        "requests": ("AWS/ApiGateway", "Count"),
        "errors": ("AWS/ApiGateway", "5xx"),
    }
    assert all(dimensions(metric) == {"ApiId": {"Ref": "HttpApi"}} for metric in metrics.values())
    # And 2 of 20 requests answered 5xx is 10 %: over its 5 % threshold; none answered 5xx is 0
    assert alarm_value(alarm, {"requests": 20, "errors": 2}) == pytest.approx(10.0)
    assert alarm_value(alarm, {"requests": 20, "errors": 2}) > alarm["Threshold"] == 5
    assert alarm_value(alarm, {"requests": 20, "errors": None}) == 0


# ------------------------------------------------------------------------------------------------- dashboard


def substituted(template: dict[str, Any], text: str) -> str:
    """``text`` as ``!Sub`` gives it for the stack ``STACK``: each name must be a resource or a pseudo parameter."""

    def name(match: re.Match[str]) -> str:
        reference = match.group(1)
        if reference == "AWS::Region":
            return REGION
        if reference == "AWS::StackName":
            return STACK
        logical_id, _, attribute = reference.partition(".")
        assert logical_id in template["Resources"], f"${{{reference}}} names no resource"
        return f"{STACK}-{logical_id}-{attribute or 'id'}".lower()

    return re.sub(r"\$\{([^}!][^}]*)\}", name, text)


@pytest.fixture(scope="module")
def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    body = props(template, "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    parsed: dict[str, Any] = json.loads(substituted(template, body))
    return parsed


def graphed_metrics(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Every metric row of the dashboard: namespace, name and dimensions (SEARCH and math rows left out)."""
    for widget in dashboard["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], str):
                fields = [field for field in row if isinstance(field, str)]
                yield fields[0], fields[1], dict(zip(fields[2::2], fields[3::2], strict=True))


def test_the_dashboard_body_is_json_with_the_stacks_names_and_its_name_is_the_stacks(
    template: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    # Given the dashboard as the stack renders it
    name = props(template, "OperationsDashboard")["DashboardName"]

    # Then it is named after the stack, and its body is JSON with every name substituted
    assert name == {"Fn::Sub": "${AWS::StackName}-operations"}
    text = json.dumps(dashboard)
    assert "${" not in text
    assert f"{STACK}-changesqueue-queuename" in text
    assert f"{STACK}-changesdeadletterqueue-queuename" in text
    assert f"{STACK}-httpapi-id" in text
    # And every widget fits the 24-column grid and graphs in the stack's region
    for widget in dashboard["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == REGION


def test_the_dashboard_shows_every_operator_alarm(template: dict[str, Any], dashboard: dict[str, Any]) -> None:
    # Given the dashboard's alarm widgets
    shown = [
        arn for widget in dashboard["widgets"] if widget["type"] == "alarm" for arn in widget["properties"]["alarms"]
    ]

    # Then each alarm the issue asks for is on it, by the ARN the stack gives it
    assert shown == [f"{STACK}-{logical_id}-arn".lower() for logical_id in OPERATOR_ALARMS]


def test_the_dashboard_graphs_the_metrics_the_code_writes(template: dict[str, Any], dashboard: dict[str, Any]) -> None:
    # Given the metrics the code writes, and the dashboard's rows and SEARCH expressions
    written = emitted_metrics()
    namespace, service = powertools(template)
    searches = [
        row[0]["expression"]
        for widget in dashboard["widgets"]
        for row in widget["properties"].get("metrics", [])
        if isinstance(row[0], dict) and row[0]["expression"].startswith("SEARCH(")
    ]

    # Then each of our rows (the stack's namespace, rendered) is a written metric, read by the dimensions every line
    # declares without the source
    assert namespace == {"Fn::Sub": "CrmSphereWebhooks/${AWS::StackName}"}
    namespace = f"CrmSphereWebhooks/{STACK}"
    ours = [(name, dims) for space, name, dims in graphed_metrics(dashboard) if space == namespace]
    assert ours
    for name, dims in ours:
        assert set(dims) == {"service"} | (written[name] - {"source"}), name
        assert dims["service"] == service
        assert set(dims) - {"service"} <= {"status", "status_class"}
        assert dims.get("status", "delivered") in set(Status)
        assert dims.get("status_class", "2xx") in CALL_CLASSES
    # And each SEARCH names our namespace, a written metric and exactly its dimensions (with or without the source)
    for expression in searches:
        match = re.fullmatch(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"', '\w+', 300\)", expression)
        assert match, expression
        space, *searched = match.group(1).split(",")
        assert space == namespace
        assert set(searched) - {"source"} == {"service"} | (written[match.group(2)] - {"source"}), expression
    # And every metric the issue names is on it
    graphed = {name for name, _ in ours} | {re.findall(r'MetricName="(\w+)"', text)[0] for text in searches}
    expected = {"EventsAccepted", "EventsDuplicate", "RequestsRefused", "EventOutcome"}
    assert graphed >= expected | {"EndToEndLatency", "SphereCalls", "SphereLatency"}
