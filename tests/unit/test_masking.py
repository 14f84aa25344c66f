"""What a recorded Sphere request keeps: the personal fields erased, the rest as sent, the request itself untouched."""

from __future__ import annotations

import copy
from typing import Any

from webhook_adapter.masking import ERASED, MASKED_PATHS, mask_request

REQUEST: dict[str, Any] = {
    "email": "ada@example.com",
    "phone": "+15555550100",
    "address": {
        "line1": "1 Main St",
        "line2": None,
        "city": "Springfield",
        "state": "IL",
        "postalCode": "62701",
        "country": "USA",
    },
}


def test_personal_fields_are_erased_and_the_rest_kept() -> None:
    # Given a Sphere request with every masked field, one of them cleared (null)
    request = copy.deepcopy(REQUEST)

    # When it is masked for the record
    masked = mask_request(request)

    # Then contact details and the street are erased (the null too), city, state and country stay
    assert masked == {
        "email": ERASED,
        "phone": ERASED,
        "address": {
            "line1": ERASED,
            "line2": ERASED,
            "city": "Springfield",
            "state": "IL",
            "postalCode": ERASED,
            "country": "USA",
        },
    }
    assert ERASED == "*****"
    assert set(MASKED_PATHS) == {"email", "phone", "address.line1", "address.line2", "address.postalCode"}
    # And the request that goes to Sphere is untouched, and shares nothing with the masked copy
    assert request == REQUEST
    masked["address"]["city"] = "changed"
    assert request["address"]["city"] == "Springfield"


def test_absent_fields_stay_absent() -> None:
    # Given requests without some or all of the masked fields
    only_city = {"address": {"city": "Springfield"}}
    no_personal = {"customerType": "individual"}

    # When they are masked
    # Then nothing is added, and a request without personal fields is copied as it is
    assert mask_request(only_city) == {"address": {"city": "Springfield"}}
    assert mask_request({"phone": "+15555550100"}) == {"phone": ERASED}
    copied = mask_request(no_personal)
    assert copied == no_personal
    assert copied is not no_personal


def test_a_list_value_is_erased_item_by_item() -> None:
    # Given a masked field holding a list
    # When it is masked
    # Then each item is erased, so the record still shows how many there were
    assert mask_request({"email": ["a@example.com", "b@example.com"]}) == {"email": [ERASED, ERASED]}
