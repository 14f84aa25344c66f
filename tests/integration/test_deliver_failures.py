"""Deliver under failure: what broke when the adapter was measured from outside, each fixed through the handler.

- a Secrets Manager failure is retried exactly like a Sphere 503 (backoff, ``retrying``, delivered later);
- the later messages of a failing contact in the same batch (those not coalesced into the failing call)
  wait the same backoff, and are recorded ``dead_lettered`` when their last allowed receive fails;
- Sphere's error text is masked before it is recorded;
- an older change is never sent over a newer one Sphere may already hold, even when Sphere's answer
  to the newer one was lost;
- a change whose outcomes could not be written after Sphere applied it is recorded as delivered on retry.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from devstack.kit import (
    assert_patch,
    change,
    contact,
    fail_once,
    history,
    invoke_deliver,
    now_ms,
    post,
    received_records,
    record_holding,
    status_of,
    stored,
)
from devstack.lambda_events import LambdaContext, sqs_event
from devstack.pipeline import Pipeline
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from webhook_adapter import aws
from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.store import EventStore


def test_a_secrets_manager_failure_is_retried_like_a_sphere_503(pipeline: Pipeline) -> None:
    # Given Secrets Manager cannot be reached for the deliver function's first read of Sphere's token
    failures = iter([EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")])

    def unreachable_once(params: dict[str, Any], **_: Any) -> None:
        if params["SecretId"] == os.environ["SPHERE_TOKEN_SECRET_ID"]:
            for error in failures:
                raise error

    aws.secretsmanager().meta.events.register("provide-client-params.secrets-manager.GetSecretValue", unreachable_once)
    events = contact(201, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    post(pipeline, *events)

    # When the change is delivered (retries without delay in tests)
    pipeline.drain()

    # Then the change went through "retrying" with a reason naming the secret, and was delivered once
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "ada@example.com"})
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], item["attempts"], history(item)) == (
            "delivered",
            2,
            ["queued", "retrying", "delivered"],
        )
        assert item["history"][1]["reason"] == "could not read a secret from Secrets Manager"


def test_the_rest_of_a_failing_contacts_batch_waits_the_same_backoff(
    pipeline: Pipeline, visibility_changes: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given contact A's two changes in one batch, too many events to go in one call, and Sphere answering 429
    # with Retry-After: 7
    monkeypatch.setattr("webhook_adapter.consume.MAX_EVENTS_PER_CALL", 1)
    start = now_ms()
    first = contact(202, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email="a1@example.com")
    second = change(202, "email", "a2@example.com", at=start + 5_000)
    post(pipeline, *first)
    post(pipeline, second)
    records = received_records(pipeline)
    batch = [record_holding(records, first[0]), record_holding(records, second)]
    pipeline.standin.fail_next(1, 429, retry_after=7)

    # When the deliver handler gets the batch
    failed = invoke_deliver(pipeline, batch)

    # Then both are reported failed and both are hidden for Sphere's Retry-After, not the queue's 180 s
    assert failed == {record["messageId"] for record in batch}
    assert sorted(visibility_changes) == sorted((record["receiptHandle"], 7) for record in batch)
    # And the change that was not tried yet is still only on the queue (nothing to record)
    assert status_of(pipeline, *first) == ["retrying", "retrying"]
    with pytest.raises(KeyError):
        stored(pipeline, second)


def test_a_skipped_message_on_its_last_receive_is_recorded_dead_lettered(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given contact A's two changes received for the last time the redrive policy allows, too many events to go
    # in one call, and Sphere unavailable
    monkeypatch.setattr("webhook_adapter.consume.MAX_EVENTS_PER_CALL", 1)
    start = now_ms()
    last = pipeline.resources.max_receive_count
    first = contact(203, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email="a1@example.com")
    second = change(203, "email", "a2@example.com", at=start + 5_000)
    post(pipeline, *first)
    post(pipeline, second)
    records = received_records(pipeline, receive_count=last)
    batch = [record_holding(records, first[0]), record_holding(records, second)]
    pipeline.standin.fail_next(1, 503)

    # When the deliver handler gets them
    failed = invoke_deliver(pipeline, batch)

    # Then both go to the dead-letter queue, and every one of their events is recorded so
    assert failed == {record["messageId"] for record in batch}
    assert [request.status for request in pipeline.standin.requests] == [503]
    assert status_of(pipeline, *first, second) == ["dead_lettered"] * 3
    skipped = stored(pipeline, second)
    assert skipped["attempts"] == last
    assert skipped["reason"] == "an earlier change of this contact failed; moved to the dead-letter queue"


def test_spheres_error_text_is_recorded_without_the_values_it_echoes(pipeline: Pipeline) -> None:
    # Given Sphere refuses an email with a detail that repeats it
    events = contact(204, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="grace.h@example.org")
    detail = "email grace.h@example.org is already used by customer +14155550123"
    body = {"status": 422, "code": "validation/failed", "detail": detail, "correlationId": "c0ffee01"}
    pipeline.standin.fail_next(1, 422, body=body)

    # When the change is delivered
    post(pipeline, *events)
    pipeline.drain()

    # Then the refusal is recorded with Sphere's code and correlation id, and without the echoed values
    item = stored(pipeline, events[1])
    assert item["status"] == "rejected"
    assert (item["sphere"]["code"], item["sphere"]["correlation_id"]) == ("validation/failed", "c0ffee01")
    assert "grace.h@example.org" not in str(item)
    assert "4155550123" not in str(item)
    assert item["sphere"]["detail"] == "email *** is already used by customer ***"


def test_an_older_change_is_not_sent_over_a_newer_one_whose_answer_was_lost(pipeline: Pipeline) -> None:
    # Given a newer email change, queued before an older one of the same field (the older arrived late)
    start = now_ms()
    newer = contact(205, at=start + 10_000, sphere_customer_id=SEED_INDIVIDUAL_ID, email="new@example.com")
    older = change(205, "email", "old@example.com", at=start)
    post(pipeline, *newer)
    post(pipeline, older)
    records = received_records(pipeline)
    newer_record, older_record = record_holding(records, newer[1]), record_holding(records, older)
    # And Sphere applies the newer one but its answer is lost (a 502)
    pipeline.standin.fail_next(1, 502)
    assert invoke_deliver(pipeline, [newer_record]) == {newer_record["messageId"]}

    # When the older change is handed to the deliver function before the newer one's retry
    assert invoke_deliver(pipeline, [older_record]) == set()

    # Then the older value is never sent: it is superseded by the newer one Sphere may hold
    assert [request.body for request in pipeline.standin.requests] == [{"email": "new@example.com"}]
    assert status_of(pipeline, older) == ["superseded"]

    # When the newer one is retried
    assert invoke_deliver(pipeline, [newer_record]) == set()

    # Then it is sent again and delivered
    assert [request.body for request in pipeline.standin.patches(SEED_INDIVIDUAL_ID)][-1] == {
        "email": "new@example.com"
    }
    assert status_of(pipeline, *newer) == ["delivered", "delivered"]


def test_a_change_whose_outcomes_could_not_be_written_is_recorded_delivered_on_retry(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB fails once to write the outcomes, after Sphere applied the change and the state was saved
    failure = StorageUnavailable("could not record events in DynamoDB")
    monkeypatch.setattr(EventStore, "record_outcomes", fail_once(EventStore.record_outcomes, failure))
    events = contact(206, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    post(pipeline, *events)

    # When the change is delivered, and retried after the failure
    pipeline.drain()

    # Then Sphere got it once, and the retry recorded what that call did: delivered, with Sphere's answer
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "ada@example.com"})
    for event in events:
        item = stored(pipeline, event)
        assert (item["status"], history(item)) == ("delivered", ["queued", "retrying", "delivered"])
        assert item["sphere"]["updated_at"] == pipeline.standin.customer(SEED_INDIVIDUAL_ID)["updatedAt"]


def test_an_unforeseen_fault_fails_its_contact_only_and_is_retried(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deliver step crashes once on contact A's change (a bug, not a service failure)
    from webhook_adapter.deliver import Delivery

    original = Delivery.deliver
    crashes = iter([RuntimeError("a bug")])

    def deliver_crashing_once(self: Delivery, received: Any, **options: Any) -> Any:
        if received[0].change.contact_id.endswith(":207"):
            for error in crashes:
                raise error
        return original(self, received, **options)

    monkeypatch.setattr(Delivery, "deliver", deliver_crashing_once)
    start = now_ms()
    pipeline.standin.add_customer("customer_bbbb02")
    a = contact(207, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email="a@example.com")
    b = contact(208, at=start, sphere_customer_id="customer_bbbb02", email="b@example.com")
    post(pipeline, *a)
    post(pipeline, *b)
    records = received_records(pipeline)
    batch = [record_holding(records, a[0]), record_holding(records, b[0])]

    # When the deliver handler gets both in one batch
    failed = invoke_deliver(pipeline, batch)

    # Then only A's message is reported failed, recorded as retrying, and B's is delivered
    assert failed == {batch[0]["messageId"]}
    assert status_of(pipeline, *a, *b) == ["retrying", "retrying", "delivered", "delivered"]
    assert stored(pipeline, a[0])["reason"] == "delivery failed unexpectedly"

    # When the event source mapping deletes B's message and A's change comes back
    pipeline.sqs.delete_message(QueueUrl=pipeline.resources.queue_url, ReceiptHandle=batch[1]["receiptHandle"])
    pipeline.drain()

    # Then it is delivered
    assert status_of(pipeline, *a) == ["delivered", "delivered"]


def test_messages_the_invocation_has_no_time_left_for_are_returned_untried(pipeline: Pipeline) -> None:
    # Given two contacts' changes, and an invocation with less time left than one Sphere call may take
    start = now_ms()
    pipeline.standin.add_customer("customer_cccc03")
    a = contact(209, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email="a@example.com")
    b = contact(210, at=start, sphere_customer_id="customer_cccc03", email="b@example.com")
    post(pipeline, *a)
    post(pipeline, *b)
    batch = received_records(pipeline)
    context = LambdaContext(function_name="deliver", deadline_ms=now_ms() + 1_000)

    # When the deliver handler gets them
    response = pipeline.deliver_handler(sqs_event(batch), context)

    # Then neither is tried: both go back to the queue, with nothing recorded, and are delivered later
    assert {failure["itemIdentifier"] for failure in response["batchItemFailures"]} == {
        record["messageId"] for record in batch
    }
    assert pipeline.standin.requests == []
    with pytest.raises(KeyError):
        stored(pipeline, a[0])
    pipeline.drain()
    assert status_of(pipeline, *a, *b) == ["delivered"] * 4


def test_a_state_write_refused_once_after_sphere_applied_the_change_does_not_send_it_again(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB refuses the contact's state once, right after Sphere applied the change (no real pauses)
    monkeypatch.setattr("webhook_adapter.deliver.SAVE_AFTER_CALL_PAUSES", (0, 0))
    failure = StorageUnavailable("could not save the contact state to DynamoDB")
    monkeypatch.setattr(EventStore, "save_contact", fail_once(EventStore.save_contact, failure))
    events = contact(211, at=now_ms(), sphere_customer_id=SEED_INDIVIDUAL_ID, email="ada@example.com")
    post(pipeline, *events)

    # When the change is delivered
    pipeline.drain()

    # Then the state was saved on a second try: Sphere got the change once, and it is delivered
    [request] = pipeline.standin.requests
    assert_patch(request, SEED_INDIVIDUAL_ID, {"email": "ada@example.com"})
    assert status_of(pipeline, *events) == ["delivered", "delivered"]
