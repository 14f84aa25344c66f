"""The demo ``make run`` plays on start: signed webhooks through the pipeline, each outcome printed."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from devstack.crm import generic_request, hubspot_event, hubspot_request
from devstack.stack import LocalStack
from devstack.vendors import VENDORS, vendor
from webhook_adapter.model import ContactChange, Status

__all__ = ["DEMO_CUSTOMER", "OutcomePrinter", "run_demo"]

DEMO_CUSTOMER = "customer_f31121c389624d3697cbf3ea8830b7a4"
SECOND_CUSTOMER = "customer_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
BUSINESS_CUSTOMER = "customer_b0000000000000000000000000000001"
_FINAL_WAIT_SECONDS = 15.0

type Say = Callable[[str], None]


class OutcomePrinter:
    """Prints each event's outcome as the poller delivers it (the stack's ``on_batch`` listener)."""

    def __init__(self, say: Say = print) -> None:
        self.say = say
        self.stack: LocalStack | None = None
        self.settled = 0
        self._progress = threading.Condition()

    def wait_settled(self, expected: int, timeout: float) -> int:
        """Block until ``expected`` events settled (woken by each batch, no polling) or ``timeout``."""
        with self._progress:
            self._progress.wait_for(lambda: self.settled >= expected, timeout=timeout)
            return self.settled

    def __call__(self, records: list[dict[str, Any]], failed: set[str]) -> None:
        if self.stack is None:
            return
        with self._progress:
            self._print(self.stack, records)
            self._progress.notify_all()

    def _print(self, stack: LocalStack, records: list[dict[str, Any]]) -> None:
        for record in records:
            change = ContactChange.model_validate_json(record["body"])
            for event in change.events:
                item = stack.store.get_event(change.source, event.contact_id, event.key) or {}
                status = item.get("status", "?")
                detail = item.get("reason") or (item.get("sphere") or {}).get("updated_at") or ""
                # An event that carries no value but asks for the CRM's record reads "read:<why>".
                fields = ",".join(str(name) for name in event.changes) or f"read:{event.read or 'nothing'}"
                self.say(
                    f"  deliver  {change.source:8} contact {change.contact_id:14} {fields:28} {status:11} {detail}"
                )
                if status not in {Status.QUEUED, Status.RETRYING}:
                    self.settled += 1


def _post(say: Say, client: httpx.Client, what: str, path: str, headers: dict[str, str], body: bytes) -> None:
    answer = client.post(path, headers=headers, content=body)
    is_json = answer.headers.get("content-type", "").startswith("application/json")
    shown = json.dumps(answer.json()) if is_json else " ".join(answer.text.split())
    say(f"\n> {what}\n  receive  {answer.status_code} {shown}")


def run_demo(stack: LocalStack, printer: OutcomePrinter, say: Say = print) -> int:
    """Send the demo webhooks and wait (bounded) until their outcomes are printed; the events settled."""
    hubspot_secret = stack.secrets["HubSpotSecretArn"]
    generic_secret = stack.secrets["GenericSecretArn"]
    now = int(time.time() * 1000)
    hubspot_url = f"{stack.url}/webhooks/hubspot"
    contact = 1001
    batch = [
        hubspot_event(contact, "sphere_customer_id", DEMO_CUSTOMER, occurred_at=now - 5000),
        hubspot_event(contact, "email", "Ada.Lovelace@Example.COM", occurred_at=now - 4000),
        hubspot_event(contact, "mobilephone", "(312) 555-0142", occurred_at=now - 4000),
        hubspot_event(contact, "address", "233 S Wacker Dr", occurred_at=now - 3000),
        hubspot_event(contact, "city", "Chicago", occurred_at=now - 3000),
        hubspot_event(contact, "state", "Illinois", occurred_at=now - 3000),
        hubspot_event(contact, "zip", "60606", occurred_at=now - 3000),
        hubspot_event(contact, "country", "United States", occurred_at=now - 3000),
        hubspot_event(contact, "lifecyclestage", "customer", occurred_at=now - 3000),
    ]
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        headers, body = hubspot_request(batch, secret=hubspot_secret, url=hubspot_url)
        _post(
            say,
            client,
            "HubSpot batch: a new contact's id, email, phone and address",
            "/webhooks/hubspot",
            headers,
            body,
        )
        # Events are recorded when they end: once this batch is delivered, HubSpot's retry is a known duplicate.
        printer.wait_settled(8, _FINAL_WAIT_SECONDS)
        headers, body = hubspot_request(batch[1:2], secret=hubspot_secret, url=hubspot_url)
        _post(say, client, "HubSpot retries an event it already delivered", "/webhooks/hubspot", headers, body)
        older = [hubspot_event(contact, "city", "Evanston", occurred_at=now - 60_000)]
        headers, body = hubspot_request(older, secret=hubspot_secret, url=hubspot_url)
        _post(say, client, "An older city change arrives late", "/webhooks/hubspot", headers, body)
        unmapped = [hubspot_event(1002, "email", "grace@example.com", occurred_at=now)]
        headers, body = hubspot_request(unmapped, secret=hubspot_secret, url=hubspot_url)
        _post(say, client, "A contact with no Sphere customer id yet", "/webhooks/hubspot", headers, body)
        payload = {
            "id": "crm-42",
            "updatedAt": "2026-11-25T09:30:00Z",
            "sphereCustomerId": SECOND_CUSTOMER,
            "email": "grace.hopper@example.org",
            "address": {
                "line1": "Rua Augusta 1500",
                "city": "São Paulo",
                "state": "SP",
                "postalCode": "01304-001",
                "country": "BR",
            },
        }
        headers, body = generic_request(payload, secret=generic_secret)
        _post(say, client, "Generic webhook (Standard Webhooks signature)", "/webhooks/generic", headers, body)
        business = {"id": "crm-43", "sphereCustomerId": BUSINESS_CUSTOMER, "email": "ops@acme.example"}
        headers, body = generic_request(business, secret=generic_secret)
        _post(say, client, "A business customer (Sphere refuses it)", "/webhooks/generic", headers, body)
        headers, body = hubspot_request(batch[:1], secret="not-the-secret", url=hubspot_url)
        _post(say, client, "A forged HubSpot signature", "/webhooks/hubspot", headers, body)
        expected = 12  # queued events: 8 of the first batch (one property is not mapped), then 1, 1, 1 and 1
        if stack.crm is not None and os.environ.get("HUBSPOT_READ_MODE", "payload") != "payload":
            # HubSpot redacts a sensitive property: deliver reads the contact from HubSpot's API instead.
            record = {"customer_id": DEMO_CUSTOMER, "email": "ada@analytical.example"}
            stack.crm.put_record("hubspot", str(contact), record, modified_at_ms=now - 500)
            redacted = [hubspot_event(contact, "email", "REDACTED", occurred_at=now - 1000)]
            headers, body = hubspot_request(redacted, secret=hubspot_secret, url=hubspot_url)
            what = "HubSpot redacts a sensitive email: the contact is read from HubSpot's API"
            _post(say, client, what, "/webhooks/hubspot", headers, body)
            expected += 1
        for source in VENDORS:
            if source in {"hubspot", "generic"}:
                continue
            kit = vendor(source)
            sample = kit.sample(secret=stack.secrets[kit.secret_parameter], base_url=stack.url, now_ms=now)
            named = kit.sample_expectation().crm_record
            if named is not None and stack.crm is not None:  # an ids-only event: deliver reads this record
                stack.crm.put_record(named[0], named[1], named[2], modified_at_ms=now - 500)
            what = f"{source}: the vendor's documented sample"
            _post(say, client, what, sample.path, dict(sample.headers), sample.body)
            expected += kit.sample_expectation().queued

    return printer.wait_settled(expected, _FINAL_WAIT_SECONDS)
