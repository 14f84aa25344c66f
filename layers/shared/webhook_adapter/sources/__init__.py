"""CRM sources as plug-ins: one module per source behind the ``Source`` interface.

Adding a source means adding its module here and a line to ``SOURCE_MODULES``; receive, deliver,
the outcome model and the local stack need no change.
"""

from __future__ import annotations

import importlib

from webhook_adapter.errors import UnknownSource
from webhook_adapter.runtime import cached
from webhook_adapter.sources.base import Source, WebhookRequest

__all__ = ["SOURCE_MODULES", "Source", "WebhookRequest", "get_source"]

SOURCE_MODULES = {
    "hubspot": "webhook_adapter.sources.hubspot",
    "generic": "webhook_adapter.sources.generic",
    "pipedrive": "webhook_adapter.sources.pipedrive",
    "hubspot-workflow": "webhook_adapter.sources.hubspot_workflow",
    "close": "webhook_adapter.sources.close",
    "dataverse": "webhook_adapter.sources.dataverse",
    "salesforce": "webhook_adapter.sources.salesforce",
    "attio": "webhook_adapter.sources.attio",
    "keap": "webhook_adapter.sources.keap",
    "zoho": "webhook_adapter.sources.zoho",
}
"""Route name (``POST /webhooks/{name}``) to the module whose ``build()`` returns the source."""


@cached
def get_source(name: str) -> Source:
    """The configured source for ``name``, built once per container (only its own module is imported).

    Raises:
        UnknownSource: no source has this name.
        pydantic.ValidationError: the source's settings are missing or invalid.
    """
    module_name = SOURCE_MODULES.get(name)
    if module_name is None:
        raise UnknownSource("no webhook source by that name is enabled")
    source: Source = importlib.import_module(module_name).build()
    return source
