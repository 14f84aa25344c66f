"""What ``crm-sphere show`` prints of a contact's state: masked as the recorded requests are, unless revealed."""

from __future__ import annotations

from decimal import Decimal

from webhook_adapter.cli.views import jsonable, state_json
from webhook_adapter.masking import ERASED
from webhook_adapter.merge import ContactState, FieldState
from webhook_adapter.model import ContactField

STATE = ContactState(
    fields={
        ContactField.EMAIL: FieldState("ada@example.com", 1, "d1"),
        ContactField.PHONE: FieldState("+442079460958", 2, "d2"),
        ContactField.LINE1: FieldState("10 Downing Street", 3, "d3"),
        ContactField.POSTAL_CODE: FieldState("SW1A 2AA", 3, "d3"),
        ContactField.CITY: FieldState("London", 3, "d3"),
        ContactField.COUNTRY: FieldState("GB", 3, "d3"),
        ContactField.LINE2: FieldState(None, 4, "d4"),
        ContactField.CUSTOMER_ID: FieldState("customer_abc", 0, "d0"),
    },
    version=3,
)


def test_contact_details_are_erased_and_the_rest_kept() -> None:
    # Given a contact's state with every kind of field (one cleared)
    # When it is shown without --reveal
    fields = {name: field["value"] for name, field in state_json(STATE, reveal=False)["fields"].items()}

    # Then email, phone, street and postal code are erased as in recorded requests; city, country, the id stay;
    # a cleared value stays visibly cleared
    assert fields == {
        "email": ERASED,
        "phone": ERASED,
        "line1": ERASED,
        "postal_code": ERASED,
        "city": "London",
        "country": "GB",
        "line2": None,
        "customer_id": "customer_abc",
    }


def test_reveal_shows_the_values_as_stored() -> None:
    # Given the same state
    # When it is shown with --reveal
    shown = state_json(STATE, reveal=True)

    # Then every value is as stored, with its CRM time
    assert shown["fields"]["email"] == {"value": "ada@example.com", "occurred_at": 1, "event": "d1"}
    assert shown["version"] == 3


def test_dynamodb_numbers_and_sets_become_json_types() -> None:
    # Given an item as the deserializer returns it
    item = {"attempts": Decimal(2), "ratio": Decimal("0.5"), "tags": {"b", "a"}, "nested": [{"n": Decimal(7)}]}

    # When it is made JSON-ready
    # Then integers stay integers, fractions become floats, sets sorted lists
    assert jsonable(item) == {"attempts": 2, "ratio": 0.5, "tags": ["a", "b"], "nested": [{"n": 7}]}
