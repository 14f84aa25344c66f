"""The demo ``make run`` plays on start, and the console that prints every outcome under its own request.

Each request gets a heading, the answer the CRM sees, then one line per event with the id the CRM
sent (the id the 202 receipt lists): duplicates, events settled on arrival (ignored, refused elements
of a batch), a refused request (4xx, the table's ``REQUEST#`` item), and each delivered event's outcome
as the poller settles it. The demo waits for a request's events to settle before the next heading, so
the output reads in order; after the demo, ``ConsoleStack`` prints each request it receives the same way.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from boto3.dynamodb.types import TypeDeserializer

from devstack.crm import generic_request, hubspot_event, hubspot_request
from devstack.stack import LocalStack, StackOptions
from devstack.vendors import VENDORS, vendor
from webhook_adapter.model import ContactChange, Status

__all__ = ["DEMO_CUSTOMER", "HEADER", "ConsoleStack", "OutcomePrinter", "Receipt", "Say", "outcome_line", "run_demo"]

DEMO_CUSTOMER = "customer_f31121c389624d3697cbf3ea8830b7a4"
SECOND_CUSTOMER = "customer_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
BUSINESS_CUSTOMER = "customer_b0000000000000000000000000000001"
SETTLE_SECONDS = 15.0
"""How long the demo waits for one request's events before it moves on (their lines print when they settle)."""

STATUS_WIDTH = 12
SOURCE_WIDTH = 16
FIELDS_WIDTH = 30
DETAIL_WIDTH = 48
ANSWER_WIDTH = 100
"""Columns of an outcome line: what does not fit is cut and marked (``+N`` more fields, ``…`` for text)."""
HEADER = (
    f"  {'STATUS':<{STATUS_WIDTH}} {'SOURCE':<{SOURCE_WIDTH}} {'FIELDS':<{FIELDS_WIDTH}} "
    f"{'DETAIL':<{DETAIL_WIDTH}} EVENT ID (CONTACT)"
)
_IN_FLIGHT = frozenset({Status.QUEUED, Status.RETRYING})
_DESERIALIZER = TypeDeserializer()

type Say = Callable[[str], None]


def _cut(text: str, width: int) -> str:
    """``text`` padded to ``width``, or cut to it with a trailing ``…``."""
    return f"{text:<{width}}" if len(text) <= width else text[: width - 1] + "…"


def _fields(names: Sequence[str], width: int) -> str:
    """Field names joined by commas, the ones that do not fit counted as ``+N``."""
    shown = ",".join(names) or "-"
    if len(shown) <= width:
        return f"{shown:<{width}}"
    for kept in range(len(names) - 1, 0, -1):
        shown = f"{','.join(names[:kept])} +{len(names) - kept}"
        if len(shown) <= width:
            return f"{shown:<{width}}"
    return _cut(f"{names[0]} +{len(names) - 1}", width)


def outcome_line(status: str, source: str, fields: Sequence[str], detail: str, ident: str) -> str:
    """One event's (or one refused request's) line: fixed columns, then its ids in full (to copy into a query)."""
    return (
        f"  {_cut(status, STATUS_WIDTH)} {_cut(source, SOURCE_WIDTH)} {_fields(fields, FIELDS_WIDTH)} "
        f"{_cut(' '.join(detail.split()), DETAIL_WIDTH)} {ident}"
    )


def _event_line(item: Mapping[str, Any], source: str, event_id: str, contact_id: str) -> str:
    """An event's line from its item in the table: its status, its fields, why (or when Sphere took it)."""
    status = str(item.get("status", "?"))
    detail = item.get("reason") or ""
    if not detail and (updated := (item.get("sphere") or {}).get("updated_at")):
        detail = f"Sphere updatedAt {updated}"
    if status == Status.RETRYING and item.get("attempts"):
        detail = f"attempt {item['attempts']}: {detail}"
    fields = [str(name) for name in item.get("fields") or item.get("refused_fields") or ()]
    return outcome_line(status, source, fields, str(detail), f"{event_id} ({contact_id})")


class OutcomePrinter:
    """Prints each event's outcome as the poller delivers it (the stack's ``on_batch`` listener).

    ``hold`` keeps the lines back until ``release``: the demo holds them while a request is answered,
    so an outcome never prints above its request's answer. ``wait_for`` blocks until given events settled.
    """

    def __init__(self, say: Say = print) -> None:
        self.say = say
        self.stack: LocalStack | None = None
        self.settled = 0
        self._final: set[tuple[str, str]] = set()
        self._held: list[str] | None = None
        self._progress = threading.Condition()

    def hold(self) -> None:
        """Keep the next outcome lines back (until ``release``)."""
        with self._progress:
            self._held = []

    def release(self, first: Sequence[str] = ()) -> None:
        """Print ``first``, then the lines kept back, and print the next ones as they come."""
        with self._progress:
            held, self._held = self._held or [], None
            for line in [*first, *held]:
                self.say(line)

    def wait_for(self, source: str, event_ids: Iterable[str], timeout: float) -> set[str]:
        """Block until every one of ``event_ids`` settled (woken by each batch, no polling) or ``timeout``.

        Returns the ids still on their way.
        """
        wanted = {(source, event_id) for event_id in event_ids}
        with self._progress:
            self._progress.wait_for(lambda: wanted <= self._final, timeout=timeout)
            return {event_id for _, event_id in wanted - self._final}

    def wait_settled(self, expected: int, timeout: float) -> int:
        """Block until ``expected`` events settled since the start or ``timeout``; how many did."""
        with self._progress:
            self._progress.wait_for(lambda: self.settled >= expected, timeout=timeout)
            return self.settled

    def __call__(self, records: list[dict[str, Any]], failed: set[str]) -> None:
        if self.stack is None:
            return
        lines = []
        for record in records:
            change = ContactChange.model_validate_json(record["body"])
            for event in change.events:
                item = self.stack.store.get_event(change.source, event.contact_id, event.key) or {}
                lines.append((change.source, event.event_id, item.get("status"), item, event.contact_id))
        with self._progress:
            for source, event_id, status, item, contact_id in lines:
                line = _event_line(item, source, event_id, contact_id)
                if self._held is not None:
                    self._held.append(line)
                else:
                    self.say(line)
                if status not in _IN_FLIGHT:
                    self.settled += 1
                    self._final.add((source, event_id))
            self._progress.notify_all()


@dataclass
class Receipt:
    """What one request was answered: its status, the ids its receipt lists, when it was sent, its first lines."""

    source: str
    status: int
    sent_ms: int
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    settled: dict[str, list[str]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    """What the console prints for it at once: the answer, then duplicates, events settled on arrival, a refusal."""

    @property
    def queued(self) -> list[str]:
        """The accepted ids deliver settles (the rest were settled on arrival)."""
        settled = {event_id for ids in self.settled.values() for event_id in ids}
        return [event_id for event_id in self.accepted if event_id not in settled]


def _table_items(stack: LocalStack, source: str, event_ids: set[str]) -> list[dict[str, Any]]:
    """The event items of ``source`` with those CRM ids (a scan: the local table is small)."""
    found = []
    for page in stack.client("dynamodb").get_paginator("scan").paginate(TableName=stack.store.table_name):
        for raw in page["Items"]:
            item = {name: _DESERIALIZER.deserialize(value) for name, value in raw.items()}
            if item.get("source") == source and item.get("event_id") in event_ids:
                found.append(item)
    return found


def _refused_requests(stack: LocalStack, source: str, since_ms: int) -> list[dict[str, Any]]:
    """The refused requests (``REQUEST#`` items) of ``source`` since ``since_ms``, found as an operator finds them."""
    items = stack.store.events_by_status(Status.REFUSED, since_ms, int(time.time() * 1000) + 1000)
    return [item for item in items if str(item["pk"]).startswith("REQUEST#") and item.get("source") == source]


class _Demo:
    """Sends the demo's requests one at a time, each followed by its outcome lines."""

    def __init__(self, stack: LocalStack, printer: OutcomePrinter, client: httpx.Client, say: Say) -> None:
        self.stack, self.printer, self.client, self.say = stack, printer, client, say

    def post(self, what: str, path: str, headers: Mapping[str, str], body: bytes, *, expected: int = 0) -> Receipt:
        """Send one request and print its heading, its answer and every outcome of its events.

        ``expected`` is how many events deliver settles for an answer that lists no ids (Salesforce's SOAP ack).
        """
        source = path.split("?", 1)[0].rsplit("/", 1)[-1]
        self.say(f"\n> {what}")
        self.printer.hold()
        sent_ms = int(time.time() * 1000)
        settled_before = self.printer.settled
        receipt: Receipt | None = None
        try:
            answer = self.client.post(path, headers=dict(headers), content=body)
            is_json = answer.headers.get("content-type", "").startswith("application/json")
            receipt = _answer_lines(
                self.stack, source, answer.status_code, answer.json() if is_json else None, answer.text, sent_ms
            )
        finally:
            # the answer first, then the outcomes settled while it was on its way
            self.printer.release(first=receipt.lines if receipt else ())
        if receipt.accepted or not expected:
            missing = self.printer.wait_for(source, receipt.queued, SETTLE_SECONDS)
            left = len(missing)
        else:
            left = expected - (self.printer.wait_settled(settled_before + expected, SETTLE_SECONDS) - settled_before)
        if left > 0:
            self.say(f"  ({left} event(s) still on their way: their lines print when they settle)")
        return receipt


def _answer_lines(stack: LocalStack, source: str, status: int, json_body: Any, text: str, sent_ms: int) -> Receipt:
    """The receipt of an answer (``json_body`` when it was JSON); its lines: the answer and what it settled at once
    (duplicates, events settled on arrival, a refused request)."""
    receipt = Receipt(source, status, sent_ms)
    if isinstance(json_body, dict) and isinstance(json_body.get("accepted"), list):
        receipt.accepted = [str(event_id) for event_id in json_body["accepted"]]
        receipt.duplicates = [str(event_id) for event_id in json_body.get("duplicates") or []]
        receipt.settled = {str(k): [str(i) for i in v] for k, v in (json_body.get("settled") or {}).items()}
    shown = json.dumps(json_body) if json_body is not None else " ".join(text.split())
    receipt.lines.append(f"  receive      {status} {_cut(shown, ANSWER_WIDTH).rstrip()}")
    for event_id in receipt.duplicates:
        receipt.lines.append(outcome_line("duplicate", source, [], "already received: not queued again", event_id))
    settled_ids = {event_id for ids in receipt.settled.values() for event_id in ids}
    for item in _table_items(stack, source, settled_ids) if settled_ids else []:
        receipt.lines.append(_event_line(item, source, str(item["event_id"]), str(item["contact_id"])))
    if 400 <= status < 500:
        for item in _refused_requests(stack, source, sent_ms):
            detail = f"{item.get('http_status')} {item.get('code')}: {item.get('reason')}"
            request = f"request {str(item['pk']).removeprefix('REQUEST#')}"
            receipt.lines.append(outcome_line("refused", source, [], detail, request))
    return receipt


class ConsoleStack(LocalStack):
    """``make run``'s stack: once ``reporting`` (after the demo), every request the routes receive prints as the
    demo's do — a heading, the answer, the lines it settled at once — and its events' lines follow as they settle."""

    def __init__(self, options: StackOptions, printer: OutcomePrinter) -> None:
        super().__init__(options)
        self.printer = printer
        self.reporting = False

    def _invoke_receive(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not self.reporting or "rawPath" not in event:
            return super()._invoke_receive(event, context)
        sent_ms = int(time.time() * 1000)
        heading = [f"\n> POST {event['rawPath']} at {time.strftime('%H:%M:%S')}"]
        self.printer.hold()
        receipt: Receipt | None = None
        try:
            result = super()._invoke_receive(event, context)
            status, body = int(result.get("statusCode", 200)), str(result.get("body") or "")
            if result.get("isBase64Encoded"):
                body = base64.b64decode(body).decode(errors="replace")
            content_type = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}.get("content-type", "")
            parsed = json.loads(body) if content_type.startswith("application/json") and body else None
            source = str((event.get("pathParameters") or {}).get("source", "?"))
            receipt = _answer_lines(self, source, status, parsed, body, sent_ms)
            return result
        finally:
            self.printer.release(first=heading + (receipt.lines if receipt else []))


def run_demo(stack: LocalStack, printer: OutcomePrinter, say: Say = print) -> int:
    """Send the demo webhooks, each request's outcomes printed under it; how many events deliver settled."""
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
    say(HEADER)
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        demo = _Demo(stack, printer, client, say)

        def hubspot(what: str, events: Sequence[Mapping[str, Any]], secret: str = hubspot_secret) -> None:
            headers, body = hubspot_request(events, secret=secret, url=hubspot_url)
            demo.post(what, "/webhooks/hubspot", headers, body)

        def generic(what: str, payload: Mapping[str, Any]) -> None:
            headers, body = generic_request(payload, secret=generic_secret)
            demo.post(what, "/webhooks/generic", headers, body)

        hubspot("HubSpot batch: a new contact's id, email, phone and address (lifecyclestage is not mapped)", batch)
        hubspot("HubSpot retries an event it already delivered", batch[1:2])
        hubspot(
            "An older city change arrives late", [hubspot_event(contact, "city", "Evanston", occurred_at=now - 60_000)]
        )
        hubspot(
            "A contact with no Sphere customer id yet",
            [hubspot_event(1002, "email", "grace@example.com", occurred_at=now)],
        )
        malformed = {**hubspot_event(1001, "email", "ada@example.net", occurred_at=now), "occurredAt": "yesterday"}
        hubspot(
            "A HubSpot batch with one malformed element (refused alone)",
            [hubspot_event(1001, "phone", "+1 312 555 0199", occurred_at=now - 2000), malformed],
        )
        generic(
            "Generic webhook (Standard Webhooks signature)",
            {
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
            },
        )
        generic(
            "A business customer (Sphere refuses it)",
            {"id": "crm-43", "sphereCustomerId": BUSINESS_CUSTOMER, "email": "ops@acme.example"},
        )
        hubspot("A forged HubSpot signature (the request is refused)", batch[:1], secret="not-the-secret")
        if stack.crm is not None and os.environ.get("HUBSPOT_READ_MODE", "payload") != "payload":
            # HubSpot redacts a sensitive property: deliver reads the contact from HubSpot's API instead.
            record = {"customer_id": DEMO_CUSTOMER, "email": "ada@analytical.example"}
            stack.crm.put_record("hubspot", str(contact), record, modified_at_ms=now - 500)
            hubspot(
                "HubSpot redacts a sensitive email: the contact is read from HubSpot's API",
                [hubspot_event(contact, "email", "REDACTED", occurred_at=now - 1000)],
            )
        for source in VENDORS:
            if source in {"hubspot", "generic"}:
                continue
            kit = vendor(source)
            sample = kit.sample(secret=stack.secrets[kit.secret_parameter], base_url=stack.url, now_ms=now)
            named = kit.sample_expectation().crm_record
            if named is not None and stack.crm is not None:  # an ids-only event: deliver reads this record
                stack.crm.put_record(named[0], named[1], named[2], modified_at_ms=now - 500)
            expected = kit.sample_expectation().queued
            demo.post(
                f"{source}: the vendor's documented sample", sample.path, sample.headers, sample.body, expected=expected
            )
    return printer.settled
