"""The CRMs' record readers: one module per source that can read its records, imported on first use.

A source reads records when its ``<PREFIX>_READ_MODE`` is not ``payload`` and it has a reader module here
(whose ``build`` returns the source's ``Reading``); deliver asks ``reading(source)`` once per container and
source, and the reader keeps its connection pool.
"""

from __future__ import annotations

import importlib

from webhook_adapter.records import Reading
from webhook_adapter.runtime import cached
from webhook_adapter.settings import deliver_settings

__all__ = ["READER_MODULES", "reading"]

READER_MODULES = {
    "hubspot": "webhook_adapter.readers.hubspot",
    "attio": "webhook_adapter.readers.attio",
    "keap": "webhook_adapter.readers.keap",
    "salesforce-cdc": "webhook_adapter.readers.salesforce",
    "zoho": "webhook_adapter.readers.zoho",
}
"""Source name to the module whose ``build(settings)`` returns its read mode and reader."""


@cached
def reading(source: str) -> Reading | None:
    """The source's read mode and reader in this container (``None``: the source cannot read records).

    Raises:
        pydantic.ValidationError: the source's read settings are invalid (a read mode without a token secret).
    """
    module = READER_MODULES.get(source)
    if module is None:
        return None
    built: Reading = importlib.import_module(module).build(deliver_settings())
    return built
