"""Zoho CRM's Notification API on the local stack ``make run`` starts: the channel opened, a notification read."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import httpx

from devstack.sphere_standin import SEED_INDIVIDUAL_ID
from devstack.stack import LocalStack
from devstack.vendors.zoho import CHANNEL_ID, notification
from e2e.support import wait_for
from webhook_adapter.model import Status
from webhook_adapter.zoho_channels import CHANNEL_HOURS

CONTACT = "5725767000000624001"


def enabled_at(stack: LocalStack) -> datetime:
    """When Zoho's stand-in received the latest request enabling a channel (``POST /crm/v8/actions/watch``)."""
    assert stack.crm is not None
    posts = [r for r in stack.crm.requests if r.method == "POST" and r.path.endswith("/actions/watch")]
    return posts[-1].received_at


def test_the_channel_is_open_from_the_start_and_a_notification_is_completed_by_reading_the_contact(
    stack: LocalStack,
) -> None:
    assert stack.standin is not None
    assert stack.crm is not None
    # Given the stack started: its channel function's first run enabled Zoho's channel for the contacts' changes,
    # pointed at the adapter's Zoho route with the Zoho source's token, a day ahead at most
    channel = stack.crm.zoho_channels()[CHANNEL_ID]
    assert stack.zoho_channel is not None
    assert stack.zoho_channel["method"] == "POST"
    assert channel.notify_url == f"{stack.url}/webhooks/zoho"
    assert channel.token == stack.secrets["ZohoSecretArn"]
    assert channel.events == ("Contacts.create", "Contacts.edit")
    # (the expiry the function asked for, not Zoho's one-hour default, measured from the enabling request)
    assert channel.expires_at == datetime.fromisoformat(stack.zoho_channel["expiresAt"])
    assert channel.expires_at - enabled_at(stack) > timedelta(hours=CHANNEL_HOURS - 1)

    # And a contact changed in Zoho (its record in the CRM stand-in)
    at = int(time.time() * 1000) - 2000
    values = {"customer_id": SEED_INDIVIDUAL_ID, "email": "zoho.reader@example.com", "phone": "+1 312 555 0142"}
    stack.crm.put_record("zoho", CONTACT, values, modified_at_ms=at)

    # When Zoho notifies the channel as it would: the ids only, the channel's token echoed, to its notify URL
    request = notification([CONTACT], token=channel.token or "", server_time=at)
    answer = httpx.post(channel.notify_url, content=request.body, headers=dict(request.headers), timeout=10)

    # Then it was accepted, deliver read the contact with a token of the refresh grant, and Sphere got its values
    assert answer.status_code == 202
    [key] = json.loads(answer.content)["accepted"]

    def delivered() -> bool:
        item = stack.store.get_event("zoho", CONTACT, key)
        return item is not None and item["status"] == Status.DELIVERED

    wait_for(delivered)
    [patch] = stack.standin.patches(SEED_INDIVIDUAL_ID)
    assert patch.body == {"email": "zoho.reader@example.com", "phone": "+13125550142"}
    assert len(stack.crm.records_read("zoho")) == 1


def test_a_lapsed_channel_is_enabled_again_by_the_next_run(stack: LocalStack) -> None:
    assert stack.crm is not None
    # Given the channel lapsed (the function could not run for a day)
    stack.crm.expire_zoho_channel(CHANNEL_ID)

    # When the schedule runs the channel function again
    renewal = stack.renew_zoho_channel()

    # Then Zoho was asked to enable it anew, and it is open again
    assert renewal["method"] == "POST"
    assert stack.crm.zoho_channels()[CHANNEL_ID].expires_at - enabled_at(stack) > timedelta(hours=CHANNEL_HOURS - 1)
