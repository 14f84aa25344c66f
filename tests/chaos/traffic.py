"""The CRM side of the chaos load: contacts whose fields change, sent by every source's CRM.

HubSpot sends batches of one-property events and the generic source JSON contacts, built here; every other
source's requests come from its vendor kit (``devstack.vendors``), so a new source joins the load by its kit.
A kit whose events name the record only (Attio, Keap: ``Vendor.record``) is sent to as its CRM does: each
change first updates the contact's record on the CRM read stand-in (its every current value, as of the change),
then the kit's event goes out, and deliver reads the values from there.

Each client owns a share of the contacts (a contact's requests leave in one order, as from one
CRM) and sends, from its own seeded random source: a contact's first request (its Sphere
customer id and every field), then changes of one field at a time; re-sends of requests it
already sent (duplicates), at once or much later; and pairs of changes of a field sent newest
first (the older one is the reordered one). It retries a request answered 5xx or not at all,
as a CRM does. ``Traffic`` is the ledger of what was sent and what the adapter answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import TYPE_CHECKING, Any

import httpx

from devstack.crm import generic_request, hubspot_event, hubspot_request
from devstack.vendors import CrmRecordRef, vendor
from webhook_adapter.model import ContactField

if TYPE_CHECKING:
    from devstack.crm_standin import CrmStandIn

__all__ = [
    "FIELDS",
    "PORTAL",
    "TIME_BASE_MS",
    "Change",
    "ChaosContact",
    "CrmClient",
    "CrmRequest",
    "Traffic",
    "event_counter",
    "sphere_value",
]

PORTAL = 62515
FIELDS = ("email", "phone", "address")
"""The Sphere request fields the load changes (HubSpot's ``city`` changes the address)."""
POSTAL_CODE = "10117"
COUNTRY = "DEU"
MAX_SENDS = 6
"""Attempts of one request (answered 5xx or not at all) before the client gives up on it."""
MAX_HUBSPOT_BATCH = 4
TIME_BASE_MS = 1_700_000_000_000
"""CRM change times start here (November 2023): in the past, so no source refuses them."""


def sphere_value(field_name: str, contact_number: int, version: int) -> Any:
    """The value a field has at a version, as Sphere receives it (already normalized)."""
    if field_name == "email":
        return f"chaos-{contact_number}-{version}@example.com"
    if field_name == "phone":
        index = contact_number * 100 + version
        return f"+1415{200 + index // 10_000:03d}{index % 10_000:04d}"
    return {
        "line1": f"Chaosweg {contact_number}",
        "city": f"City {version}",
        "postalCode": POSTAL_CODE,
        "country": COUNTRY,
    }


@dataclass(frozen=True)
class Change:
    """One CRM change of one Sphere request field of a contact: the value it sets and when it happened."""

    customer_id: str
    field: str
    value: Any
    occurred_at: int
    event_id: str


@dataclass
class ChaosContact:
    """A CRM contact mapped to a Sphere customer; its clock orders its changes."""

    number: int
    source: str
    customer_id: str
    started: bool = False
    clock: int = 0
    versions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))

    @property
    def record(self) -> CrmRecordRef | None:
        """Where deliver reads this contact's values, when its source's events name the record only."""
        if self.source in {"hubspot", "generic"}:
            return None
        return vendor(self.source).record(self.number)

    @property
    def fields(self) -> tuple[str, ...]:
        """The Sphere request fields this contact's CRM record carries (a Close contact has no address)."""
        if self.source in {"hubspot", "generic"}:
            return FIELDS
        kit, record = vendor(self.source), self.record
        carried = kit.fields or (record.fields if record is not None else frozenset())
        return tuple(name for name in FIELDS if set(kit_values(name, sphere_value(name, 0, 0))) <= carried)

    @property
    def changed_at(self) -> int:
        """When this contact last changed in its CRM (its clock's last tick)."""
        return TIME_BASE_MS + self.number * 1_000_000 + self.clock

    @property
    def contact_id(self) -> str:
        """The contact's id as the adapter keys it."""
        if self.source == "hubspot":
            return f"{PORTAL}:{self.number}"
        if self.source == "generic":
            return f"chaos-{self.number}"
        return vendor(self.source).contact_id(self.number)

    def tick(self) -> int:
        """The next CRM change time of this contact."""
        self.clock += 1
        return self.changed_at

    def record_values(self) -> dict[str, str | None]:
        """The CRM record's every current value, by contact field: the customer id and each field's newest version."""
        values: dict[str, str | None] = {ContactField.CUSTOMER_ID.value: self.customer_id}
        for name in self.fields:
            if self.versions[name]:
                sent = kit_values(name, sphere_value(name, self.number, self.versions[name]))
                values |= {contact_field.value: value for contact_field, value in sent.items()}
        return values

    def next_value(self, field_name: str) -> tuple[int, Any]:
        """A new version of a field and its value."""
        self.versions[field_name] += 1
        version = self.versions[field_name]
        return version, sphere_value(field_name, self.number, version)


def kit_values(field_name: str, value: Any) -> dict[ContactField, str | None]:
    """A Sphere request field's value as the contact fields a vendor kit sends."""
    if field_name == "email":
        return {ContactField.EMAIL: value}
    if field_name == "phone":
        return {ContactField.PHONE: value}
    return {
        ContactField.LINE1: value["line1"],
        ContactField.CITY: value["city"],
        ContactField.POSTAL_CODE: value["postalCode"],
        ContactField.COUNTRY: value["country"],
    }


@dataclass(frozen=True)
class KitChange:
    """What a vendor kit sends for one request: the record, its fields' values, the CRM's event number and time."""

    contact: int
    values: dict[ContactField, str | None]
    event_number: int
    occurred_at: int


@dataclass
class CrmRequest:
    """One webhook request: HubSpot's event list, a generic payload, or a kit's change, and the changes it carries."""

    source: str
    event_ids: tuple[str, ...]
    changes: tuple[Change, ...]
    hubspot_events: list[dict[str, Any]] = field(default_factory=list)
    generic_payload: dict[str, Any] = field(default_factory=dict)
    kit_change: KitChange | None = None

    def signed(self, url: str, secrets: dict[str, str]) -> tuple[str, dict[str, str], bytes]:
        """Path, headers and body, signed now (a re-send is signed again, as a CRM's retry is)."""
        if self.kit_change is not None:
            kit, sent = vendor(self.source), self.kit_change
            request = kit.change(
                sent.contact,
                sent.values,
                event_id=sent.event_number,
                occurred_at_ms=sent.occurred_at,
                secret=secrets[kit.secret_parameter],
                base_url=url,
            )
            return request.path, dict(request.headers), request.body
        if self.source == "hubspot":
            headers, body = hubspot_request(
                self.hubspot_events, secret=secrets["HubSpotSecretArn"], url=f"{url}/webhooks/hubspot"
            )
            return "/webhooks/hubspot", headers, body
        headers, body = generic_request(
            self.generic_payload, secret=secrets["GenericSecretArn"], msg_id=self.event_ids[0]
        )
        return "/webhooks/generic", headers, body


@dataclass
class Traffic:
    """What the clients sent and what the adapter answered (merged from every client)."""

    requests_sent: int = 0
    events_sent: int = 0
    duplicate_events_sent: int = 0
    reordered_events_sent: int = 0
    retried_sends: int = 0
    failed_requests: list[str] = field(default_factory=list)
    accepted: set[tuple[str, str]] = field(default_factory=set)
    answered_duplicate: int = 0
    changes: list[Change] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, other: Traffic) -> None:
        """Merge one client's ledger into this one."""
        with self.lock:
            self.requests_sent += other.requests_sent
            self.events_sent += other.events_sent
            self.duplicate_events_sent += other.duplicate_events_sent
            self.reordered_events_sent += other.reordered_events_sent
            self.retried_sends += other.retried_sends
            self.failed_requests += other.failed_requests
            self.accepted |= other.accepted
            self.answered_duplicate += other.answered_duplicate
            self.changes += other.changes


type Backpressure = Callable[[], None]
"""Called before each request: blocks while the queue holds too many messages (drain while sending)."""


class CrmClient:
    """One CRM client: its contacts, its seeded random source, its share of the events."""

    def __init__(
        self,
        contacts: list[ChaosContact],
        *,
        seed: int,
        events: int,
        duplicate_share: float,
        reorder_share: float,
        url: str,
        secrets: dict[str, str],
        backpressure: Backpressure,
        event_ids: Callable[[], int],
        crm: CrmStandIn,
    ) -> None:
        self.contacts = contacts
        self.random = Random(seed)
        self.budget = events
        self.duplicate_share = duplicate_share
        # A pair sends one reordered event per two new ones: pairs at this rate make reordered ~ reorder_share.
        self.pair_share = 2 * reorder_share / (1 - reorder_share) if reorder_share < 1 else 1.0
        self.url = url
        self.secrets = secrets
        self.backpressure = backpressure
        self.event_ids = event_ids
        self.crm = crm
        """The CRMs' record-read stand-in: where a change of a contact whose events name the record only lands."""
        self.traffic = Traffic()
        self.sent: list[CrmRequest] = []
        self.older: list[tuple[ChaosContact, Change]] = []
        self.kit_numbers: dict[str, int] = {}
        """A kit's event id to the number it was made from (a kit builds its request from the number)."""

    def run(self) -> Traffic:
        """Send until the share of events is spent (and every held-back older change is out)."""
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while self.traffic.events_sent < self.budget or self.older:
                self.backpressure()
                request, duplicate, reordered = self._next_request()
                self._send(http, request, duplicate=duplicate, reordered=reordered)
        return self.traffic

    def _next_request(self) -> tuple[CrmRequest, bool, bool]:
        draw = self.random.random()
        if self.sent and draw < self.duplicate_share and self.traffic.events_sent < self.budget:
            at_once = self.random.random() < 0.5
            earlier = self.sent[-1] if at_once else self.random.choice(self.sent)
            return earlier, True, False
        if self.older and (self.random.random() < 0.3 or self.traffic.events_sent >= self.budget):
            contact, change = self.older.pop(self.random.randrange(len(self.older)))
            return self._change_request(contact, [change]), False, True
        contact = self.random.choice(self.contacts)
        if not contact.started:
            return self._first_request(contact), False, False
        if contact.source == "hubspot":
            others = [other for other in self.contacts if other.source == "hubspot" and other.started]
            picked = self.random.sample(others, min(len(others), self.random.randrange(MAX_HUBSPOT_BATCH)))
            batch = {member.number: member for member in [contact, *picked]}
            changes = [(member, self._new_change(member)) for member in batch.values()]
            return self._hubspot_request(changes), False, False
        return self._change_request(contact, [self._new_change(contact)]), False, False

    def _new_change(self, contact: ChaosContact) -> Change:
        """A change of a random field; sometimes a newer one goes first and its older twin is held back.

        The record an ids-only contact's CRM holds moves on at once, to the newer value (both changes happened);
        the older twin's event, sent later, finds it there still (or newer).
        """
        field_name = self.random.choice(contact.fields)
        if self.random.random() < self.pair_share:
            older_at, newer_at = contact.tick(), contact.tick()
            _, older_value = contact.next_value(field_name)
            _, newer_value = contact.next_value(field_name)
            self._store_record(contact)
            self.older.append((contact, self._change(contact, field_name, older_value, older_at)))
            return self._change(contact, field_name, newer_value, newer_at)
        _, value = contact.next_value(field_name)
        change = self._change(contact, field_name, value, contact.tick())
        self._store_record(contact)
        return change

    def _store_record(self, contact: ChaosContact) -> None:
        """The CRM updates the contact's record before it sends the event (none for events that carry values)."""
        record = contact.record
        if record is not None:
            self.crm.put_record(
                record.crm, record.record_id, contact.record_values(), modified_at_ms=contact.changed_at
            )

    def _change(self, contact: ChaosContact, field_name: str, value: Any, occurred_at: int) -> Change:
        number = self.event_ids()
        if contact.source == "hubspot":
            event_id = str(number)
        elif contact.source == "generic":
            event_id = f"msg_chaos_{number}"
        else:
            event_id = vendor(contact.source).event_id(contact.number, number, occurred_at)
            self.kit_numbers[event_id] = number
        return Change(contact.customer_id, field_name, value, occurred_at, event_id)

    def _first_request(self, contact: ChaosContact) -> CrmRequest:
        """The contact's Sphere customer id and a value of every field, in one request."""
        contact.started = True
        at = contact.tick()
        values = {name: contact.next_value(name)[1] for name in contact.fields}
        self._store_record(contact)
        if contact.source not in {"hubspot", "generic"}:
            number = self.event_ids()
            event_id = vendor(contact.source).event_id(contact.number, number, at)
            changes = tuple(Change(contact.customer_id, name, values[name], at, event_id) for name in contact.fields)
            sent: dict[ContactField, str | None] = {ContactField.CUSTOMER_ID: contact.customer_id}
            for name in contact.fields:
                sent |= kit_values(name, values[name])
            kit_change = KitChange(contact.number, sent, number, at)
            return CrmRequest(contact.source, (event_id,), changes, kit_change=kit_change)
        if contact.source == "generic":
            event_id = f"msg_chaos_{self.event_ids()}"
            changes = tuple(Change(contact.customer_id, name, values[name], at, event_id) for name in FIELDS)
            payload = {
                "id": contact.contact_id,
                "updatedAt": at,
                "sphereCustomerId": contact.customer_id,
                "email": values["email"],
                "phone": values["phone"],
                "address": values["address"],
            }
            return CrmRequest("generic", (event_id,), changes, generic_payload=payload)
        address = values["address"]
        properties = [
            ("sphere_customer_id", contact.customer_id),
            ("email", values["email"]),
            ("phone", values["phone"]),
            ("address", address["line1"]),
            ("city", address["city"]),
            ("zip", address["postalCode"]),
            ("country", address["country"]),
        ]
        events = [
            hubspot_event(contact.number, name, value, occurred_at=at, event_id=self.event_ids(), portal_id=PORTAL)
            for name, value in properties
        ]
        by_property = {name: str(event["eventId"]) for (name, _), event in zip(properties, events, strict=True)}
        changes = (
            Change(contact.customer_id, "email", values["email"], at, by_property["email"]),
            Change(contact.customer_id, "phone", values["phone"], at, by_property["phone"]),
            Change(contact.customer_id, "address", address, at, by_property["city"]),
        )
        return CrmRequest("hubspot", tuple(by_property.values()), changes, hubspot_events=events)

    def _change_request(self, contact: ChaosContact, changes: list[Change]) -> CrmRequest:
        if contact.source == "hubspot":
            return self._hubspot_request([(contact, change) for change in changes])
        (change,) = changes
        if contact.source != "generic":
            number = self.kit_numbers[change.event_id]
            kit_change = KitChange(contact.number, kit_values(change.field, change.value), number, change.occurred_at)
            return CrmRequest(contact.source, (change.event_id,), (change,), kit_change=kit_change)
        payload = {"id": contact.contact_id, "updatedAt": change.occurred_at, change.field: change.value}
        return CrmRequest("generic", (change.event_id,), (change,), generic_payload=payload)

    def _hubspot_request(self, changes: list[tuple[ChaosContact, Change]]) -> CrmRequest:
        events = []
        for contact, change in changes:
            name, value = (change.field, change.value) if change.field != "address" else ("city", change.value["city"])
            events.append(
                hubspot_event(
                    contact.number,
                    name,
                    value,
                    occurred_at=change.occurred_at,
                    event_id=int(change.event_id),
                    portal_id=PORTAL,
                )
            )
        return CrmRequest(
            "hubspot",
            tuple(change.event_id for _, change in changes),
            tuple(change for _, change in changes),
            hubspot_events=events,
        )

    def _send(self, http: httpx.Client, request: CrmRequest, *, duplicate: bool, reordered: bool) -> None:
        traffic = self.traffic
        events = len(request.event_ids)
        traffic.requests_sent += 1
        traffic.events_sent += events
        if duplicate:
            traffic.duplicate_events_sent += events
        else:
            self.sent.append(request)
            traffic.changes += request.changes
        if reordered:
            traffic.reordered_events_sent += events
        for attempt in range(MAX_SENDS):
            if attempt:
                traffic.retried_sends += 1
            path, headers, body = request.signed(self.url, self.secrets)
            try:
                answer = http.post(path, headers=headers, content=body)
            except httpx.TransportError:
                continue
            if answer.status_code < 500:
                break
        else:
            traffic.failed_requests.append(f"{request.source} {request.event_ids}: no 2xx in {MAX_SENDS} sends")
            return
        if request.kit_change is not None:
            # A kit's vendor may not be answered with a receipt (Salesforce's Ack): acknowledged means every event
            # of the request is the adapter's, new or already known.
            if not vendor(request.source).acknowledged(answer.status_code, answer.headers, answer.content):
                traffic.failed_requests.append(f"{request.source} {request.event_ids}: {answer.status_code}")
                return
            traffic.accepted |= {(request.source, event_id) for event_id in request.event_ids}
            return
        if answer.status_code != 202:
            traffic.failed_requests.append(f"{request.source} {request.event_ids}: {answer.status_code} {answer.text}")
            return
        receipt = answer.json()
        traffic.accepted |= {(request.source, event_id) for event_id in receipt["accepted"]}
        traffic.answered_duplicate += len(receipt["duplicates"])
        answered = set(receipt["accepted"]) | set(receipt["duplicates"])
        if answered != set(request.event_ids):
            traffic.failed_requests.append(f"{request.source} {request.event_ids}: answered for {sorted(answered)}")


def event_counter() -> Callable[[], int]:
    """A thread-safe counter of event ids, unique across the clients."""
    lock = threading.Lock()
    last = [0]

    def next_id() -> int:
        with lock:
            last[0] += 1
            return last[0]

    return next_id
