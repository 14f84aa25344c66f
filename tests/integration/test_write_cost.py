"""What the events table costs: DynamoDB write and read units per event, counted from the calls both functions make.

Counted, not timed: every write through the adapter's DynamoDB client is sized before and after
(``devstack.write_units``), index writes included, and every key read is sized
(``devstack.read_units``), as on-demand bills them. The budgets are the table design's promise
(README, "The events table"): at most 3 write units per event when each webhook carries one
change, at most 2 for HubSpot batches of 100 events over 10 contacts; and reads of at most 2.5
and 1.5 units per event, which holds only while receive's duplicate check reads eventually
consistent (half price; deliver's own strongly consistent read is what keeps a change from
applying twice).
"""

from __future__ import annotations

import itertools

import boto3

from devstack.crm import FULL_CONTACT, hubspot_event
from devstack.pipeline import Pipeline
from devstack.read_units import ReadMeter
from devstack.write_units import WriteMeter
from webhook_adapter import aws
from webhook_adapter.store import STATUS_INDEX

SINGLE_CHANGE_BUDGET = 3.0
BATCH_BUDGET = 2.0
SINGLE_CHANGE_READ_BUDGET = 2.5
BATCH_READ_BUDGET = 1.5
_event_ids = itertools.count(500_000)


def read_meter(pipeline: Pipeline) -> ReadMeter:
    return ReadMeter(reader=boto3.client("dynamodb"), table=pipeline.resources.table_name)


def meter(pipeline: Pipeline) -> WriteMeter:
    return WriteMeter(
        reader=boto3.client("dynamodb"),
        table=pipeline.resources.table_name,
        indexes={STATUS_INDEX: ("status_bucket", "status_at")},
    )


def customer(number: int) -> str:
    return f"customer_{number:032x}"


def test_single_change_webhooks_cost_at_most_three_write_units_per_event(pipeline: Pipeline) -> None:
    # Given 10 HubSpot contacts and 10 generic contacts Sphere knows, first seen earlier (not counted)
    contacts = range(1, 11)
    for number in contacts:
        pipeline.standin.add_customer(customer(number))
        seed = hubspot_event(
            number, "sphere_customer_id", customer(number), occurred_at=1_000, event_id=next(_event_ids)
        )
        assert pipeline.post_hubspot([seed]).status == 202
        generic = {"id": f"g-{number}", "updatedAt": 1, "sphereCustomerId": customer(number)}
        assert pipeline.post_generic(generic).status == 202
    pipeline.drain()
    counted, read = meter(pipeline), read_meter(pipeline)

    # When each then sends three webhooks of one change each (email, phone, city), and they are delivered
    events = 0
    with counted.watching(aws.dynamodb()), read.watching(aws.dynamodb()):
        for step, (prop, value) in enumerate(
            [("email", "ada@example.com"), ("phone", "+13125550142"), ("city", "Chicago")]
        ):
            for number in contacts:
                change = hubspot_event(number, prop, value, occurred_at=2_000 + step, event_id=next(_event_ids))
                assert pipeline.post_hubspot([change]).status == 202
                body = {
                    "id": f"g-{number}",
                    "updatedAt": 2 + step,
                    **({"address": {prop: value}} if prop == "city" else {prop: value}),
                }
                assert pipeline.post_generic(body).status == 202
                events += 2
        pipeline.drain()

    # Then the table was written at most three units per event, index writes included
    assert events == 60
    print(
        f"single-change: {counted.units / events:.2f} units/event",
        counted.table_units,
        counted.index_units,
        counted.calls,
    )
    assert counted.units / events <= SINGLE_CHANGE_BUDGET, (counted.units, counted.calls)
    # And every item written fits one write unit
    assert max(counted.sizes) <= 1024, max(counted.sizes)
    # And the reads cost at most 2.5 units per event
    assert read.units / events <= SINGLE_CHANGE_READ_BUDGET, (read.units, read.keys, read.missing)


def test_hubspot_batches_of_100_over_10_contacts_cost_at_most_two_write_units_per_event(pipeline: Pipeline) -> None:
    # Given 10 new HubSpot contacts, each with its Sphere id and nine property changes, in one batch of 100
    batches = []
    for batch_number in range(3):
        batch = []
        for contact in range(10):
            number = 100 + batch_number * 10 + contact
            pipeline.standin.add_customer(customer(number))
            at = 10_000
            batch.append(
                hubspot_event(number, "sphere_customer_id", customer(number), occurred_at=at, event_id=next(_event_ids))
            )
            batch += [
                hubspot_event(number, prop, value, occurred_at=at + offset, event_id=next(_event_ids))
                for offset, (prop, value) in enumerate(FULL_CONTACT, start=1)
            ]
        batches.append(batch)
    counted, read = meter(pipeline), read_meter(pipeline)

    # When HubSpot posts the batches and they are delivered
    with counted.watching(aws.dynamodb()), read.watching(aws.dynamodb()):
        for batch in batches:
            assert len(batch) == 100
            assert pipeline.post_hubspot(batch).status == 202
        pipeline.drain()

    # Then the table was written at most two units per event, index writes included
    assert len(pipeline.standin.patches()) == 30
    assert counted.units / 300 <= BATCH_BUDGET, (counted.units, counted.calls)
    assert max(counted.sizes) <= 1024, max(counted.sizes)
    # And the reads cost at most 1.5 units per event
    assert read.units / 300 <= BATCH_READ_BUDGET, (read.units, read.keys, read.missing)
