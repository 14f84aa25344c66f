"""Configuration from the environment: the one module that reads ``os.environ``.

Each function validates its settings once, on first use (never at import time), through a cached
getter; tests clear the caches with ``runtime.reset()``. Per-source settings live on the source's
own model and are read from variables prefixed with the source's name (``HUBSPOT_SECRET_ID``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from webhook_adapter.runtime import cached

__all__ = [
    "CommonSettings",
    "DecideSettings",
    "DeliverSettings",
    "ReceiveSettings",
    "ReplaySettings",
    "deliver_settings",
    "env_prefix",
    "field_map_or",
    "load_prefixed",
    "receive_settings",
    "replay_settings",
]

_ENV = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class CommonSettings(BaseModel):
    """What both functions share: the table events and outcomes are recorded in, and secret caching."""

    model_config = _ENV

    table_name: Annotated[str, Field(alias="TABLE_NAME", min_length=3)]
    outcome_ttl_days: Annotated[int, Field(alias="OUTCOME_TTL_DAYS", ge=1, le=3650)] = 90
    secret_max_age_seconds: Annotated[int, Field(alias="SECRET_MAX_AGE_SECONDS", ge=0, le=86_400)] = 300
    """How long a warm container trusts its cached secrets before reading them again."""
    queue_url: Annotated[str, Field(alias="QUEUE_URL", min_length=1)]
    """The FIFO queue between receive (sends) and deliver (delays retries by changing visibility)."""


class ReceiveSettings(CommonSettings):
    """The receive function: limits, enabled sources, and where public URLs start."""

    max_body_bytes: Annotated[int, Field(alias="MAX_BODY_BYTES", ge=1024, le=10 * 1024 * 1024)] = 1024 * 1024
    public_base_url: Annotated[HttpUrl, Field(alias="PUBLIC_BASE_URL")]
    enabled_sources: Annotated[str, Field(alias="ENABLED_SOURCES")] = "hubspot,generic"

    @property
    def source_names(self) -> frozenset[str]:
        """The sources this deployment answers for."""
        return frozenset(name.strip() for name in self.enabled_sources.split(",") if name.strip())

    def public_url(self, path: str, raw_query: str) -> str:
        """The URL a CRM was configured with for ``path`` (what signature schemes that sign the URL cover)."""
        base = str(self.public_base_url).rstrip("/")
        return f"{base}{path}" + (f"?{raw_query}" if raw_query else "")


class DecideSettings(CommonSettings):
    """What deciding a contact's request needs (deliver, and replay's preview): the normalization defaults."""

    default_phone_region: Annotated[str, Field(alias="DEFAULT_PHONE_REGION", pattern=r"^[A-Z]{2}$")] = "US"
    state_required_countries: Annotated[str, Field(alias="STATE_REQUIRED_COUNTRIES")] = "USA,CAN,BRA,AUS,MEX"

    @property
    def countries_requiring_state(self) -> frozenset[str]:
        """ISO alpha-3 codes of countries whose addresses Sphere refuses without a state."""
        return frozenset(code.strip().upper() for code in self.state_required_countries.split(",") if code.strip())


class DeliverSettings(DecideSettings):
    """The deliver function: Sphere, its token, normalization defaults and the retry schedule."""

    sphere_api_url: Annotated[HttpUrl, Field(alias="SPHERE_API_URL")]
    sphere_token_secret_id: Annotated[str, Field(alias="SPHERE_TOKEN_SECRET_ID", min_length=1)]
    sphere_connect_timeout_seconds: Annotated[float, Field(alias="SPHERE_CONNECT_TIMEOUT_SECONDS", gt=0)] = 3.0
    sphere_timeout_seconds: Annotated[float, Field(alias="SPHERE_TIMEOUT_SECONDS", gt=0, le=60)] = 10.0
    max_receive_count: Annotated[int, Field(alias="MAX_RECEIVE_COUNT", ge=1, le=1000)] = 15
    retry_base_seconds: Annotated[int, Field(alias="RETRY_BASE_SECONDS", ge=0, le=43_200)] = 10
    retry_max_seconds: Annotated[int, Field(alias="RETRY_MAX_SECONDS", ge=0, le=43_200)] = 1800
    deliver_threads: Annotated[int, Field(alias="DELIVER_THREADS", ge=1, le=100)] = 10
    """Contacts of one batch delivered at once (the event source mapping's ``BatchSize``: one thread per message)."""
    sphere_max_calls_per_second: Annotated[float, Field(alias="SPHERE_MAX_CALLS_PER_SECOND", gt=0, le=100_000)] = 1000
    """The most calls per second the whole adapter makes to Sphere (every deliver container together)."""
    deliver_max_concurrency: Annotated[int, Field(alias="DELIVER_MAX_CONCURRENCY", ge=1, le=1000)] = 10
    """The most deliver containers at once: the event source mapping's ``MaximumConcurrency``."""

    @property
    def sphere_calls_per_second(self) -> float:
        """This container's share of the adapter's ceiling on calls to Sphere."""
        return self.sphere_max_calls_per_second / self.deliver_max_concurrency


class ReplaySettings(DecideSettings):
    """The replay function's settings: the queues it fills and empties, and what deciding a preview needs."""

    dead_letter_queue_url: Annotated[str, Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)]
    replay_messages_per_second: Annotated[float, Field(alias="REPLAY_MESSAGES_PER_SECOND", gt=0, le=300)] = 10
    """How fast a replay queues its changes: deliver then paces them toward Sphere like any change."""


@cached
def receive_settings() -> ReceiveSettings:
    """The receive function's settings, validated once per container.

    Raises:
        pydantic.ValidationError: a required variable is missing or a value is out of range.
    """
    return ReceiveSettings.model_validate(os.environ)


@cached
def deliver_settings() -> DeliverSettings:
    """The deliver function's settings, validated once per container.

    Raises:
        pydantic.ValidationError: a required variable is missing or a value is out of range.
    """
    return DeliverSettings.model_validate(os.environ)


def field_map_or[T](default: Mapping[Any, T]) -> Callable[[Any], Any]:
    """A validator for a ``*_FIELD_MAP`` setting: JSON text, where empty (the template's default) means ``default``."""

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else dict(default)
        return value

    return parse


def env_prefix(source: str) -> str:
    """The prefix of a source's variables: its name in upper case, ``-`` as ``_`` (``HUBSPOT_WORKFLOW``)."""
    return source.upper().replace("-", "_")


def load_prefixed[M: BaseModel](model: type[M], prefix: str) -> M:
    """Validate ``model`` from the variables named ``{PREFIX}_{FIELD}`` (a source's own settings).

    Raises:
        pydantic.ValidationError: a variable is missing or invalid.
    """
    start = f"{env_prefix(prefix)}_"
    values = {key.removeprefix(start).lower(): value for key, value in os.environ.items() if key.startswith(start)}
    return model.model_validate(values)


@cached
def replay_settings() -> ReplaySettings:
    """The replay function's settings, validated once per container.

    Raises:
        pydantic.ValidationError: a required variable is missing or a value is out of range.
    """
    return ReplaySettings.model_validate(os.environ)
