"""Salesforce source: endpoint token, org allow-list, defused SOAP parsing into events, and SOAP answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from devstack.vendors.salesforce import notification, outbound_message, record_id
from webhook_adapter.errors import CredentialsError, ForbiddenSender, InvalidPayload, UnsupportedMediaType
from webhook_adapter.model import ContactField, SourceEvent, Status
from webhook_adapter.sources.base import MAX_VALUE_CHARS, WebhookRequest
from webhook_adapter.sources.salesforce import ACK, MAX_XML_DEPTH, SalesforceConfig, SalesforceSource, build

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"
NOW = 1_700_000_000.0
NOW_MS = 1_700_000_000_000
URL = "https://hooks.example.test/webhooks/salesforce"
TOKEN = "sf-endpoint-token-3c9d"
OTHER_TOKEN = "sf-rotated-endpoint-token-77aa"
ORG = "00D5e000000TestAAA"
ORG15 = ORG[:15]
PLANTED = "planted-5d2e-value"
"""A recognisable value that must never come back in an error message."""
CHANGED = "2024-03-01T10:20:30.456Z"
CHANGED_MS = 1_709_288_430_456


def source(**config: Any) -> SalesforceSource:
    settings: dict[str, Any] = {"secret_id": "x", "organization_ids": ORG} | config
    return SalesforceSource(SalesforceConfig(**settings))


def request(body: bytes, *, query: str = f"token={TOKEN}", content_type: str | None = "text/xml") -> WebhookRequest:
    headers = {} if content_type is None else {"content-type": content_type}
    url = URL + (f"?{query}" if query else "")
    return WebhookRequest(source="salesforce", method="POST", url=url, headers=headers, body=body, received_at=NOW)


def contact(fields: dict[str, str | None], *, number: int = 1, contact_id: int = 7) -> str:
    """A Contact notification changed at ``CHANGED`` unless ``fields`` says otherwise."""
    return notification(record_id("04l", number), record_id("003", contact_id), {"LastModifiedDate": CHANGED} | fields)


def parse(*notifications: str, org: str = ORG, **config: Any) -> list[SourceEvent]:
    return source(**config).parse(request(outbound_message(list(notifications), org=org)))


def parse_one(fields: dict[str, str | None], **config: Any) -> SourceEvent:
    [event] = parse(contact(fields), **config)
    return event


def fixture(name: str, *, org: str = ORG) -> bytes:
    """A documented sample with its org id replaced by the allowed test org (in its 15- or 18-character form)."""
    body = (FIXTURES / name).read_bytes()
    for documented in (b"00Do0000000xxxxxxx", b"00DQ0000000EB93"):
        body = body.replace(documented, org[: len(documented)].encode())
    return body


# ------------------------------------------------------------------------------------------ the vendor's samples


def test_the_documented_contact_sample_is_one_contact_event_without_mapped_fields() -> None:
    # Given the documented Contact message (first and last name only), from the allowed org
    [event] = source().parse(request(fixture("outbound-message-contact.xml")))

    # Then it is the notification's event, about the org's contact, at its LastModifiedDate, with nothing to deliver
    assert event.key == f"{ORG15}:04lo0000000xxxxxxx"
    assert event.event_id == "04lo0000000xxxxxxx"
    assert event.contact_id == f"{ORG15}:003o000000xxxxxxxxx"
    assert event.occurred_at == 1_403_741_138_000
    assert event.kind == "Contact"
    assert event.changes == {}
    assert (event.settled, event.reason) == (Status.IGNORED, "no mapped field in the notification")


def test_the_documented_opportunity_sample_with_a_15_character_org_is_ignored() -> None:
    # Given the documented Opportunity message (15-character org id, session id nil, no change time)
    [event] = source().parse(request(fixture("outbound-message-opportunity.xml")))

    # Then it is acknowledged as an ignored Opportunity, at the arrival time
    assert event.key == f"{ORG15}:04lV0000001ALshIAG"
    assert event.contact_id == f"{ORG15}:006Q0000009N3gf"
    assert event.kind == "Opportunity"
    assert event.occurred_at == NOW_MS
    assert (event.settled, event.reason) == (Status.IGNORED, "Opportunity records carry no contact")
    assert event.changes == {}


def test_the_answer_to_a_receipt_is_the_documented_ack_under_http_200() -> None:
    # Given any receipt the receive step hands the source (it answers 202 with ids)
    answer = source().answer(202, {"accepted": ["04l000000000000001"], "duplicates": []})

    # Then Salesforce gets the documented Ack envelope, byte for byte, as text/xml, with 200
    assert answer.status == 200
    assert answer.body == ACK == (FIXTURES / "outbound-message-ack-response.xml").read_text(encoding="utf-8")
    assert answer.content_type.startswith("text/xml")


# ------------------------------------------------------------------------------------------ field mapping


def test_mapped_contact_fields_become_changes() -> None:
    # Given a Contact with every mapped field (codes preferred over names for state and country)
    event = parse_one(
        {
            "Sphere_Customer_Id__c": "customer_1",
            "Email": "ada@example.com",
            "Phone": "+1 312 555 0100",
            "MobilePhone": "+1 312 555 0142",
            "MailingStreet": "233 S Wacker Dr",
            "MailingCity": "Chicago",
            "MailingState": "Illinois",
            "MailingStateCode": "IL",
            "MailingPostalCode": "60606",
            "MailingCountry": "United States",
            "MailingCountryCode": "US",
            "FirstName": "Ada",
        }
    )

    # Then each becomes its contact field; a one-line street clears line 2
    assert event.changes == {
        ContactField.CUSTOMER_ID: "customer_1",
        ContactField.EMAIL: "ada@example.com",
        ContactField.PHONE: "+1 312 555 0100",
        ContactField.MOBILE_PHONE: "+1 312 555 0142",
        ContactField.LINE1: "233 S Wacker Dr",
        ContactField.LINE2: None,
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60606",
        ContactField.COUNTRY: "US",
    }
    assert (event.settled, event.reason, event.refused) == (None, None, {})
    assert event.occurred_at == CHANGED_MS


@pytest.mark.parametrize(
    ("street", "line1", "line2"),
    [
        ("1 Main St\nApt 4", "1 Main St", "Apt 4"),
        ("1 Main St\r\nBuilding B\n  Floor 3  ", "1 Main St", "Building B, Floor 3"),
        ("  1 Main St  \n\n", "1 Main St", None),
        ("\n1 Main St", "1 Main St", None),
    ],
)
def test_a_multi_line_street_is_line1_then_the_other_lines(street: str, line1: str, line2: str | None) -> None:
    # Given a MailingStreet of several lines
    event = parse_one({"MailingStreet": street})

    # Then its first line is line 1 and the others, joined with ", ", line 2
    assert event.changes == {ContactField.LINE1: line1, ContactField.LINE2: line2}


def test_state_and_country_names_are_read_when_no_code_is_sent() -> None:
    # Given an org without State and Country picklists (names only)
    event = parse_one({"MailingState": "Illinois", "MailingCountry": "United States"})

    # Then the names are the values
    assert event.changes == {ContactField.STATE: "Illinois", ContactField.COUNTRY: "United States"}


def test_a_nil_code_gives_way_to_the_name() -> None:
    # Given a state code that is nil beside a state name
    event = parse_one({"MailingStateCode": None, "MailingState": "Bavaria"})

    # Then the name is the value
    assert event.changes == {ContactField.STATE: "Bavaria"}


@pytest.mark.parametrize("nil", ['<sf:Email xsi:nil="true"/>', "<sf:Email></sf:Email>", "<sf:Email>  </sf:Email>"])
def test_a_nil_or_empty_field_is_cleared(nil: str) -> None:
    # Given a Contact whose Email is nil (or sent empty)
    item = contact({}).replace("</sObject>", f"{nil}\n    </sObject>")
    [event] = parse(item)

    # Then the email is cleared
    assert event.changes == {ContactField.EMAIL: None}


def test_a_nil_street_state_and_country_clear_their_fields() -> None:
    # Given a Contact whose street, state (code and name) and country are nil
    event = parse_one({"MailingStreet": None, "MailingStateCode": None, "MailingState": None, "MailingCountry": None})

    # Then both street lines, the state and the country are cleared
    assert event.changes == {
        ContactField.LINE1: None,
        ContactField.LINE2: None,
        ContactField.STATE: None,
        ContactField.COUNTRY: None,
    }


def test_an_absent_field_is_not_a_change() -> None:
    # Given a Contact carrying only its city
    event = parse_one({"MailingCity": "Lisbon"})

    # Then only the city changes: the other fields are left as they are
    assert event.changes == {ContactField.CITY: "Lisbon"}


def test_the_customer_id_field_can_be_renamed() -> None:
    # Given a deployment whose Contact field for the Sphere id is Sphere_Id__c
    event = parse_one(
        {"Sphere_Id__c": "customer_2", "Sphere_Customer_Id__c": "customer_ignored"}, customer_id_field="Sphere_Id__c"
    )

    # Then that field is the customer id, and the default name is just another field
    assert event.changes == {ContactField.CUSTOMER_ID: "customer_2"}


def test_a_value_over_the_cap_is_refused_for_its_field_and_the_others_go_on() -> None:
    # Given a Contact whose city is over the cap, beside a good email
    event = parse_one({"MailingCity": "x" * (MAX_VALUE_CHARS + 1), "Email": "ada@example.com"})

    # Then the city is refused (named, not repeated) and the email delivered
    assert event.changes == {ContactField.EMAIL: "ada@example.com"}
    assert event.refused == {ContactField.CITY: f"MailingCity is longer than {MAX_VALUE_CHARS} characters"}
    assert event.reason == f"MailingCity is longer than {MAX_VALUE_CHARS} characters"
    assert event.settled is None


def test_a_street_line_over_the_cap_refuses_both_lines() -> None:
    # Given a two-line street whose second line is over the cap
    event = parse_one({"MailingStreet": "1 Main St\n" + "x" * (MAX_VALUE_CHARS + 1)})

    # Then neither line goes (half a street is a wrong address), and the event is rejected
    assert event.changes == {}
    assert set(event.refused) == {ContactField.LINE1, ContactField.LINE2}
    assert event.settled == Status.REJECTED


def test_a_value_at_the_cap_is_a_change() -> None:
    # Given an email of exactly the cap, with blanks around it
    event = parse_one({"Email": "  " + "e" * MAX_VALUE_CHARS + "  "})

    # Then it is a change
    assert event.changes == {ContactField.EMAIL: "e" * MAX_VALUE_CHARS}


def test_values_are_unescaped_xml_text() -> None:
    # Given a street with characters XML escapes
    event = parse_one({"MailingStreet": "Smith & Sons <Unit 2>"})

    # Then the value is the text itself
    assert event.changes[ContactField.LINE1] == "Smith & Sons <Unit 2>"


# ------------------------------------------------------------------------------------------ identity and time


def test_the_key_is_the_org_and_the_notification_id_so_a_redelivery_is_the_same_event() -> None:
    # Given the same message sent twice, a second later (Salesforce's redelivery)
    body = outbound_message([contact({"Email": "ada@example.com"})])
    first = source().parse(request(body))
    again = source().parse(
        WebhookRequest("salesforce", "POST", f"{URL}?token={TOKEN}", {"content-type": "text/xml"}, body, NOW + 1)
    )

    # Then its event has the same key, the notification id named in the answer
    assert [event.key for event in first] == [event.key for event in again] == [f"{ORG15}:{record_id('04l', 1)}"]
    assert first[0].event_id == record_id("04l", 1)


def test_the_same_notification_id_from_another_org_is_another_event_of_another_contact() -> None:
    # Given two allowed orgs sending the same notification and record ids
    other = "00D5e000000OtherAA"
    mine = parse(contact({"Email": "a@example.com"}), organization_ids=f"{ORG},{other}")
    theirs = parse(contact({"Email": "a@example.com"}), org=other, organization_ids=f"{ORG},{other}")

    # Then keys and contacts differ by org
    assert mine[0].key != theirs[0].key
    assert mine[0].contact_id == f"{ORG15}:{record_id('003', 7)}"
    assert theirs[0].contact_id == f"{other[:15]}:{record_id('003', 7)}"


def test_a_15_and_an_18_character_org_id_are_the_same_org() -> None:
    # Given the same org's message with its 15- and its 18-character id
    long_form = parse(contact({"Email": "a@example.com"}), org=ORG)
    short_form = parse(contact({"Email": "a@example.com"}), org=ORG15)

    # Then both are the same event of the same contact
    assert (long_form[0].key, long_form[0].contact_id) == (short_form[0].key, short_form[0].contact_id)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"LastModifiedDate": "2024-03-01T10:20:30.456Z"}, 1_709_288_430_456),
        ({"LastModifiedDate": "2024-03-01T10:20:30Z"}, 1_709_288_430_000),
        ({"LastModifiedDate": "2024-03-01T11:20:30.456+01:00"}, 1_709_288_430_456),
        ({"LastModifiedDate": "2024-03-01T10:20:30.456Z", "SystemModstamp": "2025-01-01T00:00:00Z"}, 1_709_288_430_456),
        ({"SystemModstamp": "2024-03-01T10:20:30.456Z"}, 1_709_288_430_456),
        ({}, NOW_MS),
    ],
)
def test_the_change_time_is_last_modified_then_system_modstamp_then_arrival(
    fields: dict[str, str], expected: int
) -> None:
    # Given a Contact notification with these time fields
    item = notification(record_id("04l", 1), record_id("003", 7), {**fields, "Email": "a@example.com"})
    [event] = parse(item)

    # Then its change time is the first given, else the arrival time
    assert event.occurred_at == expected


# ------------------------------------------------------------------------------------------ malformed notifications


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (notification("", record_id("003", 7), {"Email": PLANTED}), "the notification has no usable Id"),
        (notification("04l-not-an-id", record_id("003", 7), {"Email": PLANTED}), "the notification has no usable Id"),
        (notification(record_id("04l", 1), "", {"Email": PLANTED}), "the sObject has no usable Id"),
        (
            notification(record_id("04l", 1), record_id("003", 7), {"LastModifiedDate": PLANTED}),
            "LastModifiedDate must be an ISO 8601 time with a zone, after 1970",
        ),
        (
            notification(record_id("04l", 1), record_id("003", 7), {"LastModifiedDate": "2024-03-01T10:20:30"}),
            "LastModifiedDate must be an ISO 8601 time with a zone, after 1970",
        ),
        (
            notification(record_id("04l", 1), record_id("003", 7), {"Email": PLANTED, "Phone": "1"}).replace(
                "<sf:Phone>", "<sf:Email>x</sf:Email><sf:Phone>"
            ),
            "the sObject holds Email twice",
        ),
        (
            notification(record_id("04l", 1), record_id("003", 7), {"Email": "x"}).replace(
                "<sf:Email>x</sf:Email>", f"<sf:Email><b>{PLANTED}</b></sf:Email>"
            ),
            "Email must hold text, not elements",
        ),
        (
            notification(record_id("04l", 1), record_id("003", 7), {"Email": PLANTED}).replace(
                'xsi:type="sf:Contact" ', ""
            ),
            "the sObject has no xsi:type naming an object",
        ),
        (
            f"\n   <Notification>\n    <Id>{record_id('04l', 1)}</Id>\n   </Notification>",
            "a notification must hold exactly one sObject",
        ),
    ],
)
def test_a_malformed_notification_is_refused_on_its_own_and_the_others_are_read(item: str, reason: str) -> None:
    # Given a message with a malformed notification beside a good one
    good = contact({"Email": "ada@example.com"}, number=2)
    events = parse(item, good)

    # Then the malformed one is refused, with why and no value, and the good one is read
    refused, read = events
    assert refused.settled == Status.REFUSED
    assert refused.reason == f"invalid Salesforce notification: {reason}"
    assert PLANTED not in refused.model_dump_json()
    assert refused.changes == {}
    assert read.changes == {ContactField.EMAIL: "ada@example.com"}


def test_a_refused_notification_is_named_by_its_id_when_readable_and_by_its_position_otherwise() -> None:
    # Given two malformed notifications: one with a readable Id, one without
    with_id = notification(record_id("04l", 1), "", {})
    without = notification("", record_id("003", 7), {})
    events = parse(with_id, without)

    # Then the first keeps its key and name, the second is named by position under a digest key
    assert (events[0].key, events[0].event_id) == (f"{ORG15}:{record_id('04l', 1)}", record_id("04l", 1))
    assert events[1].event_id == "#1"
    assert events[1].key.startswith(f"invalid:{ORG15}:")
    assert events[1].key == parse(with_id, without)[1].key


# ------------------------------------------------------------------------------------------ bad messages


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b'{"notifications": []}', "request body is not well-formed XML"),
        (b"<soapenv:Envelope", "request body is not well-formed XML"),
        (b"<a>\xff</a>", "request body is not well-formed XML"),
        # Found by test_source_properties: an encoding no codec knows raised LookupError (a 500).
        (b'<?xml version="1.0" encoding="U-TF-8"?><a/>', "request body is not in an encoding it can be read in"),
        (b'<?xml version="1.0" encoding="utf-32"?><a/>', "request body is not in an encoding it can be read in"),
        (b"<Envelope/>", "request body is not a SOAP envelope of Salesforce outbound notifications"),
        (
            outbound_message([]).replace(b"http://soap.sforce.com/2005/09/outbound", b"urn:other"),
            "request body is not a SOAP envelope of Salesforce outbound notifications",
        ),
        (outbound_message([]), "a Salesforce outbound message must hold 1 to 100 notifications, got 0"),
        (
            outbound_message([]).replace(f"<OrganizationId>{ORG}</OrganizationId>".encode(), b""),
            "the message must carry one OrganizationId of 15 or 18 letters and digits",
        ),
        (
            outbound_message([]).replace(ORG.encode(), f"{PLANTED}".encode()),
            "the message must carry one OrganizationId of 15 or 18 letters and digits",
        ),
    ],
)
def test_a_body_that_is_not_a_notifications_message_is_invalid(body: bytes, message: str) -> None:
    # Given an authentic request whose body is not a Salesforce notifications message
    # When it is parsed
    with pytest.raises(InvalidPayload) as raised:
        source().parse(request(body))

    # Then it is a 400 that names the problem, never a value
    assert raised.value.message == message
    assert PLANTED not in raised.value.message


def test_more_than_100_notifications_is_invalid_and_100_are_read() -> None:
    # Given messages of 100 and 101 notifications
    hundred = [contact({"Email": "a@example.com"}, number=n) for n in range(1, 101)]

    # Then 100 are read and 101 refused
    assert len(parse(*hundred)) == 100
    with pytest.raises(InvalidPayload, match="1 to 100 notifications, got 101"):
        parse(*hundred, contact({}, number=101))


def _nested(levels: int) -> bytes:
    """A message whose Email (level 6) holds ``levels`` more levels of elements."""
    item = contact({"Email": "x"}).replace(
        "<sf:Email>x</sf:Email>", f"<sf:Email>{'<a>' * levels}{'</a>' * levels}</sf:Email>"
    )
    return outbound_message([item])


def test_nesting_up_to_the_depth_limit_is_read_and_deeper_is_invalid() -> None:
    # Given a message nested exactly to the limit (a field holding elements: that notification is refused)
    [event] = source().parse(request(_nested(MAX_XML_DEPTH - 6)))
    assert event.settled == Status.REFUSED

    # When a message is nested one level deeper, or a hundred thousand levels deeper
    for levels in (MAX_XML_DEPTH - 5, 100_000):
        with pytest.raises(InvalidPayload) as raised:
            source().parse(request(_nested(levels)))

        # Then it is a 400, not a crash
        assert raised.value.message == f"request body is nested deeper than {MAX_XML_DEPTH} levels"


def _with_doctype(doctype: str, value: str) -> bytes:
    body = outbound_message([contact({"Email": value})])
    return body.replace(b"?>\n", f"?>\n{doctype}\n".encode(), 1)


@pytest.mark.parametrize(
    "body",
    [
        _with_doctype(
            '<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
            "&c;",
        ),
        _with_doctype('<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
        _with_doctype('<!DOCTYPE e [<!ENTITY % p SYSTEM "http://example.com/evil.dtd"> %p;]>', "a@example.com"),
        _with_doctype('<!DOCTYPE Envelope SYSTEM "http://example.com/soap.dtd">', "a@example.com"),
        _with_doctype('<!DOCTYPE Envelope [<!ENTITY e "ada@example.com">]>', "&e;"),
    ],
    ids=["billion laughs", "external entity", "parameter entity", "external DTD", "internal entity"],
)
def test_a_dtd_or_an_entity_is_refused_and_never_expanded(body: bytes) -> None:
    # Given an authentic request whose XML declares a DTD or entities
    # When it is parsed
    with pytest.raises(InvalidPayload) as raised:
        source().parse(request(body))

    # Then it is a 400, whatever the DTD holds
    assert raised.value.message == "request body declares a DTD or an entity, which are not accepted"


def test_a_body_in_another_declared_encoding_is_read() -> None:
    # Given a message declared ISO-8859-1 with a non-ASCII city
    text = outbound_message([contact({"MailingCity": "São Paulo"})]).decode()
    body = text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")

    # Then the city is read as text
    assert source().parse(request(body))[0].changes == {ContactField.CITY: "São Paulo"}


# ------------------------------------------------------------------------------------------ trust


def test_an_org_outside_the_allow_list_is_forbidden_before_any_notification_is_read() -> None:
    # Given a message from another org, with a malformed notification
    # When it is parsed
    with pytest.raises(ForbiddenSender) as raised:
        parse(notification("", "", {}), org="00D5e000000OtherAA")

    # Then it is a 403 that does not name the org
    assert "00D5e" not in raised.value.message


@pytest.mark.parametrize("query", [f"token={TOKEN}", f"a=1&token={TOKEN}", f"token={OTHER_TOKEN}"])
def test_verify_accepts_any_configured_token(query: str) -> None:
    # Given a request to the URL with a configured endpoint token
    # When it is verified against two configured tokens (rotation), it passes
    source().verify(request(b"", query=query), [TOKEN, OTHER_TOKEN])


def test_verify_reads_a_percent_encoded_token() -> None:
    # Given a token with characters a URL encodes
    token = "a+b/c=d&e"

    # When it is sent percent-encoded, it matches
    source().verify(request(b"", query="token=a%2Bb%2Fc%3Dd%26e"), [token])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "missing endpoint token (?token=)"),
        ("token=", "missing endpoint token (?token=)"),
        ("tok=" + TOKEN, "missing endpoint token (?token=)"),
        (f"token={TOKEN[:-1]}", "endpoint token (?token=) does not match"),
        (f"TOKEN={TOKEN}", "missing endpoint token (?token=)"),
        (f"token={TOKEN}&token={TOKEN}", "the token query parameter must be given once"),
    ],
)
def test_verify_refuses_a_missing_wrong_or_repeated_token(query: str, message: str) -> None:
    # When a request without the right token is verified
    with pytest.raises(CredentialsError) as raised:
        source().verify(request(b"", query=query), [TOKEN])

    # Then it is a 401 naming the problem, never the token
    assert raised.value.message == message
    assert raised.value.status_code == 401


@pytest.mark.parametrize("secrets", [[], [""]])
def test_verify_fails_closed_without_tokens(secrets: list[str]) -> None:
    # When no token is configured, nothing is accepted
    with pytest.raises(CredentialsError, match="no credential is configured"):
        source().verify(request(b""), secrets)


@pytest.mark.parametrize("content_type", ["text/xml", "text/xml; charset=utf-8", "TEXT/XML;charset=UTF-8"])
def test_text_xml_is_accepted(content_type: str) -> None:
    source().check_media_type(request(b"", content_type=content_type))


@pytest.mark.parametrize("content_type", ["application/json", "application/soap+xml", None])
def test_other_or_missing_content_type_is_refused(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        source().check_media_type(request(b"", content_type=content_type))


# ------------------------------------------------------------------------------------------ answers


@pytest.mark.parametrize(
    ("status", "faultcode"),
    [
        (400, "soapenv:Client"),
        (401, "soapenv:Client"),
        (403, "soapenv:Client"),
        (500, "soapenv:Server"),
        (503, "soapenv:Server"),
    ],
)
def test_an_error_is_a_soap_fault_with_the_adapters_status(status: int, faultcode: str) -> None:
    # Given an error document with characters XML escapes
    answer = source().answer(status, {"error": {"code": "x", "message": "a <b> & c"}})

    # Then it is a SOAP 1.1 fault: the status kept, client or server by the status, the message escaped
    assert answer.status == status
    assert answer.content_type.startswith("text/xml")
    assert f"<faultcode>{faultcode}</faultcode>" in answer.body
    assert "<faultstring>a &lt;b&gt; &amp; c</faultstring>" in answer.body
    assert "http://schemas.xmlsoap.org/soap/envelope/" in answer.body


# ------------------------------------------------------------------------------------------ settings


def test_build_reads_salesforce_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables the template sets
    monkeypatch.setenv("SALESFORCE_SECRET_ID", "arn:secret")
    monkeypatch.setenv("SALESFORCE_ORGANIZATION_IDS", f"{ORG}, 00D5e000000Othe")
    monkeypatch.setenv("SALESFORCE_CUSTOMER_ID_FIELD", "Sphere_Id__c")

    # Then the source reads them (org ids trimmed, known by their 15 characters)
    built = build()
    assert built.secret_id == "arn:secret"
    assert built.config.organizations == frozenset({ORG15, "00D5e000000Othe"})
    assert built.config.customer_id_field == "Sphere_Id__c"


def test_the_customer_id_field_defaults_to_sphere_customer_id() -> None:
    assert source().config.customer_id_field == "Sphere_Customer_Id__c"


@pytest.mark.parametrize(
    "organization_ids",
    ["", " , ", "00D5e000000Tes", "00D5e000000TestAAAA", "00D5e000000Test!", f"{ORG},short"],
)
def test_an_empty_or_malformed_org_list_is_invalid(organization_ids: str) -> None:
    # When the org list is empty or holds something else than 15- or 18-character ids, the config is refused
    with pytest.raises(ValidationError):
        source(organization_ids=organization_ids)


@pytest.mark.parametrize("field", ["", "1Field", "Sphere Id", "Sphere-Id__c"])
def test_a_malformed_customer_id_field_is_invalid(field: str) -> None:
    with pytest.raises(ValidationError):
        source(customer_id_field=field)
