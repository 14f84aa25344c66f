"""Properties of reading a record: whatever a CRM's API answers, a reader gives carriable values or ``CrmUnavailable``.

A CRM's answer is input like a webhook: a proxy, an outage page or a changed API can put anything in it.
Deterministic and modest, like ``test_properties.py``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from devstack.properties import HOSTILE_TEXT, LONG_TEXT, PROPERTY, REALISTIC, UNCARRIABLE, refused_or_none
from webhook_adapter.errors import CrmUnavailable
from webhook_adapter.model import MAX_VALUE_CHARS, ContactField
from webhook_adapter.readers.hubspot import HubSpotReadConfig, HubSpotReader

CONFIG = HubSpotReadConfig(read_mode="fetch-when-incomplete", api_token_secret_id="token")
PROPERTIES = [*CONFIG.field_map, CONFIG.customer_id_property, "lastmodifieddate", "firstname"]

JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), HOSTILE_TEXT)
ANY_JSON = st.recursive(
    JSON_SCALAR,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(HOSTILE_TEXT, children, max_size=3),
    max_leaves=12,
)
VALUE = st.one_of(st.none(), st.sampled_from(REALISTIC), HOSTILE_TEXT, LONG_TEXT, ANY_JSON)
TIME = st.one_of(
    st.just("2026-11-26T05:00:00.000Z"), st.just("2026-11-26T05:00:00"), HOSTILE_TEXT, st.integers(), st.none()
)


@st.composite
def contact_document(draw: st.DrawFn) -> Any:
    """HubSpot's contact shape with any values in it, or anything at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(ANY_JSON)
    properties = draw(st.dictionaries(st.sampled_from(PROPERTIES), VALUE, max_size=len(PROPERTIES)))
    document: dict[str, Any] = {"id": "51", "properties": properties, "updatedAt": draw(TIME)}
    if draw(st.booleans()):
        document["properties"] = draw(ANY_JSON)
    return document


def reader_answering(document: Any) -> HubSpotReader:
    reader = HubSpotReader.with_token(CONFIG, lambda _refresh: "token", connect_timeout=1, timeout=1)
    reader._api.get_json = lambda _path, _params=None: document  # type: ignore[method-assign,assignment]
    return reader


@PROPERTY
@given(document=contact_document())
@example(document={"id": "51", "properties": {"email": "a\ud800@example.com"}, "updatedAt": "2026-11-26T05:00:00Z"})
@example(document={"id": "51", "properties": {"city": "Ber\uffffin"}, "updatedAt": "2026-11-26T05:00:00Z"})
def test_any_answer_becomes_carriable_values_or_a_crm_unavailable(document: Any) -> None:
    # Given HubSpot answering a contact read with any document
    reader = reader_answering(document)

    # When the contact is read
    record = refused_or_none(lambda: reader.read("62515:51"), CrmUnavailable)

    # Then the read is refused as the CRM's fault, or every value is text the adapter can carry (or empty)
    if record is not None:
        assert record.contact_id == "62515:51"
        assert record.modified_at > 0
        for field, value in record.values.items():
            assert isinstance(field, ContactField)
            if value is not None:
                assert isinstance(value, str)
                assert 0 < len(value) <= MAX_VALUE_CHARS
                assert value == value.strip()
                assert not UNCARRIABLE.search(value)  # the contact's state item must be storable
