"""What an operator sees of a change, through the handlers: its metrics and one correlation id end to end.

The metrics are the embedded-metric-format lines the functions print (CloudWatch reads them from the
logs); each test reads them from stdout with the JSON log lines, and checks the alarms of
``template.yaml`` read what the handlers wrote. The correlation id is API Gateway's request id: it
rides the queue message to deliver's log lines and the event's item, and goes to Sphere as the
``X-Correlation-Id`` header; Sphere's own correlation id is kept with the outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devstack.cfn_yaml import load_template
from devstack.crm import hubspot_request
from devstack.kit import SOURCE, contact, history, log_to_stdout, now_ms, stored
from devstack.lambda_events import LambdaContext, webhook_event
from devstack.pipeline import PUBLIC_BASE_URL, Pipeline
from devstack.resources import LOCAL_SECRETS, STACK_NAME
from devstack.sphere_standin import SEED_INDIVIDUAL_ID

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "crm-sphere-webhooks"

type Identity = tuple[str, frozenset[tuple[str, str]]]
"""A CloudWatch metric: its name and its dimensions (name, value)."""


@pytest.fixture(autouse=True)
def observed(monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline) -> None:
    """Metrics published (as on AWS, not as on the local stack) and the functions' log lines on stdout."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    log_to_stdout(monkeypatch)


def receive(pipeline: Pipeline, events: list[dict[str, Any]], *, secret: str | None = None) -> tuple[int, str]:
    """HubSpot posts one batch through API Gateway: the answer's status and the request id API Gateway gave it."""
    headers, body = hubspot_request(
        events, secret=secret or LOCAL_SECRETS["HubSpotSecretArn"], url=f"{PUBLIC_BASE_URL}/webhooks/hubspot"
    )
    event = webhook_event(SOURCE, headers, body)
    answer = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    return int(answer["statusCode"]), str(event["requestContext"]["requestId"])


def printed(capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the functions printed since the last call: metric lines and log lines."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line], [line for line in lines if "_aws" not in line]


def published(metric_lines: list[dict[str, Any]]) -> dict[Identity, list[float]]:
    """Every metric the lines publish, under each dimension set they declare, with its values."""
    found: dict[Identity, list[float]] = {}
    for line in metric_lines:
        [declared] = line["_aws"]["CloudWatchMetrics"]
        assert declared["Namespace"] == f"CrmSphereWebhooks/{STACK_NAME}"  # the template's, for the local stack
        for dimension_set in declared["Dimensions"]:
            dimensions = frozenset((name, str(line[name])) for name in dimension_set)
            for metric in declared["Metrics"]:
                found.setdefault((metric["Name"], dimensions), []).extend(line[metric["Name"]])
    return found


def metric(name: str, **dimensions: str) -> Identity:
    return name, frozenset({"service": SERVICE, **dimensions}.items())


def alarm_metric(alarm_id: str, query_id: str) -> Identity:
    """The metric an alarm of template.yaml reads under ``query_id``."""
    alarm = load_template(ROOT / "template.yaml")["Resources"][alarm_id]["Properties"]
    [stat] = [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if query["Id"] == query_id]
    return stat["MetricName"], frozenset((item["Name"], str(item["Value"])) for item in stat["Dimensions"])


def iso_ms(text: str) -> float:
    return datetime.fromisoformat(text).timestamp() * 1000


def queued_bodies(pipeline: Pipeline) -> Iterator[dict[str, Any]]:
    """The queue's messages as deliver will read them (shown again at once: their receive is not counted here)."""
    answer = pipeline.sqs.receive_message(
        QueueUrl=pipeline.resources.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    for message in answer.get("Messages", []):
        yield json.loads(message["Body"])


def test_a_delivered_change_is_counted_once_per_invocation_with_its_latency_and_one_correlation_id(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a HubSpot contact with a Sphere customer id and an email, changed 5 seconds ago
    events = contact(401, at=now_ms() - 5000, sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")

    # When HubSpot posts it and the change is queued
    status, request_id = receive(pipeline, events)
    [message] = list(queued_bodies(pipeline))
    receive_lines, _ = printed(capsys)
    # And the deliver function drains the queue
    pipeline.drain()
    deliver_lines, logs = printed(capsys)

    # Then receive counted both events accepted, per source and in the adapter-wide total
    assert status == 202
    assert published(receive_lines) == {
        metric("EventsAccepted", source=SOURCE): [2.0],
        metric("EventsAccepted"): [2.0],
    }
    # And deliver wrote one line per set of dimensions: one Sphere call, two delivered events
    assert len(deliver_lines) == 2
    [request] = pipeline.standin.requests
    updated_at = iso_ms(pipeline.standin.customer(SEED_INDIVIDUAL_ID)["updatedAt"])
    written = published(deliver_lines)
    assert written[metric("SphereCalls", source=SOURCE, status_class="2xx")] == [1.0]
    assert written[metric("SphereCalls", status_class="2xx")] == [1.0]
    assert len(written[metric("SphereLatency", source=SOURCE, status_class="2xx")]) == 1
    assert written[metric("EventOutcome", source=SOURCE, status="delivered")] == [2.0]
    # And each delivered event's end-to-end latency runs from its change in the CRM to Sphere's updatedAt
    latencies = written[metric("EndToEndLatency", source=SOURCE, status="delivered")]
    expected = [updated_at - event["occurredAt"] for event in events]
    assert sorted(latencies) == pytest.approx(sorted(expected), abs=1)
    assert min(latencies) >= 5000
    # And the alarm on the rejection rate reads the delivered total this wrote
    assert written[alarm_metric("RejectionRateAlarm", "delivered")] == [2.0]

    # And API Gateway's request id went with the change: in the queue message, to Sphere, and on each event's item
    assert message["correlation_id"] == request_id
    assert request.headers["x-correlation-id"] == request_id
    for event in events:
        item = stored(pipeline, event)
        assert item["correlation_id"] == request_id
        # With Sphere's own correlation id for its answer
        assert item["sphere"]["correlation_id"] == request.correlation_id
    # And the success path logged no line per event
    assert [line for line in logs if line.get("message") == "event settled"] == []


def test_a_rejected_change_is_counted_and_logged_with_its_correlation_id(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Sphere refuses the next update with its own correlation id
    events = contact(402, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="grace@example.org")
    body = {"status": 422, "code": "validation/failed", "detail": "refused", "correlationId": "5ec0ffee42"}
    pipeline.standin.fail_next(1, 422, body=body)

    # When HubSpot posts the change and it is delivered
    status, request_id = receive(pipeline, events)
    printed(capsys)
    pipeline.drain()
    deliver_lines, logs = printed(capsys)

    # Then the call is counted as a 4xx and both events it carried as rejected, read by the rejection-rate alarm
    assert status == 202
    written = published(deliver_lines)
    assert written[metric("SphereCalls", source=SOURCE, status_class="4xx")] == [1.0]
    assert written[metric("EventOutcome", source=SOURCE, status="rejected")] == [2.0]
    assert written[alarm_metric("RejectionRateAlarm", "rejected")] == [2.0]
    assert not any(identity[0] == "EndToEndLatency" for identity in written)
    # And the rejection is logged with the request's correlation id, and recorded with both ids
    settled = [line for line in logs if line.get("message") == "event settled" and line["status"] == "rejected"]
    assert [line["correlation_id"] for line in settled] == [request_id] * 2
    item = stored(pipeline, events[1])
    assert (item["status"], item["correlation_id"], item["sphere"]["correlation_id"]) == (
        "rejected",
        request_id,
        "5ec0ffee42",
    )
    assert pipeline.standin.requests[0].headers["x-correlation-id"] == request_id


def test_a_refused_request_is_counted_by_source_and_code_and_recorded_under_its_request_id(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a HubSpot batch signed with the wrong secret
    events = contact(403, at=now_ms(), email="mallory@example.com")

    # When it is posted
    status, request_id = receive(pipeline, events, secret="not-the-client-secret")
    receive_lines, _ = printed(capsys)

    # Then it is refused, counted per source and code and in the total per code, and nothing else is counted
    assert status == 401
    [refusal] = pipeline.refused_requests(SOURCE, now_ms() - 60_000)
    code = refusal["code"]
    assert published(receive_lines) == {
        metric("RequestsRefused", source=SOURCE, code=code): [1.0],
        metric("RequestsRefused", code=code): [1.0],
    }
    # And its record is keyed by the request id every log line of the request carries
    assert refusal["pk"] == f"REQUEST#{request_id}"
    assert pipeline.queued_messages() == 0


def test_a_retried_change_is_counted_retrying_then_delivered_and_sphere_sees_one_correlation_id(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Sphere answers the next call 503
    events = contact(404, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="retry@example.com")
    pipeline.standin.fail_next(1, 503)

    # When HubSpot posts the change and the queue is drained (the retry comes without delay in tests)
    status, request_id = receive(pipeline, events)
    printed(capsys)
    pipeline.drain()
    deliver_lines, logs = printed(capsys)

    # Then the failed call is a 5xx, read by the Sphere error-rate alarm, and both events were retrying once
    assert status == 202
    written = published(deliver_lines)
    assert written[metric("SphereCalls", source=SOURCE, status_class="5xx")] == [1.0]
    assert written[alarm_metric("SphereErrorRateAlarm", "c5xx")] == [1.0]
    assert written[alarm_metric("SphereErrorRateAlarm", "c2xx")] == [1.0]
    assert written[metric("EventOutcome", source=SOURCE, status="retrying")] == [2.0]
    # And then delivered, each event once
    assert written[metric("EventOutcome", source=SOURCE, status="delivered")] == [2.0]
    assert history(stored(pipeline, events[1])) == ["queued", "retrying", "delivered"]
    # And the retry was logged with the request's correlation id, which Sphere got on both calls
    retries = [line for line in logs if line.get("message") == "delivery failed, will retry"]
    assert [line["correlation_id"] for line in retries] == [request_id]
    assert [request.headers["x-correlation-id"] for request in pipeline.standin.requests] == [request_id] * 2
    assert stored(pipeline, events[0])["correlation_id"] == request_id


def test_a_timeout_and_a_dropped_connection_count_as_sphere_failures_for_the_error_rate_alarm(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Sphere holds the first contact's call past the client's timeout, and drops the second's unanswered
    first = contact(405, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="slow@example.com")
    second = contact(406, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="dropped@example.com")

    # When each change is posted and delivered (each retried once)
    pipeline.standin.timeout_next(1, 30)
    assert receive(pipeline, first)[0] == 202
    pipeline.drain()
    pipeline.standin.drop_next(1)
    assert receive(pipeline, second)[0] == 202
    pipeline.drain()
    lines, _ = printed(capsys)

    # Then the two failed calls are counted under the classes the Sphere error-rate alarm reads, each with its time
    written = published(lines)
    assert written[alarm_metric("SphereErrorRateAlarm", "timeout")] == [1.0]
    assert written[alarm_metric("SphereErrorRateAlarm", "unreachable")] == [1.0]
    assert written[alarm_metric("SphereErrorRateAlarm", "c2xx")] == [1.0, 1.0]
    assert len(written[metric("SphereLatency", source=SOURCE, status_class="timeout")]) == 1
    assert len(written[metric("SphereLatency", source=SOURCE, status_class="unreachable")]) == 1
    # And both changes were delivered on their retry
    assert [stored(pipeline, event)["status"] for event in (*first, *second)] == ["delivered"] * 4


def test_a_request_id_no_header_can_carry_is_left_out_and_the_change_still_delivered(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a console test event whose request id holds spaces and a non-ASCII letter
    events = contact(407, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="console@example.com")
    headers, body = hubspot_request(
        events, secret=LOCAL_SECRETS["HubSpotSecretArn"], url=f"{PUBLIC_BASE_URL}/webhooks/hubspot"
    )
    event = webhook_event(SOURCE, headers, body)
    event["requestContext"]["requestId"] = "console test ü"

    # When it is received and delivered
    answer = pipeline.receive_handler(event, LambdaContext(function_name="receive"))
    pipeline.drain()
    printed(capsys)

    # Then the change is delivered without a correlation id: none queued, sent or stored
    assert answer["statusCode"] == 202
    [request] = pipeline.standin.requests
    assert "x-correlation-id" not in request.headers
    item = stored(pipeline, events[1])
    assert item["status"] == "delivered"
    assert "correlation_id" not in item
