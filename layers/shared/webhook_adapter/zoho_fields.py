"""Where Zoho CRM keeps a contact's fields: their API names, shared by the Zoho source and the Zoho reader.

A workflow webhook's body carries these names (the README's body), and ``GET /crm/{version}/Contacts/{id}``
answers them; Zoho has one street field, so line 2 is never set. The customer id's field is a setting
(``ZOHO_CUSTOMER_ID_FIELD``) with this default.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from webhook_adapter.model import ContactField

__all__ = ["CUSTOMER_ID_FIELD", "FIELDS"]

FIELDS: Final = MappingProxyType(
    {
        "Email": ContactField.EMAIL,
        "Phone": ContactField.PHONE,
        "Mobile": ContactField.MOBILE_PHONE,
        "Mailing_Street": ContactField.LINE1,
        "Mailing_City": ContactField.CITY,
        "Mailing_State": ContactField.STATE,
        "Mailing_Zip": ContactField.POSTAL_CODE,
        "Mailing_Country": ContactField.COUNTRY,
    }
)
"""Contact fields by Zoho API name."""
CUSTOMER_ID_FIELD: Final = "Sphere_Customer_Id"
"""The default API name of the contact field holding the Sphere customer id."""
