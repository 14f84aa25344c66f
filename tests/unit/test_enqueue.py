"""Queue messages: built before anything is sent, split in order when a contact's change would pass 64 KB."""

from __future__ import annotations

import json
import re

import pytest

from webhook_adapter.enqueue import MESSAGE_LIMIT_BYTES, deduplication_id, messages_for
from webhook_adapter.errors import InvalidPayload
from webhook_adapter.model import ContactChange, ContactField, SourceEvent


def change(events: int, *, value: str = "x" * 1000) -> ContactChange:
    return ContactChange(
        source="hubspot",
        contact_id="62515:7",
        received_at=1,
        events=tuple(
            SourceEvent(
                key=f"62515:7:address:{index}:{index}",
                event_id=str(index),
                contact_id="62515:7",
                occurred_at=index,
                kind="contact.propertyChange",
                changes={ContactField.LINE1: value},
            )
            for index in range(events)
        ),
    )


def test_a_change_under_64_kb_is_one_message() -> None:
    [message] = messages_for([change(10)])
    assert message.group_id == "hubspot:62515:7"
    assert message.deduplication_id == deduplication_id(change(10))


def test_a_change_over_64_kb_is_split_in_order_into_messages_of_the_same_group() -> None:
    # Given a contact's change of 100 events of 1,000 characters each (about 120 KB)
    big = change(100)

    # When its messages are built
    messages = messages_for([big])

    # Then each is at most 64 KB (one SQS request each), in the contact's group, and together they
    # carry every event once, in order
    assert len(messages) > 1
    assert all(len(message.body.encode()) <= MESSAGE_LIMIT_BYTES for message in messages)
    assert {message.group_id for message in messages} == {"hubspot:62515:7"}
    keys = [event["key"] for message in messages for event in json.loads(message.body)["events"]]
    assert keys == [event.key for event in big.events]
    assert len({message.deduplication_id for message in messages}) == len(messages)


def test_a_change_with_text_that_cannot_be_encoded_refuses_the_request() -> None:
    # Given an event value holding a lone surrogate (valid in a JSON escape, not in UTF-8)
    with pytest.raises(InvalidPayload, match="cannot be encoded"):
        messages_for([change(1, value="\ud800")])


@pytest.mark.parametrize("contact_id", ["crm 42", "José", "x" * 200, "tab\there"])
def test_a_contact_id_sqs_would_refuse_as_a_group_id_is_hashed(contact_id: str) -> None:
    # Given a contact whose id has a space, a letter outside ASCII, or is too long for a message group id
    one = change(1).model_copy(update={"contact_id": contact_id})

    # When its message is built
    [message] = messages_for([one])

    # Then its group id is what SQS accepts (visible ASCII, 1 to 128 characters), stable for the contact
    assert re.fullmatch(r"[!-~]{1,128}", message.group_id)
    assert message.group_id == messages_for([one])[0].group_id
