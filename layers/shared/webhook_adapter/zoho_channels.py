"""Keeping Zoho's notification channel open: a channel expires within a day, so a schedule sets it again.

Zoho CRM's Notification API calls the adapter only while the channel (``ZohoChannelId``) is enabled, and a
channel's ``channel_expiry`` may be at most one day ahead: asking for more, or for nothing, gives one hour. The
channel function runs every 30 minutes and sets the channel's whole configuration again (``PUT
/crm/{version}/actions/watch``: the contact module's ``create`` and ``edit`` events, the adapter's route as the
``notify_url``, the Zoho source's token, an expiry ``CHANNEL_HOURS`` ahead). When Zoho does not know the channel
(never enabled, or expired while the function could not run) the ``PUT`` is refused and the channel is enabled
anew (``POST``). Either way the expiry Zoho answers is logged. A failure raises: the function's error alarm
tells an operator before the channel lapses (a run every 30 minutes against a day's expiry leaves 46 more
attempts), and changes made while a channel was closed are never notified (a workflow webhook still is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, HttpUrl

from webhook_adapter.errors import ChannelRefused, SecretUnavailable
from webhook_adapter.readers.api import CrmApi
from webhook_adapter.readers.zoho import ZohoApiConfig, zoho_api
from webhook_adapter.secrets import read_secret_values
from webhook_adapter.settings import load_prefixed

__all__ = ["CHANNEL_HOURS", "ChannelConfig", "Renewal", "renew", "renew_from_settings"]

NAME = "zoho"
CHANNEL_HOURS = 23
"""How far ahead each renewal sets the expiry: under Zoho's one-day limit, whatever the clocks' skew."""
MAX_TOKEN_CHARS = 50
"""Longest channel token Zoho keeps."""
_OK = 200
_CODE = re.compile(r"^[A-Z_]{1,64}$")
"""What a Zoho error code looks like (``INVALID_DATA``): only such a code is quoted in a message."""


class ChannelConfig(ZohoApiConfig):
    """``ZOHO_*`` settings of the channel function."""

    channel_id: Annotated[str, Field(pattern=r"^[0-9]{1,19}$")]
    notify_url: HttpUrl
    """The adapter's Zoho route, where Zoho posts notifications."""
    secret_id: Annotated[str, Field(min_length=1)]
    """The Zoho source's secret: its first token is the channel's (Zoho echoes it in every notification)."""
    credentials_secret_id: Annotated[str, Field(min_length=1)]
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10


@dataclass(frozen=True, slots=True)
class Renewal:
    """What a renewal did: the call that took, and the expiry Zoho set (``None`` when its answer had none)."""

    channel_id: str
    method: str
    expires_at: datetime | None


def renew(config: ChannelConfig, api: CrmApi, token: str, *, now: datetime) -> Renewal:
    """Set the channel again (``PUT``), or enable it anew (``POST``) when Zoho does not know it.

    Raises:
        ChannelRefused: Zoho refused both.
        CrmUnavailable: Zoho could not answer now (429, 5xx, timeout) or refused the access token.
    """
    path = f"/crm/{config.api_version}/actions/watch"
    channel = {
        "channel_id": config.channel_id,
        "events": [f"{config.module}.create", f"{config.module}.edit"],
        "channel_expiry": (now + timedelta(hours=CHANNEL_HOURS)).astimezone(UTC).isoformat(timespec="seconds"),
        "token": token,
        "notify_url": str(config.notify_url),
    }
    status, answer = 0, None
    for method in ("PUT", "POST"):
        status, answer = api.send_json(method, path, {"watch": [channel]})
        if status == _OK and _first(answer).get("status") == "success":
            return Renewal(config.channel_id, method, _expiry(answer))
    code = _first(answer).get("code")
    quoted = f", {code}" if isinstance(code, str) and _CODE.match(code) else ""
    raise ChannelRefused(f"Zoho refused to enable notification channel {config.channel_id} ({status}{quoted})")


def renew_from_settings(*, now: datetime | None = None) -> Renewal:
    """Renew the channel the ``ZOHO_*`` settings name, with the source's token and the self client's grant.

    Raises:
        pydantic.ValidationError: a setting is missing or invalid.
        SecretUnavailable: a secret could not be read, or its token cannot be a channel's.
        ChannelRefused, CrmUnavailable: see ``renew``.
    """
    config = load_prefixed(ChannelConfig, NAME)
    tokens = read_secret_values(config.secret_id, max_age=0)
    if not tokens or len(tokens[0]) > MAX_TOKEN_CHARS:
        raise SecretUnavailable(f"the Zoho secret's first token must be 1 to {MAX_TOKEN_CHARS} characters")
    timeout = config.timeout_seconds
    api = zoho_api(config, secret_max_age=0, connect_timeout=min(timeout, 3.0), timeout=timeout, connections=1)
    try:
        return renew(config, api, tokens[0], now=now or datetime.now(UTC))
    finally:
        api.close()


def _first(answer: Any) -> dict[str, Any]:
    """The first entry of a watch answer's ``watch`` list (empty when there is none)."""
    entries = answer.get("watch") if isinstance(answer, dict) else None
    first = entries[0] if isinstance(entries, list) and entries else None
    return first if isinstance(first, dict) else {}


def _expiry(answer: Any) -> datetime | None:
    """The ``channel_expiry`` Zoho answered for the channel."""
    details = _first(answer).get("details")
    events = details.get("events") if isinstance(details, dict) else None
    event = events[0] if isinstance(events, list) and events else None
    text = event.get("channel_expiry") if isinstance(event, dict) else None
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
