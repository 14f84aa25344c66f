"""Fault injection through both handlers: any one AWS call failing, a lost SQS delete, and every way Sphere fails.

The AWS calls are not listed here. Each scenario first runs clean while ``AwsFaults`` records every
call the receive and deliver functions make (function, service, operation, occurrence); then, for
each recorded call, it runs again on a fresh stack with that call failing once — a throttle, a
server error or an unreachable endpoint, in turn, and for writes also the answer lost after the
write took effect — so the cases follow the code as it changes. Consecutive repeats of one
operation (a write per event) are represented by their first and last. A case per batch loses the
event source mapping's delete after success, so the message comes back.

The CRM posts as a CRM does (it retries a 5xx with the same events), the event source mapping
drains the queue on a virtual clock (``devstack.faults.EventSourceMapping``), and each case checks
the whole promise (``broken_promises``):

- answers: 202; or, for the attempt an AWS fault hit, 503 ``storage_unavailable``/
  ``verification_unavailable`` (nothing promised; the CRM retries) — never a 500;
- records: every CRM event acknowledged with a 202 ends with exactly one final status, the one the
  clean run gives it — nothing ``queued`` or ``retrying``, nothing extra — so the events accepted
  equal the sum of the final statuses;
- Sphere: the bodies it applied (PATCHes it answered 200: the stand-in applies a body exactly when
  it answers 200), per customer and in order, equal the clean run's — each change applied once;
- queues: nothing left on the queue or in its dead-letter queue, and every message the deliver
  step failed waited for the adapter's backoff, not the queue's 180-second visibility timeout.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from devstack.crm import hubspot_event
from devstack.faults import AwsCall, AwsFaults, EventSourceMapping, FaultKind, RecordedCall, is_read
from devstack.pipeline import Answer, Pipeline, pipeline_environment
from devstack.resources import LOCAL_SECRETS, create_resources
from devstack.sphere_standin import SEED_INDIVIDUAL_ID, SphereStandIn
from webhook_adapter import runtime
from webhook_adapter.store import EventStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

CUSTOMER_B = "customer_b0b0b0"
"""A second Sphere customer, added to the stand-in by the scenarios that need one."""
CRM_ATTEMPTS = 3
"""How many times the CRM sends a request here before giving up (HubSpot retries for a day; one fault needs two)."""
RETRY_CODES = {"storage_unavailable", "verification_unavailable"}
"""The 503s that tell the CRM nothing was promised: retry."""
REFUSING_KINDS = (FaultKind.THROTTLED, FaultKind.SERVER_ERROR, FaultKind.UNREACHABLE)
"""Faults that leave AWS untouched, taken in turn over the discovered calls."""
ON_THEIR_WAY = {"queued", "retrying"}

type Body = dict[str, Any]

_DESERIALIZER = TypeDeserializer()


# ------------------------------------------------------------------------------------------------ the stack


@cache
def _clients() -> tuple[DynamoDBClient, SQSClient, SecretsManagerClient]:
    """The test's own clients, made once (moto mocks clients made before its mock starts)."""
    return boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("secretsmanager")


@pytest.fixture(autouse=True)
def aws() -> Iterator[None]:
    """One moto per test, in which each case makes and deletes its own resources (moto's KMS key is made once)."""
    with mock_aws():
        yield


@contextmanager
def fresh_pipeline() -> Iterator[Pipeline]:
    """What the ``pipeline`` fixture builds, once per case: fresh resources, a fresh stand-in, cold caches."""
    dynamodb, sqs, secretsmanager = _clients()
    with (
        SphereStandIn(token=LOCAL_SECRETS["SphereTokenSecretArn"], port=0) as standin,
        pytest.MonkeyPatch.context() as env,
    ):
        resources = create_resources(dynamodb=dynamodb, sqs=sqs, secretsmanager=secretsmanager)
        for name, value in pipeline_environment(resources, standin.base_url).items():
            env.setenv(name, value)
        runtime.reset()
        try:
            yield Pipeline(resources, standin, sqs, EventStore(dynamodb, resources.table_name, 90))
        finally:
            runtime.reset()  # closes the adapter's connection pool before the stand-in stops
            dynamodb.delete_table(TableName=resources.table_name)
            for url in (resources.queue_url, resources.dead_letter_queue_url):
                sqs.delete_queue(QueueUrl=url)
            for secret in resources.secret_arns.values():
                secretsmanager.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)


# ------------------------------------------------------------------------------------------------ the CRM


@dataclass(frozen=True)
class Webhook:
    """One CRM request: ``send(pipeline, attempt)`` signs and posts it as the CRM does on that attempt (from 1)."""

    send: Callable[[Pipeline, int], Answer]
    event_ids: frozenset[str]


def hubspot_webhook(events: Sequence[Body]) -> Webhook:
    """A HubSpot batch; HubSpot sends the same events again with ``attemptNumber`` one higher (a new signature)."""

    def send(pipeline: Pipeline, attempt: int) -> Answer:
        return pipeline.post_hubspot([{**event, "attemptNumber": attempt - 1} for event in events])

    return Webhook(send, frozenset(str(event["eventId"]) for event in events))


def generic_webhook(payload: Body, msg_id: str) -> Webhook:
    """A Standard Webhooks request; a retry keeps its ``webhook-id`` and is signed again."""

    def send(pipeline: Pipeline, attempt: int) -> Answer:
        return pipeline.post_generic(payload, msg_id=msg_id)

    return Webhook(send, frozenset({msg_id}))


@dataclass(frozen=True)
class Sent:
    """One attempt of a request: the answer, and whether an injected AWS fault hit it."""

    answer: Answer
    faulted: bool


@dataclass
class Run:
    """What one run of a scenario did."""

    pipeline: Pipeline
    faults: AwsFaults
    mapping: EventSourceMapping
    sent: list[tuple[Webhook, list[Sent]]] = field(default_factory=list)
    """Each webhook, with every attempt of it in order."""


def run_as_crm(
    pipeline: Pipeline, faults: AwsFaults, webhooks: Sequence[Webhook], *, lose_delete_of_batches: Sequence[int] = ()
) -> Run:
    """Post every webhook (retrying a 5xx as the CRM does), then let the event source mapping drain the queue."""
    pipeline.receive_handler = faults.wrap("receive", pipeline.receive_handler)
    deliver = faults.wrap("deliver", pipeline.deliver_handler)
    run = Run(pipeline, faults, EventSourceMapping(pipeline.sqs, pipeline.resources.queue_url, deliver, faults))
    for webhook in webhooks:
        attempts: list[Sent] = []
        while not attempts or (attempts[-1].answer.status >= 500 and len(attempts) < CRM_ATTEMPTS):
            mark = faults.mark()
            answer = webhook.send(pipeline, len(attempts) + 1)
            attempts.append(Sent(answer, any(recorded.fault for recorded in faults.since(mark))))
        run.sent.append((webhook, attempts))
    run.mapping.drain(lose_delete_of_batches=lose_delete_of_batches)
    return run


# ------------------------------------------------------------------------------------------------ observations


def event_items(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    """Every event item in the table, by CRM event id (a scan with the test's own client)."""
    items: dict[str, dict[str, Any]] = {}
    for page in pipeline.store.client.get_paginator("scan").paginate(TableName=pipeline.resources.table_name):
        for raw in page.get("Items", []):
            if raw["sk"].get("S", "").startswith("E#"):
                item = {name: _DESERIALIZER.deserialize(value) for name, value in raw.items()}
                items[str(item["event_id"])] = item
    return items


def applied_patches(standin: SphereStandIn) -> dict[str, list[Body]]:
    """What Sphere applied, per customer, in order: the bodies of the PATCHes it answered 200."""
    applied: dict[str, list[Body]] = {}
    for request in standin.patches():
        applied.setdefault(str(request.customer_id), []).append(request.body)
    return applied


def messages_left(pipeline: Pipeline) -> dict[str, int]:
    """Messages on the queue and on its dead-letter queue, visible, in flight or delayed."""
    names: Any = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    queues = {"queue": pipeline.resources.queue_url, "dead-letter queue": pipeline.resources.dead_letter_queue_url}
    return {
        name: sum(
            int(value)
            for value in pipeline.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"].values()
        )
        for name, url in queues.items()
    }


# ------------------------------------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Scenario:
    """What a CRM sends, and what must come of it whatever single AWS call fails."""

    name: str
    webhooks: Callable[[], list[Webhook]]
    """Built for each run (HubSpot signs the current time)."""
    statuses: Mapping[str, str]
    """The final status of every CRM event."""
    patches: Mapping[str, list[Body]]
    """The bodies Sphere applies, per customer, in order."""
    prepare: Callable[[SphereStandIn], None] = lambda standin: None
    faulted: frozenset[str] = frozenset({"receive", "deliver"})
    """The functions whose calls are faulted (the others' are covered by another scenario)."""


def _generic() -> list[Webhook]:
    payload = {"id": "crm-contact-7", "sphereCustomerId": SEED_INDIVIDUAL_ID, "email": "grace@example.org"}
    return [generic_webhook({**payload, "phone": "+1 415 555 0123"}, "msg_generic_1")]


def _hubspot_two_batches() -> list[Webhook]:
    now = int(time.time() * 1000)
    first = [
        hubspot_event(301, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 2_000, event_id=9101),
        hubspot_event(301, "email", "ada@example.com", occurred_at=now - 1_500, event_id=9102),
        hubspot_event(302, "sphere_customer_id", CUSTOMER_B, occurred_at=now - 2_000, event_id=9201),
        hubspot_event(302, "phone", "+1 415 555 0123", occurred_at=now - 1_500, event_id=9202),
        hubspot_event(302, "lifecyclestage", "lead", occurred_at=now - 1_400, event_id=9203),
    ]
    # HubSpot's next batch comes before the deliver function runs: contact 301 has two messages in one SQS batch
    second = [hubspot_event(301, "mobilephone", "+1 312 555 0147", occurred_at=now - 500, event_id=9103)]
    return [hubspot_webhook(first), hubspot_webhook(second)]


def _hubspot_one_contact() -> list[Webhook]:
    now = int(time.time() * 1000)
    return [
        hubspot_webhook(
            [
                hubspot_event(303, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 1_000, event_id=9301),
                hubspot_event(303, "email", "ada@example.com", occurred_at=now - 500, event_id=9302),
            ]
        )
    ]


def _add_customer_b(standin: SphereStandIn) -> None:
    standin.add_customer(CUSTOMER_B)


def _sphere_503_first(standin: SphereStandIn) -> None:
    standin.fail_next(1, 503)


SCENARIOS = [
    Scenario(
        name="generic",
        webhooks=_generic,
        statuses={"msg_generic_1": "delivered"},
        patches={SEED_INDIVIDUAL_ID: [{"email": "grace@example.org", "phone": "+14155550123"}]},
    ),
    Scenario(
        name="hubspot-two-batches",
        webhooks=_hubspot_two_batches,
        statuses={
            "9101": "delivered",
            "9102": "delivered",
            "9103": "delivered",
            "9201": "delivered",
            "9202": "delivered",
            "9203": "ignored",
        },
        patches={  # contact 301's two messages in one batch are coalesced: one call with both changes
            SEED_INDIVIDUAL_ID: [{"email": "ada@example.com", "phone": "+13125550147"}],
            CUSTOMER_B: [{"phone": "+14155550123"}],
        },
        prepare=_add_customer_b,
    ),
    Scenario(
        name="sphere-503-then-retried",
        webhooks=_hubspot_one_contact,
        statuses={"9301": "delivered", "9302": "delivered"},
        patches={SEED_INDIVIDUAL_ID: [{"email": "ada@example.com"}]},
        prepare=_sphere_503_first,
        faulted=frozenset({"deliver"}),  # its receive calls are the other scenarios' ones
    ),
]


# ------------------------------------------------------------------------------------------------ the promise


def _honest(sent: Sent) -> bool:
    """202; or, for an attempt an AWS fault hit, a 503 that asks the CRM to retry."""
    code = sent.answer.body.get("error", {}).get("code")
    return sent.answer.status == 202 or (sent.faulted and sent.answer.status == 503 and code in RETRY_CODES)


def broken_promises(run: Run, scenario: Scenario) -> list[str]:
    """Every way this run broke the promise (see the module docstring); empty when it kept it."""
    broken: list[str] = []
    # The CRM: 202; or a 503 that says "retry" for the attempt an AWS fault hit (nothing was promised then)
    acknowledged: set[str] = set()
    for webhook, attempts in run.sent:
        if not all(_honest(sent) for sent in attempts):
            answers = [(sent.answer.status, sent.answer.body.get("error", {}).get("code")) for sent in attempts]
            broken.append(f"the CRM got {answers} for {sorted(webhook.event_ids)}")
        final = attempts[-1].answer
        if final.status == 202:
            ids = {*final.body["accepted"], *final.body["duplicates"]}
            if ids != webhook.event_ids:
                broken.append(f"the CRM sent {sorted(webhook.event_ids)}, the 202 acknowledged {sorted(ids)}")
            acknowledged |= ids

    # Every acknowledged event: exactly one final status, the one it gets when nothing fails
    statuses = {event_id: str(item["status"]) for event_id, item in event_items(run.pipeline).items()}
    if statuses != scenario.statuses:
        broken.append(f"final statuses {statuses}, expected {dict(scenario.statuses)}")
    counts = Counter(status for status in statuses.values() if status not in ON_THEIR_WAY)
    if sum(counts.values()) != len(acknowledged):
        broken.append(f"{len(acknowledged)} events acknowledged, final statuses {dict(counts)}")

    # Sphere applied each change once, in order
    applied = applied_patches(run.pipeline.standin)
    if applied != scenario.patches:
        broken.append(f"Sphere applied {applied}, expected {dict(scenario.patches)}")

    # Nothing left behind, nothing dead-lettered, and every failed message waited for the adapter's backoff
    left = messages_left(run.pipeline)
    if any(left.values()):
        broken.append(f"messages left: {left}")
    waited = [(attempt.batch, attempt.group_id) for attempt in run.mapping.waited_for_queue_timeout]
    if waited:
        broken.append(f"failed without a visibility of its own (waits the queue's timeout): (batch, group) {waited}")
    return broken


# ------------------------------------------------------------------------------------------------ one AWS call fails


@dataclass(frozen=True)
class Case:
    """One fault: an AWS call failing once, or the delete of a batch lost."""

    call: AwsCall | None = None
    kind: FaultKind | None = None
    lost_delete_of_batch: int | None = None

    def __str__(self) -> str:
        if self.call is None:
            return f"lost delete of batch {self.lost_delete_of_batch}"
        return f"{self.call} {self.kind}"


def _operation_in_invocation(recorded: RecordedCall) -> tuple[int, str, str]:
    return recorded.invocation, recorded.call.service, recorded.call.operation


def representative(calls: Sequence[RecordedCall]) -> list[AwsCall]:
    """The calls, with each run of consecutive repeats of one operation in one invocation cut to its first and last."""
    kept: list[AwsCall] = []
    for _, run in itertools.groupby(calls, key=_operation_in_invocation):
        repeats = [recorded.call for recorded in run]
        kept += repeats if len(repeats) <= 2 else [repeats[0], repeats[-1]]
    return kept


def cases_for(scenario: Scenario, clean: Run) -> list[Case]:
    """Each representative call failing once (refusals in turn; writes also with the answer lost), each delete lost."""
    kinds = itertools.cycle(REFUSING_KINDS)
    cases: list[Case] = []
    for call in representative(clean.faults.calls):
        if call.function in scenario.faulted:
            cases.append(Case(call, next(kinds)))
            if not is_read(call.operation):
                cases.append(Case(call, FaultKind.ANSWER_LOST))
    return cases + [Case(lost_delete_of_batch=batch) for batch in clean.mapping.deleted_in]


def run_case(scenario: Scenario, case: Case | None = None) -> tuple[Run, list[str]]:
    """Run the scenario on a fresh stack with ``case``'s fault; the run and the promises it broke."""
    with fresh_pipeline() as pipeline, AwsFaults() as faults:
        scenario.prepare(pipeline.standin)
        if case is not None and case.call is not None and case.kind is not None:
            faults.inject(case.call, case.kind)
        lost = [case.lost_delete_of_batch] if case is not None and case.lost_delete_of_batch is not None else []
        run = run_as_crm(pipeline, faults, scenario.webhooks(), lose_delete_of_batches=lost)
        if case is not None and case.call is not None:
            fired = faults.fired
            assert fired is not None, f"the fault did not fire: {case.call} was never made"
            assert fired.call == case.call
        if lost:
            assert run.mapping.lost_deletes, "no delete was lost"
        return run, broken_promises(run, scenario)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
def test_any_one_aws_call_failing_loses_nothing_and_applies_nothing_twice(
    scenario: Scenario, subtests: pytest.Subtests
) -> None:
    # Given the AWS calls both functions make when nothing fails (discovered, not listed), and that run's outcome
    clean, broken = run_case(scenario)
    assert not broken, "\n".join(broken)
    assert {recorded.call.function for recorded in clean.faults.calls} == {"receive", "deliver"}
    mapping_calls = {"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch"}  # the Lambda service's, not the adapter's
    assert not [recorded.call for recorded in clean.faults.calls if recorded.call.operation in mapping_calls]
    print(f"\n{scenario.name}: {len(clean.faults.calls)} AWS calls in {clean.mapping.batches} batch(es)")
    for recorded in clean.faults.calls:
        print(f"  {recorded.call}")

    # When each of them fails once, and each batch's delete is lost, on a fresh stack each time
    for case in cases_for(scenario, clean):
        with subtests.test(msg=str(case)):
            _, broken = run_case(scenario, case)

            # Then the CRM's answers, every event's final record, Sphere's PATCHes and the queues keep the promise
            assert not broken, "\n".join(broken)


# ------------------------------------------------------------------------------------------------ an outage to the DLQ


def test_an_outage_past_every_allowed_receive_dead_letters_every_event_of_the_contact() -> None:
    with fresh_pipeline() as pipeline, AwsFaults() as faults:
        # Given a contact with two changes queued before the deliver function runs (two messages of one group)
        now = int(time.time() * 1000)
        first = [
            hubspot_event(501, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 1_000, event_id=9601),
            hubspot_event(501, "email", "ada@example.com", occurred_at=now - 900, event_id=9602),
        ]
        second = [hubspot_event(501, "mobilephone", "+1 312 555 0147", occurred_at=now - 500, event_id=9603)]
        # And Sphere down for longer than the queue's MaxReceiveCount receives ride out
        max_receive_count = pipeline.resources.max_receive_count
        pipeline.standin.fail_next(10 * max_receive_count, 503)

        # When HubSpot posts both and the event source mapping delivers until the queue is empty
        run = run_as_crm(pipeline, faults, [hubspot_webhook(first), hubspot_webhook(second)])

        # Then Sphere was tried once per allowed receive of the first change, and applied nothing
        assert [request.status for request in pipeline.standin.requests] == [503] * max_receive_count
        # And both messages are in the dead-letter queue, every one of their events recorded dead-lettered
        assert messages_left(pipeline) == {"queue": 0, "dead-letter queue": 2}
        statuses = {event_id: item["status"] for event_id, item in event_items(pipeline).items()}
        assert statuses == {"9601": "dead_lettered", "9602": "dead_lettered", "9603": "dead_lettered"}
        # And the second change waited with its contact for the adapter's backoff each time, not the queue's timeout
        assert run.mapping.waited_for_queue_timeout == []


# ------------------------------------------------------------------------------------------------ Sphere fails


type Arrange = Callable[[Pipeline, AwsFaults, pytest.MonkeyPatch], list[Body]]
"""Sets a failure up; returns the list it fills with the bodies Sphere applies without answering 200."""


@dataclass(frozen=True)
class SphereCase:
    """A way Sphere (or the way to it) fails, and what must come of one change through it."""

    arrange: Arrange
    answers: list[int | None]
    """What Sphere answered the change's PATCHes, in order (``None``: the connection dropped unanswered)."""
    history: list[str]
    """Each event's statuses, in order."""
    backoff: list[int]
    """The visibility timeout the adapter gave the message after each failed attempt (seconds)."""


def _latency(pipeline: Pipeline, faults: AwsFaults, monkeypatch: pytest.MonkeyPatch) -> list[Body]:
    pipeline.standin.set_latency(0.2)  # under SPHERE_TIMEOUT_SECONDS (1 s)
    return []


def _failing(status: int, **options: Any) -> Arrange:
    def arrange(pipeline: Pipeline, faults: AwsFaults, monkeypatch: pytest.MonkeyPatch) -> list[Body]:
        pipeline.standin.fail_next(1, status, **options)
        return []

    return arrange


def _timeout(pipeline: Pipeline, faults: AwsFaults, monkeypatch: pytest.MonkeyPatch) -> list[Body]:
    pipeline.standin.timeout_next(1, 30)  # held past the client's 1 s; dropped unanswered when the stand-in stops
    return []


def _dropped(pipeline: Pipeline, faults: AwsFaults, monkeypatch: pytest.MonkeyPatch) -> list[Body]:
    pipeline.standin.drop_next(1)
    return []


def _applied_then_504(pipeline: Pipeline, faults: AwsFaults, monkeypatch: pytest.MonkeyPatch) -> list[Body]:
    """Sphere applies the first PATCH, then its gateway answers 504: the adapter cannot know it was applied."""
    original = pipeline.standin._handle_api
    applied: list[Body] = []

    def handle(method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> Any:
        reply = original(method, target, headers, raw_body)  # the customer is updated here
        if applied or reply.status != 200:
            return reply
        applied.append(json.loads(raw_body))
        gateway = {"status": 504, "code": "server/gateway-timeout", "detail": "upstream timed out"}
        return dataclasses.replace(reply, status=504, body=json.dumps(gateway).encode())

    monkeypatch.setattr(pipeline.standin, "_handle_api", handle)
    return applied


def _rotated_token(pipeline: Pipeline, faults: AwsFaults, monkeypatch: pytest.MonkeyPatch) -> list[Body]:
    """The deliver function cached the API key delivering an earlier change; then the key rotated everywhere."""
    pipeline.standin.add_customer(CUSTOMER_B)
    now = int(time.time() * 1000)
    earlier = [
        hubspot_event(402, "sphere_customer_id", CUSTOMER_B, occurred_at=now - 1_000, event_id=9401),
        hubspot_event(402, "email", "b@example.com", occurred_at=now - 900, event_id=9402),
    ]
    assert pipeline.post_hubspot(earlier).status == 202
    pipeline.drain()
    pipeline.standin.rotate_token("rotated-token")
    _clients()[2].put_secret_value(SecretId=os.environ["SPHERE_TOKEN_SECRET_ID"], SecretString="rotated-token")
    return []


def _token_unreadable(pipeline: Pipeline, faults: AwsFaults, monkeypatch: pytest.MonkeyPatch) -> list[Body]:
    faults.inject(AwsCall("deliver", "secretsmanager", "GetSecretValue", 1), FaultKind.THROTTLED)
    return []


BODY = {"email": "ada@example.com"}
"""What the change sends Sphere."""
RETRIED = ["queued", "retrying", "delivered"]
SPHERE_CASES = {
    "latency": SphereCase(_latency, [200], ["queued", "delivered"], []),
    "429-retry-after": SphereCase(_failing(429, retry_after=7), [429, 200], RETRIED, [7]),
    "500": SphereCase(_failing(500), [500, 200], RETRIED, [0]),
    "502-html": SphereCase(_failing(502, body="<html>502 Bad Gateway</html>"), [502, 200], RETRIED, [0]),
    "503": SphereCase(_failing(503), [503, 200], RETRIED, [0]),
    # the held request is recorded only when the stand-in stops: Sphere has seen the retry alone
    "timeout": SphereCase(_timeout, [200], RETRIED, [0]),
    "dropped-connection": SphereCase(_dropped, [None, 200], RETRIED, [0]),
    "applied-then-504": SphereCase(_applied_then_504, [504, 200], RETRIED, [0]),
    "401-cured-by-a-fresh-token": SphereCase(_rotated_token, [401, 200], ["queued", "delivered"], []),
    "token-unreadable": SphereCase(_token_unreadable, [200], RETRIED, [0]),
}


@pytest.mark.parametrize("case", SPHERE_CASES.values(), ids=SPHERE_CASES.keys())
def test_each_sphere_failure_is_retried_and_the_change_applied_once(
    case: SphereCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_pipeline() as pipeline, AwsFaults() as faults:
        # Given a contact's change, and Sphere (or the way to it) failing in one way
        behind_the_adapters_back = case.arrange(pipeline, faults, monkeypatch)
        now = int(time.time() * 1000)
        events = [
            hubspot_event(401, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 1_000, event_id=9501),
            hubspot_event(401, "email", BODY["email"], occurred_at=now - 500, event_id=9502),
        ]

        # When HubSpot posts it and the event source mapping drains the queue
        run = run_as_crm(pipeline, faults, [hubspot_webhook(events)])

        # Then Sphere answered as arranged, every PATCH carrying the same change
        requests = [request for request in pipeline.standin.requests if request.customer_id == SEED_INDIVIDUAL_ID]
        assert [request.status for request in requests] == case.answers
        assert [request.body for request in requests] == [BODY] * len(case.answers)
        # And applied it once with a 200 (a retry after an unknown outcome may re-apply the same body, nothing else)
        assert applied_patches(pipeline.standin).get(SEED_INDIVIDUAL_ID) == [BODY]
        assert behind_the_adapters_back in ([], [BODY])
        assert pipeline.standin.customer(SEED_INDIVIDUAL_ID)["email"] == BODY["email"]
        # And each event was delivered, through the history the failure implies
        items = event_items(pipeline)
        for event_id in ("9501", "9502"):
            assert [entry["status"] for entry in items[event_id]["history"]] == case.history
            assert items[event_id]["attempts"] == len(case.backoff) + 1
        # And every failed attempt waited for the adapter's backoff (Retry-After when Sphere gave one)
        failed = [attempt for attempt in run.mapping.attempts if attempt.failed]
        assert [attempt.visibility_asked for attempt in failed] == case.backoff
        assert messages_left(pipeline) == {"queue": 0, "dead-letter queue": 0}
