"""Salesforce Change Data Capture on the local stack ``make run`` starts: an EventBridge event put, a Contact read."""

from __future__ import annotations

import time

from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.stack import LocalStack
from e2e.support import wait_for
from webhook_adapter.model import Status

CONTACT = "0035e00000AbCdEAAV"


def test_a_gap_event_put_on_the_local_stack_reads_the_contact_from_the_crm_standin(stack: LocalStack) -> None:
    assert stack.standin is not None
    assert stack.crm is not None
    # Given a Contact in the CRM stand-in's Salesforce, and a gap event for it
    at = int(time.time() * 1000) - 2000
    stack.crm.put_record(
        "salesforce", CONTACT, {"customer_id": SEED_INDIVIDUAL_ID, "email": "relay@example.com"}, modified_at_ms=at
    )
    header = {
        "entityName": "Contact",
        "changeType": "GAP_UPDATE",
        "recordIds": [CONTACT],
        "commitTimestamp": at,
        "commitNumber": 7,
        "sequenceNumber": 1,
        "transactionKey": "00077a41-9b2c-8d3e-1f40-a2b3c4d5e6f7",
    }

    # When Event Relay's rule would invoke receive with it
    result = stack.put_event("ContactChangeEvent", {"payload": {"ChangeEventHeader": header}})
    [key] = result["accepted"]

    # Then deliver read the Contact (token and record from the stand-in) and Sphere got its email
    def delivered() -> bool:
        item = stack.store.get_event("salesforce-cdc", CONTACT, key)
        return item is not None and item["status"] == Status.DELIVERED

    wait_for(delivered)
    assert [patch.body for patch in stack.standin.patches(SEED_INDIVIDUAL_ID)] == [{"email": "relay@example.com"}]
    assert len(stack.crm.records_read("salesforce")) == 1
