"""Renewing Zoho's notification channel against the CRM stand-in: set again while it lives, enabled anew when not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from devstack.crm_standin import ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN, CrmStandIn
from webhook_adapter.errors import ChannelRefused, CrmUnavailable
from webhook_adapter.readers.api import CrmApi
from webhook_adapter.readers.oauth import OAuthToken
from webhook_adapter.readers.zoho import GRANT, TOKEN_PATH
from webhook_adapter.zoho_channels import CHANNEL_HOURS, ChannelConfig, renew

CHANNEL = "1000000068002"
TOKEN = "zoho-channel-token-0123456789"
CREDENTIALS = json.dumps(
    {"client_id": ZOHO_CLIENT_ID, "client_secret": ZOHO_CLIENT_SECRET, "refresh_token": ZOHO_REFRESH_TOKEN}
)


@pytest.fixture
def crm() -> Iterator[CrmStandIn]:
    with CrmStandIn(port=0) as standin:
        yield standin


def config(crm: CrmStandIn) -> ChannelConfig:
    return ChannelConfig(
        api_url=crm.base_url,
        accounts_url=crm.base_url,
        channel_id=CHANNEL,
        notify_url="https://hooks.example.com/webhooks/zoho",
        secret_id="zoho-secret",
        credentials_secret_id="zoho-credentials",
    )


def api(crm: CrmStandIn) -> CrmApi:
    token = OAuthToken(crm.base_url + TOKEN_PATH, GRANT, lambda _refresh: CREDENTIALS, connect_timeout=1, timeout=2)
    return CrmApi(
        "Zoho",
        crm.base_url,
        token,
        connect_timeout=1,
        timeout=2,
        authorization=lambda access: {"Authorization": f"Zoho-oauthtoken {access}"},
    )


def watch_calls(crm: CrmStandIn) -> list[tuple[str, int | None]]:
    return [(request.method, request.status) for request in crm.requests if request.path == "/crm/v8/actions/watch"]


def test_a_channel_zoho_does_not_know_is_enabled_and_then_set_again_each_run(crm: CrmStandIn) -> None:
    # Given no channel yet
    now = datetime.now(UTC)

    # When the function runs, and again later
    first = renew(config(crm), api(crm), TOKEN, now=now)
    second = renew(config(crm), api(crm), TOKEN, now=now + timedelta(minutes=30))

    # Then the first run's PUT was refused and the channel enabled (POST); the second set it again (PUT)
    assert (first.method, second.method) == ("POST", "PUT")
    assert watch_calls(crm) == [("PUT", 400), ("POST", 200), ("PUT", 200)]
    # And Zoho holds the channel for the contacts' create and edit events, the adapter's route, the source's token,
    # until CHANNEL_HOURS after the last run (under Zoho's one-day limit, so Zoho kept it)
    channel = crm.zoho_channels()[CHANNEL]
    assert channel.events == ("Contacts.create", "Contacts.edit")
    assert channel.notify_url == "https://hooks.example.com/webhooks/zoho"
    assert channel.token == TOKEN
    expected = (now + timedelta(minutes=30, hours=CHANNEL_HOURS)).replace(microsecond=0)
    assert channel.expires_at == expected
    assert second.expires_at == expected


def test_an_expired_channel_is_enabled_anew(crm: CrmStandIn) -> None:
    # Given a channel enabled earlier that expired while the function could not run
    renew(config(crm), api(crm), TOKEN, now=datetime.now(UTC))
    crm.expire_zoho_channel(CHANNEL)

    # When the function runs again
    now = datetime.now(UTC)
    renewal = renew(config(crm), api(crm), TOKEN, now=now)

    # Then the channel lives again, until CHANNEL_HOURS after that run
    assert renewal.method == "POST"
    assert crm.zoho_channels()[CHANNEL].expires_at == (now + timedelta(hours=CHANNEL_HOURS)).replace(microsecond=0)


def test_a_channel_zoho_refuses_fails_the_run_naming_zohos_code_and_its_outages_are_transient(
    crm: CrmStandIn,
) -> None:
    # Given a token longer than the 50 characters Zoho keeps
    # Then the run fails, naming the channel and Zoho's code, never the token
    with pytest.raises(ChannelRefused, match=rf"channel {CHANNEL} \(400, INVALID_DATA\)") as refused:
        renew(config(crm), api(crm), "t" * 51, now=datetime.now(UTC))
    assert "t" * 51 not in str(refused.value)

    # And a 503 from Zoho is an outage to retry, not a refusal
    crm.fail_next(1, 503, crm="zoho")
    with pytest.raises(CrmUnavailable, match="503"):
        renew(config(crm), api(crm), TOKEN, now=datetime.now(UTC))
