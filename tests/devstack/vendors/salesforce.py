"""Salesforce Outbound Messages as Salesforce sends them: SOAP 1.1 notifications posted to ``?token=<token>``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import ParseError, fromstring  # type: ignore[import-untyped]

from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.vendors import CrmRecordRef, SampleExpectation, VendorRequest
from webhook_adapter.model import ContactField

__all__ = [
    "FIXTURES",
    "FOREIGN_ORG",
    "ORG",
    "VENDOR",
    "SalesforceOrg",
    "notification",
    "outbound_message",
    "record_id",
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "salesforce"
ORG = "00D5e000000TestAAA"
"""The local org (18 characters), the one ``SalesforceOrganizationIds`` allows on the local stack."""
FOREIGN_ORG = "00D5e000000OtherAA"
CONTENT_TYPE = "text/xml; charset=utf-8"
_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
_OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
_FIELD = {
    ContactField.CUSTOMER_ID: "Sphere_Customer_Id__c",
    ContactField.EMAIL: "Email",
    ContactField.PHONE: "Phone",
    ContactField.MOBILE_PHONE: "MobilePhone",
    ContactField.CITY: "MailingCity",
    ContactField.STATE: "MailingState",
    ContactField.POSTAL_CODE: "MailingPostalCode",
    ContactField.COUNTRY: "MailingCountry",
}
"""Contact field to the Contact field Salesforce sends (the street is ``MailingStreet``, lines 1 and 2 together)."""


def _iso(ms: int) -> str:
    """Salesforce's xsd:dateTime: UTC, milliseconds, ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def record_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id with a key prefix (``003`` Contact, ``04l`` notification, ``006`` Opportunity)."""
    return f"{prefix}{number:015d}"


def _element(name: str, value: str | None) -> str:
    if value is None:
        return f'<sf:{name} xsi:nil="true"/>'
    return f"<sf:{name}>{escape(value)}</sf:{name}>"


def notification(
    notification_id: str, sobject_id: str, fields: Mapping[str, str | None], *, kind: str = "Contact"
) -> str:
    """One ``Notification``: its id and an sObject of type ``kind`` holding ``fields`` (``None``: ``xsi:nil``)."""
    elements = "".join(f"\n     {_element(name, value)}" for name, value in fields.items())
    return (
        f"\n   <Notification>\n    <Id>{notification_id}</Id>"
        f'\n    <sObject xsi:type="sf:{kind}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"\n     <sf:Id>{sobject_id}</sf:Id>{elements}\n    </sObject>\n   </Notification>"
    )


def outbound_message(notifications: list[str], *, org: str = ORG) -> bytes:
    """The SOAP envelope of an Outbound Message from ``org``, as Salesforce posts it (no session id sent)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        f' <soapenv:Body>\n  <notifications xmlns="{_OUTBOUND}">\n'
        f"   <OrganizationId>{org}</OrganizationId>\n"
        f"   <ActionId>{record_id('04k', 1)}</ActionId>\n"
        '   <SessionId xsi:nil="true"/>\n'
        f"   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/{org[:15]}</EnterpriseUrl>\n"
        f"   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/{org[:15]}</PartnerUrl>"
        + "".join(notifications)
        + "\n  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n"
    ).encode()


def _soap_body(body: bytes) -> Element | None:
    """The first element inside the SOAP Body of an answer, or ``None`` when the answer is not such XML."""
    try:
        root: Element = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException):
        return None
    found = root.find(f"{{{_SOAP}}}Body") if root.tag == f"{{{_SOAP}}}Envelope" else None
    return found[0] if found is not None and len(found) else None


class SalesforceOrg:
    """A Salesforce org sending Contact Outbound Messages from a record-triggered Flow."""

    source = "salesforce"
    secret_parameter = "SalesforceSecretArn"
    secret_variable = "SALESFORCE_ENDPOINT_TOKEN"
    local_secret = "local-salesforce-endpoint-token"
    parameters: Mapping[str, str] = {"SalesforceOrganizationIds": ORG}
    full_record = True
    fields = frozenset(ContactField)

    def contact_id(self, contact: int) -> str:
        return f"{ORG[:15]}:{record_id('003', contact)}"

    def event_id(self, contact: int, event_id: int, occurred_at_ms: int) -> str:
        return record_id("04l", event_id)

    def record(self, contact: int) -> CrmRecordRef | None:
        return None  # the events carry the values

    def _post(self, body: bytes, *, secret: str) -> VendorRequest:
        return VendorRequest(
            self.source, {"Content-Type": CONTENT_TYPE, "SOAPAction": '""'}, body, f"token={quote(secret)}"
        )

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
        """One Contact notification with exactly ``values``.

        Lines 1 and 2 travel together as ``MailingStreet`` (line 1, a new line, line 2): a line 1 alone also
        clears line 2, and a line 2 without a line 1 cannot be told apart (Salesforce has one street field).
        """
        fields: dict[str, str | None] = {"LastModifiedDate": _iso(occurred_at_ms)}
        if ContactField.LINE1 in values or ContactField.LINE2 in values:
            lines = [line for line in (values.get(ContactField.LINE1), values.get(ContactField.LINE2)) if line]
            fields["MailingStreet"] = "\n".join(lines) or None
        fields |= {_FIELD[field]: value for field, value in values.items() if field in _FIELD}
        body = outbound_message([notification(record_id("04l", event_id), record_id("003", contact), fields)])
        return self._post(body, secret=secret)

    def irrelevant(self, *, event_id: int, occurred_at_ms: int, secret: str, base_url: str) -> VendorRequest:
        fields = {"LastModifiedDate": _iso(occurred_at_ms), "StageName": "Closed Won"}
        item = notification(record_id("04l", event_id), record_id("006", 1), fields, kind="Opportunity")
        return self._post(outbound_message([item]), secret=secret)

    def forged(self, request: VendorRequest) -> Mapping[str, VendorRequest]:
        return {
            "another endpoint token": request.replace(query="token=not-the-endpoint-token"),
            "no endpoint token": request.replace(query=""),
            "an empty endpoint token": request.replace(query="token="),
            "the token twice": request.replace(query=f"{request.query}&token=not-the-endpoint-token"),
            "a foreign organization": request.replace(body=request.body.replace(ORG.encode(), FOREIGN_ORG.encode())),
        }

    def malformed(self, *, secret: str, base_url: str, occurred_at_ms: int) -> Mapping[str, VendorRequest]:
        good = self.change(
            1,
            {ContactField.EMAIL: "ada@example.com"},
            event_id=1,
            occurred_at_ms=occurred_at_ms,
            secret=secret,
            base_url=base_url,
        ).body
        laughs = (
            b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
            b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n'
        )
        external = b'<?xml version="1.0"?>\n<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        bodies = {
            "not XML": b'{"notifications": []}',
            "truncated": good[: len(good) // 2],
            "billion laughs": laughs + good.split(b"\n", 1)[1].replace(b"ada@example.com", b"&lol3;"),
            "an external entity": external + good.split(b"\n", 1)[1].replace(b"ada@example.com", b"&xxe;"),
            "a DTD": b'<?xml version="1.0"?>\n<!DOCTYPE Envelope SYSTEM "http://example.com/soap.dtd">\n'
            + good.split(b"\n", 1)[1],
            "a SOAP envelope without notifications": good.replace(b"<notifications ", b"<other ").replace(
                b"</notifications>", b"</other>"
            ),
            "no notification": outbound_message([]),
            "nested 10,000 levels deep": good.replace(b"ada@example.com", b"<a>" * 10_000 + b"</a>" * 10_000),
            "empty": b"",
        }
        return {name: self._post(body, secret=secret) for name, body in bodies.items()}

    def sample(self, *, secret: str, base_url: str, now_ms: int) -> VendorRequest:
        """The documented Contact message (``outbound-message-contact.xml``), test ids in, the mapped fields added."""
        text = (FIXTURES / "outbound-message-contact.xml").read_text(encoding="utf-8")
        changed = _iso(now_ms)
        added = "".join(
            f"\n     <sf:{name}>{value}</sf:{name}>"
            for name, value in (
                ("Email", "ada.lovelace@example.com"),
                ("MailingCity", "Chicago"),
                ("MailingCountry", "United States"),
                ("MailingCountryCode", "US"),
                ("MailingPostalCode", "60606"),
                ("MailingState", "Illinois"),
                ("MailingStateCode", "IL"),
                ("MailingStreet", "233 S Wacker Dr\nSuite 3300"),
                ("MobilePhone", "+1 312 555 0142"),
                ("Sphere_Customer_Id__c", SEED_INDIVIDUAL_ID),
            )
        )
        for documented, ours in (
            ("00Do0000000xxxxxxx", ORG),
            ("04ko0000000xxxxxxx", record_id("04k", 1)),
            ("00Do0000xxxxxxx!etc", f"{ORG[:15]}!local-session"),
            ("00Do0000xxxxxxx", ORG[:15]),
            ("04lo0000000xxxxxxx", SAMPLE_NOTIFICATION),
            ("003o000000xxxxxxxxx", SAMPLE_CONTACT),
            ("<sf:LastModifiedDate>2014-06-26T00:05:38.000Z", f"<sf:LastModifiedDate>{changed}"),
            ("<sf:LastName>dude</sf:LastName>", f"<sf:LastName>dude</sf:LastName>{added}"),
        ):
            text = text.replace(documented, ours)
        return self._post(text.encode(), secret=secret)

    def sample_expectation(self) -> SampleExpectation:
        return SampleExpectation(
            contact_id=f"{ORG[:15]}:{SAMPLE_CONTACT}",
            customer_id=SEED_INDIVIDUAL_ID,
            patch={
                "email": "ada.lovelace@example.com",
                "phone": "+13125550142",
                "address": {
                    "line1": "233 S Wacker Dr",
                    "line2": "Suite 3300",
                    "city": "Chicago",
                    "state": "IL",
                    "postalCode": "60606",
                    "country": "USA",
                },
            },
            event_ids=(SAMPLE_NOTIFICATION,),
        )

    def acknowledged(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """Salesforce's test: HTTP 200 and ``notificationsResponse`` with ``Ack`` true; anything else is redelivered."""
        answer = _soap_body(body)
        if status != 200 or answer is None or answer.tag != f"{{{_OUTBOUND}}}notificationsResponse":
            return False
        return (answer.findtext(f"{{{_OUTBOUND}}}Ack") or "").strip() == "true"

    def refusal(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        """The ``faultstring`` of a SOAP fault, or ``None`` when the answer is no fault."""
        fault = _soap_body(body)
        if fault is None or fault.tag != f"{{{_SOAP}}}Fault":
            return None
        return fault.findtext("faultstring")


SAMPLE_NOTIFICATION = record_id("04l", 4201)
SAMPLE_CONTACT = record_id("003", 4201)

VENDOR = SalesforceOrg()
