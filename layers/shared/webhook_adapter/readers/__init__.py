"""The CRMs' record readers: one module per source that can read its records, imported on first use.

A source reads records when its ``<PREFIX>_READ_MODE`` is not ``payload`` and it has a reader here; deliver
asks ``reading(source)`` once per container and source (the reader keeps its connection pool).
"""

from __future__ import annotations

from webhook_adapter.model import ReadMode
from webhook_adapter.readers.api import TokenSource
from webhook_adapter.records import Reading
from webhook_adapter.runtime import cached, on_reset
from webhook_adapter.secrets import read_secret
from webhook_adapter.settings import deliver_settings, load_prefixed

__all__ = ["READER_SOURCES", "reading"]

READER_SOURCES = frozenset({"hubspot"})
"""The sources that can read their records from the CRM."""


def _token(secret_id: str, max_age: int) -> TokenSource:
    def token(refresh: bool) -> str:
        return read_secret(secret_id, max_age=max_age, refresh=refresh)

    return token


@cached
def reading(source: str) -> Reading | None:
    """The source's read mode and reader in this container (``None``: the source cannot read records).

    Raises:
        pydantic.ValidationError: the source's read settings are invalid (a read mode without a token secret).
    """
    if source not in READER_SOURCES:
        return None
    from webhook_adapter.readers.hubspot import HubSpotReadConfig, HubSpotReader  # noqa: PLC0415 - on first use

    settings = deliver_settings()
    config = load_prefixed(HubSpotReadConfig, source)
    if config.read_mode is ReadMode.PAYLOAD:
        return Reading(config.read_mode, None)
    reader = HubSpotReader(
        config,
        _token(config.api_token_secret_id, settings.secret_max_age_seconds),
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
    )
    on_reset(reader.close)
    return Reading(config.read_mode, reader)
