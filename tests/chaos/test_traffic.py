"""The chaos clients send an ids-only source's event as its CRM does: the record is updated first, then the event.

Checked without the stack: the webhooks go to a loopback endpoint that acknowledges each one and, as deliver
would, reads the record the event names from the CRM read stand-in with the adapter's own readers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chaos.traffic import Change, ChaosContact, CrmClient, event_counter, kit_values
from devstack.crm_shapes import KEAP_CUSTOMER_ID_FIELD_ID, Crm
from devstack.crm_standin import DEFAULT_TOKENS, CrmStandIn
from devstack.resources import LOCAL_SECRETS
from devstack.vendors import VENDORS, vendor
from webhook_adapter.model import ContactField
from webhook_adapter.readers.attio import AttioReadConfig, AttioReader
from webhook_adapter.readers.keap import KeapReadConfig, KeapReader
from webhook_adapter.records import CrmRecord

ATTIO_CONTACT = ChaosContact(7, "attio", "customer_chaos000007")
KEAP_CONTACT = ChaosContact(8, "keap", "customer_chaos000008")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Readers:
    """Reads a contact of either source the way deliver does."""

    attio: AttioReader
    keap: KeapReader

    def read(self, source: str, contact_id: str) -> CrmRecord | None:
        return (self.attio if source == "attio" else self.keap).read(contact_id)


@dataclass
class Seen:
    """What the endpoint found in the CRM when each event arrived: the source, the event's time, the record."""

    arrivals: list[tuple[str, int | None, CrmRecord | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def crm() -> Iterator[CrmStandIn]:
    with CrmStandIn(port=0) as standin:
        yield standin


@pytest.fixture
def readers(crm: CrmStandIn) -> Iterator[Readers]:
    attio = AttioReader.with_token(
        AttioReadConfig(api_url=crm.base_url, api_token_secret_id="x"),
        lambda _refresh: DEFAULT_TOKENS[Crm.ATTIO],
        connect_timeout=1,
        timeout=2,
    )
    keap = KeapReader.with_token(
        KeapReadConfig(
            api_url=crm.base_url, api_token_secret_id="x", customer_id_field_id=str(KEAP_CUSTOMER_ID_FIELD_ID)
        ),
        lambda _refresh: DEFAULT_TOKENS[Crm.KEAP],
        connect_timeout=1,
        timeout=2,
    )
    yield Readers(attio, keap)
    attio.close()
    keap.close()


def keap_event_time(body: dict[str, Any]) -> int:
    """The change time a Keap hook announces (its ``timestamp``), epoch milliseconds."""
    moment = datetime.fromisoformat(body["object_keys"][0]["timestamp"])
    return (moment - EPOCH) // timedelta(milliseconds=1)


@pytest.fixture
def endpoint(readers: Readers) -> Iterator[tuple[str, Seen]]:
    """A webhook endpoint on loopback: reads the named record at once, answers 200."""
    seen = Seen()
    contact_ids = {
        f"/webhooks/{contact.source}": (contact.source, contact.contact_id) for contact in (ATTIO_CONTACT, KEAP_CONTACT)
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            source, contact_id = contact_ids[self.path.split("?")[0]]
            at = keap_event_time(body) if source == "keap" else None
            record = readers.read(source, contact_id)
            with seen.lock:
                seen.arrivals.append((source, at, record))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def newest(changes: list[Change], customer_id: str) -> tuple[int, dict[ContactField, str | None]]:
    """The newest change time of a customer, and each field's newest value as the CRM record holds it."""
    latest: dict[str, Change] = {}
    for change in changes:
        if change.customer_id == customer_id and (
            change.field not in latest or change.occurred_at > latest[change.field].occurred_at
        ):
            latest[change.field] = change
    values: dict[ContactField, str | None] = {ContactField.CUSTOMER_ID: customer_id}
    for change in latest.values():
        values |= kit_values(change.field, change.value)
    return max(change.occurred_at for change in latest.values()), values


def test_every_kit_says_whether_its_events_name_the_record_only() -> None:
    # Given every vendor kit
    for source in VENDORS:
        kit = vendor(source)
        record = kit.record(1)

        # Then a kit whose events carry no field names the CRM record to read, and one whose events carry them none
        assert (record is None) == bool(kit.fields), source
        if record is not None:
            assert ContactField.CUSTOMER_ID in record.fields
            assert kit.record(2) != record, f"{source}: two contacts share a record"


def test_an_ids_only_event_leaves_after_its_record_holds_the_change(
    crm: CrmStandIn, readers: Readers, endpoint: tuple[str, Seen]
) -> None:
    # Given a client owning an Attio and a Keap contact, re-sending and reordering a third of its events
    url, seen = endpoint
    contacts = [ChaosContact(7, "attio", ATTIO_CONTACT.customer_id), ChaosContact(8, "keap", KEAP_CONTACT.customer_id)]
    client = CrmClient(
        contacts,
        seed=5,
        events=60,
        duplicate_share=0.3,
        reorder_share=0.3,
        url=url,
        secrets=LOCAL_SECRETS,
        backpressure=lambda: None,
        event_ids=event_counter(),
        crm=crm,
    )

    # When it sends its share
    traffic = client.run()

    # Then every event was acknowledged, duplicates and older changes sent after newer ones among them
    assert traffic.failed_requests == []
    assert traffic.duplicate_events_sent > 0
    assert traffic.reordered_events_sent > 0
    assert len(seen.arrivals) == traffic.requests_sent

    # And each event found its record in the CRM, never older than the change it announces (Keap dates its events)
    assert all(record is not None for _, _, record in seen.arrivals)
    keap_arrivals = [(at, record) for source, at, record in seen.arrivals if source == "keap"]
    assert keap_arrivals
    assert all(record is not None and at is not None and record.modified_at >= at for at, record in keap_arrivals)

    # And at the end deliver reads each contact's newest values (customer id included), dated by its newest change
    for contact in contacts:
        record = readers.read(contact.source, contact.contact_id)
        assert record is not None
        changed_at, values = newest(traffic.changes, contact.customer_id)
        assert {name: value for name, value in record.values.items() if value is not None} == values
        assert record.modified_at == changed_at
