"""Salesforce Change Data Capture through the receive function's EventBridge entry point, then deliver.

Event Relay's events are invoked as an EventBridge rule invokes the receive function (``Pipeline.put_event``),
on moto, with Sphere's stand-in and the CRM stand-in serving Salesforce's token endpoint and Contact read.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.crm_standin import CrmStandIn
from devstack.kit import fail_once
from devstack.pipeline import Pipeline
from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from webhook_adapter import runtime
from webhook_adapter.enqueue import ChangeQueue
from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.model import Status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce-cdc"
CONTACT = "0035e00000AbCdEAAV"
OTHER = "0035e00000XyZwQAAV"
SOURCE = "salesforce-cdc"
PLANTED = "SECRET-PII-12345"


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def crm(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrmStandIn]:
    """Salesforce's token endpoint and Contact read on the CRM stand-in, at the configured instance URL."""
    with CrmStandIn(port=0) as standin:
        monkeypatch.setenv("SALESFORCE_CDC_INSTANCE_URL", standin.base_url)
        # As the template sets it once SalesforceInstanceUrl is given too (the credentials are the local stack's)
        assert os.environ["SALESFORCE_CDC_READ_MODE"] == "payload"
        monkeypatch.setenv("SALESFORCE_CDC_READ_MODE", "fetch-when-incomplete")
        runtime.reset()
        yield standin


def change_event(
    header: dict[str, Any], *, at: int, transaction: str = "0000d978-0333-d593-c68b-98759eaddd49", **fields: Any
) -> dict[str, Any]:
    """A Contact change event's EventBridge ``detail``."""
    base = {
        "entityName": "Contact",
        "changeType": "UPDATE",
        "recordIds": [CONTACT],
        "commitTimestamp": at,
        "commitNumber": at * 1000,
        "sequenceNumber": 1,
        "transactionKey": transaction,
    }
    return {"payload": {"ChangeEventHeader": {**base, **header}, **fields}, "schemaId": "nwh_psdDreneoyiZ-rwk8w"}


def key_of(detail: dict[str, Any], record: str = CONTACT) -> str:
    header = detail["payload"]["ChangeEventHeader"]
    return f"{header['commitNumber']:020d}:{header['sequenceNumber']:010d}:{header['transactionKey']}:{record}"


def test_an_email_update_becomes_the_patch(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given a Contact UPDATE of its email and customer id
    update = change_event(
        {"changedFields": ["Email", "Sphere_Customer_Id__c"]},
        at=now_ms() - 5000,
        Email="ada.new@example.com",
        Sphere_Customer_Id__c=SEED_INDIVIDUAL_ID,
    )

    # When EventBridge invokes receive with it, and the change is delivered
    result = pipeline.put_event("ContactChangeEvent", update)
    pipeline.drain()

    # Then it was accepted, Sphere got the email, nothing was read (the event said enough), and it is delivered
    assert result["accepted"] == [key_of(update)]
    [patch] = pipeline.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body == {"email": "ada.new@example.com"}
    assert crm.records_read("salesforce") == []
    assert pipeline.event(SOURCE, key_of(update))["status"] == Status.DELIVERED


def test_a_nulled_field_is_known_as_cleared(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given the contact's email and mobile phone, then the mobile phone nulled in Salesforce
    at = now_ms() - 5000
    first = change_event(
        {"changedFields": ["Email", "MobilePhone", "Sphere_Customer_Id__c"]},
        at=at,
        Email="ada@example.com",
        MobilePhone="+1 312 555 0142",
        Sphere_Customer_Id__c=SEED_INDIVIDUAL_ID,
    )
    nulled = change_event(
        {"changedFields": ["MobilePhone"], "nulledFields": ["MobilePhone"]},
        at=at + 1000,
        transaction="0000d978-0333-d593-c68b-98759eaddd50",
        MobilePhone=None,
    )

    # When both are received and delivered in turn
    pipeline.put_event("ContactChangeEvent", first)
    pipeline.drain()
    pipeline.put_event("ContactChangeEvent", nulled)
    pipeline.drain()

    # Then the nulled field reached deliver as cleared: Sphere keeps its phone (the pipeline's rule for a cleared
    # phone), so no second call, and the event says why
    assert len(pipeline.standin.patches(SEED_INDIVIDUAL_ID)) == 1
    item = pipeline.event(SOURCE, key_of(nulled))
    assert item["status"] == Status.INCOMPLETE
    assert "cleared in the CRM" in item["reason"]


def test_a_gap_reads_the_contact_and_sends_what_salesforce_holds(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given a Contact in Salesforce, and a gap event for it (no fields)
    at = now_ms() - 5000
    crm.put_record(
        "salesforce",
        CONTACT,
        {"customer_id": SEED_INDIVIDUAL_ID, "email": "read@example.com", "phone": "+1 312 555 0142"},
        modified_at_ms=at,
    )
    gap = change_event({"changeType": "GAP_UPDATE"}, at=at)

    # When received and delivered
    pipeline.put_event("ContactChangeEvent", gap)
    pipeline.drain()

    # Then the Contact was read once, with a token of the client credentials flow, and its values were sent
    assert len(crm.records_read("salesforce")) == 1
    [patch] = pipeline.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body is not None
    assert patch.body["email"] == "read@example.com"
    item = pipeline.event(SOURCE, key_of(gap))
    assert item["status"] == Status.DELIVERED


def test_a_repeated_event_is_a_duplicate_and_changes_nothing_more(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given a change event delivered, then delivered again (EventBridge's or Lambda's retry)
    update = change_event(
        {"changedFields": ["Email", "Sphere_Customer_Id__c"]},
        at=now_ms() - 5000,
        Email="once@example.com",
        Sphere_Customer_Id__c=SEED_INDIVIDUAL_ID,
    )
    pipeline.put_event("ContactChangeEvent", update)
    pipeline.drain()

    # When it comes again
    again = pipeline.put_event("ContactChangeEvent", copy.deepcopy(update))
    pipeline.drain()

    # Then it is a duplicate: nothing queued, Sphere called once
    assert again == {"accepted": [], "duplicates": [key_of(update)]}
    assert len(pipeline.standin.patches(SEED_INDIVIDUAL_ID)) == 1


def test_an_event_naming_two_records_changes_two_contacts(pipeline: Pipeline, crm: CrmStandIn) -> None:
    assert pipeline.standin is not None
    # Given one gap event naming two Contacts (the derived fixture), both in Salesforce (one Sphere customer: the
    # stand-in seeds one individual)
    gap = json.loads((FIXTURES / "contact-gap.json").read_text(encoding="utf-8"))
    at = gap["detail"]["payload"]["ChangeEventHeader"]["commitTimestamp"]
    for record, email in ((CONTACT, "a@example.com"), (OTHER, "b@example.com")):
        crm.put_record("salesforce", record, {"customer_id": SEED_INDIVIDUAL_ID, "email": email}, modified_at_ms=at)

    # When EventBridge invokes receive with the whole event, and the changes are delivered
    result = pipeline.put_event(gap["detail-type"], gap["detail"], source=gap["source"], event_id=gap["id"])
    pipeline.drain()

    # Then both were accepted, each Contact was read and sent as its own change
    assert len(result["accepted"]) == 2
    assert sorted(read.record_id or "" for read in crm.records_read("salesforce")) == [CONTACT, OTHER]
    bodies = [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)]
    assert sorted(body["email"] for body in bodies if body) == ["a@example.com", "b@example.com"]
    for record in (CONTACT, OTHER):
        assert pipeline.event(SOURCE, key_of(gap["detail"], record))["status"] == Status.DELIVERED


def test_a_malformed_event_is_recorded_refused_and_not_raised(pipeline: Pipeline, crm: CrmStandIn) -> None:
    # Given a change event whose email is not text, holding a value that stands for PII
    since = now_ms()
    broken = change_event({"changedFields": ["Email"]}, at=since, Email=[PLANTED])

    # When EventBridge invokes receive with it
    result = pipeline.put_event("ContactChangeEvent", broken, event_id="5e1d0c9b-0000-4000-8000-000000000001")

    # Then it is refused without raising (a retry would not fix it), recorded with why, never the value; nothing queued
    assert result == {"refused": "invalid_payload"}
    [refused] = pipeline.refused_requests(SOURCE, since)
    assert refused["pk"] == "REQUEST#eventbridge-5e1d0c9b-0000-4000-8000-000000000001"
    assert "Email must be text" in refused["reason"]
    assert PLANTED not in json.dumps(refused, default=str)
    assert pipeline.queued_messages() == 0


def test_events_from_another_source_or_of_another_type_are_dropped(pipeline: Pipeline, crm: CrmStandIn) -> None:
    # Given a valid change event, sent as another partner's event and as another detail-type
    update = change_event({"changedFields": ["Email"]}, at=now_ms(), Email="x@example.com")
    since = now_ms()

    # When EventBridge invokes receive with them
    foreign = pipeline.put_event("ContactChangeEvent", update, source="aws.partner/example.com/123/relay")
    other = pipeline.put_event("AccountChangeEvent", update)

    # Then both are ignored: nothing queued, nothing recorded
    assert foreign == other == {"ignored": "not a Salesforce ContactChangeEvent"}
    assert pipeline.queued_messages() == 0
    assert pipeline.refused_requests(SOURCE, since) == []
    assert pipeline.find_event(SOURCE, key_of(update)) is None


def test_a_queue_failure_raises_so_lambda_retries_and_the_retry_is_accepted(
    pipeline: Pipeline, crm: CrmStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pipeline.standin is not None
    # Given SQS failing once
    update = change_event(
        {"changedFields": ["Email", "Sphere_Customer_Id__c"]},
        at=now_ms() - 5000,
        Email="retry@example.com",
        Sphere_Customer_Id__c=SEED_INDIVIDUAL_ID,
    )
    monkeypatch.setattr(
        ChangeQueue, "send", fail_once(ChangeQueue.send, StorageUnavailable("could not queue the change on SQS"))
    )

    # When EventBridge invokes receive, Then the invocation fails (Lambda retries the event)
    with pytest.raises(StorageUnavailable):
        pipeline.put_event("ContactChangeEvent", update)

    # And Lambda's retry is accepted and delivered, once
    retried = pipeline.put_event("ContactChangeEvent", update)
    pipeline.drain()
    assert retried["accepted"] == [key_of(update)]
    assert len(pipeline.standin.patches(SEED_INDIVIDUAL_ID)) == 1
