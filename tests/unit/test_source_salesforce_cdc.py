"""Salesforce Change Data Capture (Event Relay -> EventBridge): the change events read from the documented shapes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from webhook_adapter.errors import InvalidPayload
from webhook_adapter.model import MAX_VALUE_CHARS, ContactField, ReadCause, Status
from webhook_adapter.receive import group_by_contact
from webhook_adapter.sources.salesforce_cdc import SalesforceCdcConfig, SalesforceCdcSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce-cdc"
CONTACT = "0035e00000AbCdEAAV"
OTHER = "0035e00000XyZwQAAV"
ACCOUNT = "0015e00000AbCdEAAV"
T0 = 1_719_876_940_000


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def source(**config: str) -> SalesforceCdcSource:
    return SalesforceCdcSource(SalesforceCdcConfig.model_validate(config))


def detail(header: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An EventBridge ``detail`` with a Contact change event: the header's defaults, then ``header``."""
    base = {
        "entityName": "Contact",
        "changeType": "UPDATE",
        "recordIds": [CONTACT],
        "commitTimestamp": T0,
        "commitNumber": 42,
        "sequenceNumber": 1,
        "transactionKey": "0000d978-0333-d593-c68b-98759eaddd49",
    }
    return {"payload": {"ChangeEventHeader": {**base, **header}, **fields}}


# ------------------------------------------------------------------------------------------------ the samples


@pytest.mark.parametrize(
    ("sample", "kind"),
    [("account-create-cometd.json", "Account.CREATE"), ("update-changedfields.json", "ServiceAppointment.UPDATE")],
)
def test_the_vendors_samples_of_other_objects_are_ignored(sample: str, kind: str) -> None:
    # Given Salesforce's documented change events (CometD's data.payload, as EventBridge's detail.payload), the
    # Account sample's "<record_ID>" placeholder replaced by an Account id
    payload = fixture(sample)["data"]["payload"]
    header = payload["ChangeEventHeader"]
    header["recordIds"] = [ACCOUNT if record == "<record_ID>" else record for record in header["recordIds"]]

    # When parsed
    [event] = source().parse({"payload": payload})

    # Then the one record it names is acknowledged as ignored: the adapter maps Contacts only
    assert event.settled is Status.IGNORED
    assert event.reason == f"not a Contact ({kind.split('.', maxsplit=1)[0]})"
    assert event.kind == kind
    assert event.contact_id == header["recordIds"][0]
    assert event.occurred_at == header["commitTimestamp"]
    assert event.key.endswith(f"{header['transactionKey']}:{header['recordIds'][0]}")
    assert not event.changes


def test_a_contact_update_carries_its_changed_fields_cleared_ones_and_the_nested_address() -> None:
    # Given a Contact UPDATE: email changed, mobile nulled, street (two lines), city and state changed
    event_bridge = fixture("contact-update-address.json")

    # When its detail is parsed
    [event] = source().parse(event_bridge["detail"])

    # Then the changed fields are changes, the nulled one is cleared, and the unchanged (null) parts are unknown
    assert event.contact_id == CONTACT
    assert event.occurred_at == 1_719_876_940_000
    assert event.kind == "Contact.UPDATE"
    assert event.settled is None
    assert event.read is None
    assert event.changes == {
        ContactField.EMAIL: "ada.lovelace@example.com",
        ContactField.MOBILE_PHONE: None,
        ContactField.LINE1: "233 S Wacker Dr",
        ContactField.LINE2: "Suite 4400",
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
    }
    assert event.key == "01719876940980994049:0000000001:0000d978-0333-d593-c68b-98759eaddd49:0035e00000AbCdEAAV"
    assert event.event_id == event.key


def test_the_change_event_may_be_the_detail_itself() -> None:
    # Given the same change event with the payload as the whole detail (the envelope is unconfirmed)
    payload = fixture("contact-update-address.json")["detail"]["payload"]

    # Then it reads the same
    assert source().parse(payload) == source().parse({"payload": payload})


def test_a_gap_event_asks_for_a_read_of_each_record_it_names() -> None:
    # Given a GAP_UPDATE naming two Contacts, no fields
    gap = fixture("contact-gap.json")["detail"]

    # When parsed
    events = source().parse(gap)

    # Then each record is one event asking deliver to read it, with nothing of its own to send
    assert [event.contact_id for event in events] == [CONTACT, OTHER]
    for event in events:
        assert event.read is ReadCause.GAP
        assert event.changes == {}
        assert event.settled is None
        assert event.occurred_at == 1_719_907_200_000
        assert event.kind == "Contact.GAP_UPDATE"
    assert len({event.key for event in events}) == 2


def test_an_overflow_without_records_is_recorded_incomplete() -> None:
    # Given an overflow event: header only, no record id (more than 100,000 changes in one transaction)
    overflow = detail({"changeType": "GAP_OVERFLOW", "recordIds": []})

    # Then it is settled incomplete: no record can be read for it
    [event] = source().parse(overflow)
    assert event.settled is Status.INCOMPLETE
    assert event.reason is not None
    assert "names no record" in event.reason


@pytest.mark.parametrize("change_type", ["DELETE", "UNDELETE", "GAP_DELETE"])
def test_deletions_are_ignored_and_a_gap_deletion_still_reads(change_type: str) -> None:
    # Given a deletion or an undeletion of a Contact
    [event] = source().parse(detail({"changeType": change_type}))

    # Then it changes no field (Sphere's customer stays); a gap of one is re-read like every gap
    if change_type.startswith("GAP_"):
        assert event.read is ReadCause.GAP
    else:
        assert event.settled is Status.IGNORED
        assert event.reason == f"{change_type} changes no field"


def test_a_create_carries_every_field_with_a_value_and_leaves_null_ones_unknown() -> None:
    # Given a CREATE: every non-null field, the customer id in its custom field
    created = detail(
        {"changeType": "CREATE"},
        Email="new@example.com",
        Phone=None,
        Sphere_Customer_Id__c="cust_42",
        MailingAddress={"Street": "1 Main St", "City": "Springfield", "Country": "United States", "CountryCode": "US"},
    )

    # Then the values are changes, the null phone is not cleared, a one-line street clears line 2, the code wins
    [event] = source().parse(created)
    assert event.changes == {
        ContactField.EMAIL: "new@example.com",
        ContactField.CUSTOMER_ID: "cust_42",
        ContactField.LINE1: "1 Main St",
        ContactField.LINE2: None,
        ContactField.CITY: "Springfield",
        ContactField.COUNTRY: "US",
    }


def test_the_customer_id_field_is_configurable() -> None:
    # Given an org whose Sphere customer id lives in another custom field
    update = detail({"changedFields": ["Sphere_Id__c"]}, Sphere_Id__c="cust_7", Sphere_Customer_Id__c="cust_old")

    # Then that field is the customer id
    [event] = source(customer_id_field="Sphere_Id__c").parse(update)
    assert event.changes == {ContactField.CUSTOMER_ID: "cust_7"}


def test_an_update_without_changed_fields_takes_the_values_it_carries() -> None:
    # Given an UPDATE whose header has no changedFields (an envelope that leaves it out)
    update = detail({}, Phone="+1 312 555 0142", Email=None)

    # Then a value is a change, a null is unknown
    [event] = source().parse(update)
    assert event.changes == {ContactField.PHONE: "+1 312 555 0142"}


def test_an_update_of_no_mapped_field_is_ignored() -> None:
    # Given an UPDATE of the title only
    [event] = source().parse(detail({"changedFields": ["Title", "LastModifiedDate"]}, Title="CTO"))

    # Then it is acknowledged as ignored
    assert event.settled is Status.IGNORED
    assert event.reason == "no mapped field changed"


def test_one_event_naming_two_records_is_one_event_per_contact() -> None:
    # Given the same email change of two Contacts in one transaction
    update = detail({"recordIds": [CONTACT, OTHER], "changedFields": ["Email"]}, Email="team@example.com")

    # Then each Contact gets the change, under its own key
    events = source().parse(update)
    assert [(event.contact_id, event.changes) for event in events] == [
        (CONTACT, {ContactField.EMAIL: "team@example.com"}),
        (OTHER, {ContactField.EMAIL: "team@example.com"}),
    ]


def test_events_of_the_same_millisecond_are_queued_in_commit_order() -> None:
    # Given two changes of one Contact committed in the same millisecond, the later commit first in the batch
    later = detail({"commitNumber": 1000, "changedFields": ["Email"]}, Email="second@example.com")
    earlier = detail({"commitNumber": 999, "changedFields": ["Email"]}, Email="first@example.com")
    events = [*source().parse(later), *source().parse(earlier)]

    # When grouped for the queue
    [change] = group_by_contact("salesforce-cdc", events, received_at=T0)

    # Then the earlier commit comes first (the key leads with the zero-padded commit and sequence numbers)
    assert [event.changes[ContactField.EMAIL] for event in change.events] == ["first@example.com", "second@example.com"]


def test_the_dedup_key_is_stable_across_redeliveries() -> None:
    # Given one change event delivered twice (EventBridge's retry: the same detail)
    first = fixture("contact-update-address.json")["detail"]

    # Then both deliveries give the same keys
    assert [event.key for event in source().parse(first)] == [
        event.key for event in source().parse(copy.deepcopy(first))
    ]


def test_a_value_over_the_cap_is_refused_and_the_rest_goes_on() -> None:
    # Given an UPDATE with a huge email and a normal phone, and one with a huge street
    long = "x" * (MAX_VALUE_CHARS + 1)
    update = detail({"changedFields": ["Email", "Phone"]}, Email=long, Phone="+1 312 555 0142")
    street = detail({"changedFields": ["MailingAddress.Street"]}, MailingAddress={"Street": f"1 Main St\n{long}"})

    # Then the email is refused by name, the phone goes on; half a street is refused whole
    [event] = source().parse(update)
    assert event.changes == {ContactField.PHONE: "+1 312 555 0142"}
    assert event.refused == {ContactField.EMAIL: f"Email is longer than {MAX_VALUE_CHARS} characters"}
    [only_street] = source().parse(street)
    assert only_street.settled is Status.REJECTED
    assert set(only_street.refused) == {ContactField.LINE1, ContactField.LINE2}


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ({"payload": {"Email": "SECRET-PII"}}, "no change event"),
        ("not a detail", "no change event"),
        (detail({"recordIds": ["SECRET-PII"]}), "recordIds"),
        (detail({"commitTimestamp": "SECRET-PII"}), "commitTimestamp"),
        (detail({"transactionKey": None}), "transactionKey"),
        (detail({"changedFields": ["Email"]}, Email=["SECRET-PII"]), "Email must be text"),
        (detail({"changedFields": ["MailingAddress.City"]}, MailingAddress="SECRET-PII"), "MailingAddress must be"),
        (detail({"changedFields": ["Email"]}, Email="SECRET-PII\ud800"), "lone surrogate"),
        (detail({"recordIds": []}, Email="a@example.com"), "names no record"),
    ],
)
def test_a_malformed_change_event_is_invalid_and_the_message_holds_no_value(broken: Any, problem: str) -> None:
    # When a malformed change event is parsed
    with pytest.raises(InvalidPayload) as raised:
        source().parse(broken)

    # Then the problem is named, never the value
    assert problem in raised.value.message
    assert "SECRET-PII" not in raised.value.message


def test_the_customer_id_field_setting_must_be_a_field_name() -> None:
    # Then a name that is not a Salesforce API name is refused
    with pytest.raises(ValidationError):
        SalesforceCdcConfig(customer_id_field="Sphere Id; DROP")
    assert SalesforceCdcConfig().customer_id_field == "Sphere_Customer_Id__c"
