"""HubSpot's contact properties as the adapter maps them: shared by app webhooks, workflow webhooks and the
reader of HubSpot's CRM objects API.

Its own module, outside ``sources``, so a container serving one HubSpot route does not load the other's code
and deliver (which reads contacts) loads no source at all.
"""

from __future__ import annotations

from webhook_adapter.model import ContactField

__all__ = ["DEFAULT_FIELD_MAP"]

DEFAULT_FIELD_MAP: dict[str, ContactField] = {
    "email": ContactField.EMAIL,
    "phone": ContactField.PHONE,
    "mobilephone": ContactField.MOBILE_PHONE,
    "address": ContactField.LINE1,
    "city": ContactField.CITY,
    "state": ContactField.STATE,
    "zip": ContactField.POSTAL_CODE,
    "country": ContactField.COUNTRY,
}
"""HubSpot contact property (internal name) to contact field.

Override with ``HUBSPOT_FIELD_MAP`` (app webhooks) or ``HUBSPOT_WORKFLOW_FIELD_MAP`` (workflows), JSON.
"""
