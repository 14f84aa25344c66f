"""The in-process pipeline fixture works end to end (the integration suites build on it)."""

from __future__ import annotations

import time

from devstack.crm import hubspot_event
from devstack.pipeline import Pipeline
from devstack.sphere_standin import SEED_INDIVIDUAL_ID


def test_a_mapped_contact_change_reaches_sphere(pipeline: Pipeline) -> None:
    # Given a contact's Sphere id and email in one batch
    now = int(time.time() * 1000)
    batch = [
        hubspot_event(7, "sphere_customer_id", SEED_INDIVIDUAL_ID, occurred_at=now - 10, event_id=1),
        hubspot_event(7, "email", "ada@example.com", occurred_at=now, event_id=2),
    ]

    # When HubSpot posts it and the queue is drained
    answer = pipeline.post_hubspot(batch)
    pipeline.drain()

    # Then Sphere got the email once, and both events are delivered
    assert answer.status == 202
    assert [patch.body for patch in pipeline.standin.patches(SEED_INDIVIDUAL_ID)] == [{"email": "ada@example.com"}]
    assert pipeline.event("hubspot", f"62515:7:email:{now}:2")["status"] == "delivered"
