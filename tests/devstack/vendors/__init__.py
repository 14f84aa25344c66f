"""Each CRM as the tests, the local stack and ``make events`` meet it: how it authenticates, what it sends, how it reads
our answer.

One module per source (``vendors/<module>.py`` exporting ``VENDOR``), listed in ``VENDORS``. The suites that run over
every source (wiring, hostile input, properties, chaos, ``make run``'s secrets, ``events/``) read this registry, so a
new source plugs into all of them by adding its kit here.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from webhook_adapter.model import ContactField

__all__ = [
    "VENDORS",
    "CrmRecordRef",
    "SampleExpectation",
    "Vendor",
    "VendorRequest",
    "json_error_message",
    "vendor",
]

_MODULES = {
    "hubspot": "devstack.vendors.hubspot",
    "generic": "devstack.vendors.generic",
    "pipedrive": "devstack.vendors.pipedrive",
    "hubspot-workflow": "devstack.vendors.hubspot_workflow",
    "close": "devstack.vendors.close",
    "dataverse": "devstack.vendors.dataverse",
    "salesforce": "devstack.vendors.salesforce",
    "attio": "devstack.vendors.attio",
    "keap": "devstack.vendors.keap",
    "zoho": "devstack.vendors.zoho",
}


@dataclass(frozen=True)
class VendorRequest:
    """One webhook request as the CRM sends it to ``POST /webhooks/{source}``."""

    source: str
    headers: Mapping[str, str]
    body: bytes
    query: str = ""
    """The raw query string (Salesforce's endpoint token, Dataverse's ``code``), without ``?``."""

    @property
    def path(self) -> str:
        """Path and query, as posted to the gateway."""
        return f"/webhooks/{self.source}" + (f"?{self.query}" if self.query else "")

    def replace(self, **changes: object) -> VendorRequest:
        """A copy with some parts changed."""
        return VendorRequest(**{**self.__dict__, **changes})


@dataclass(frozen=True)
class SampleExpectation:
    """What the vendor's documented sample must produce: the contact, the PATCH body Sphere gets, the event ids."""

    contact_id: str
    customer_id: str
    patch: Mapping[str, object]
    event_ids: tuple[str, ...] = field(default_factory=tuple)
    """The sample's event ids, when they are fixed (a v1 Pipedrive event's id is a digest of its body)."""
    event_count: int = 0
    """How many events the sample queues for delivery, when ``event_ids`` cannot say."""
    crm_record: tuple[str, str, Mapping[str, str | None]] | None = None
    """The record the CRM holds for the sample, which deliver reads (ids-only sources such as Attio): the CRM's name
    on the read stand-in, the record id, and its values by contact field."""

    @property
    def queued(self) -> int:
        """How many events the sample queues for delivery."""
        return self.event_count or len(self.event_ids)


@dataclass(frozen=True)
class CrmRecordRef:
    """Where deliver reads a contact whose events name the record only: the CRM's record on the read stand-in."""

    crm: str
    """The CRM's name on the read stand-in (``devstack.crm_standin``), as ``put_record`` takes it."""
    record_id: str
    """The record's id in that CRM, as the read's path names it."""
    fields: frozenset[ContactField]
    """The contact fields the CRM record holds and deliver reads (the customer id among them)."""


class Vendor(Protocol):
    """A CRM's side of one source."""

    source: str
    """The route name, as in ``SOURCE_MODULES``."""
    secret_parameter: str
    """The template parameter of the source's secret (``SalesforceSecretArn``)."""
    secret_variable: str
    """The variable that overrides the local secret for ``make run`` and ``make events``."""
    local_secret: str
    """The secret's value on the local stack."""
    parameters: Mapping[str, str]
    """Local values of the source's other template parameters (allow-lists, custom field keys)."""
    full_record: bool
    """Whether each request carries the record's every mapped field (else one changed field per event)."""
    fields: frozenset[ContactField]
    """The contact fields one ``change`` can carry (a Close contact has no address: its lead does; none when the
    events name the record only, whose fields ``record`` gives)."""

    def contact_id(self, contact: int) -> str:
        """The adapter's contact id for the CRM record numbered ``contact``."""

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        """The event id the adapter records for what ``change`` sent with these arguments (one event per request)."""

    def record(self, contact: int) -> CrmRecordRef | None:
        """Where deliver reads record ``contact``'s values, for a source whose events name the record only.

        ``None`` for a source whose events carry the values (``fields``): a test that changes the contact of a
        source with a record stores the record's new values there first, then sends ``change``, as the CRM does.
        """

    def change(
        self,
        contact: int,
        values: Mapping[ContactField, str | None],
        *,
        event_id: int,
        occurred_at_ms: int,
        secret: str,
        base_url: str,
    ) -> VendorRequest:
        """An authentic request: record ``contact`` now has ``values`` (``None``: cleared), as of ``occurred_at_ms``.

        A full-record vendor sends exactly these fields; ``event_id`` numbers the CRM's event (unique per request).
        """

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        """An authentic request about something the adapter does not deliver (another object, an unmapped field)."""

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        """Named variants of ``request`` to refuse as unauthenticated (401) or from a foreign account (403)."""

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        """Named authentic requests whose body is broken or hostile: each must get a 4xx, never a 5xx."""

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        """The vendor's documented sample (``tests/fixtures/<source>/``), test ids in, authenticated as it does."""

    def sample_expectation(self) -> SampleExpectation:
        """What ``sample`` must produce at Sphere."""

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the CRM counts this answer as delivered (and will not retry)."""

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        """The error message of an answer in the CRM's own format, or ``None`` when the answer is not in that format."""


def json_error_message(body: bytes) -> str | None:
    """The message of the adapter's JSON error answer (``{"error": {"code", "message"}}``), or ``None``."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def vendor(source: str) -> Vendor:
    """The kit of one source."""
    module = importlib.import_module(_MODULES[source])
    kit: Vendor = module.VENDOR
    return kit


VENDORS: tuple[str, ...] = tuple(_MODULES)
"""Every source with a kit, in registry order."""
