"""The CRM stand-in answers each vendor's contact read in its documented shape and lets tests perturb it."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.crm_standin import (
    DEFAULT_PIPEDRIVE_CUSTOMER_ID_KEY,
    DEFAULT_TOKENS,
    SALESFORCE_CLIENT_ID,
    SALESFORCE_CLIENT_SECRET,
    Crm,
    CrmStandIn,
)

CLIENT_TIMEOUT_SECONDS = 2.0
MODIFIED_AT_MS = 1_764_130_000_123
"""2025-11-26T04:06:40.123Z."""
CREATED_AT_MS = 1_700_000_000_000
"""2023-11-14T22:13:20.000Z."""
ATTIO_RECORD_ID = "bf071e1f-6035-429d-b874-d83ea64ea13b"
SALESFORCE_RECORD_ID = "003Hs00004XYZabIAH"
ZOHO_RECORD_ID = "1386586000002572002"
FULL_CONTACT: dict[str, str | None] = {
    "customer_id": "customer_f31121c389624d3697cbf3ea8830b7a4",
    "email": "Ada@Example.com",
    "phone": "+13125550142",
    "mobile_phone": "+13125550143",
    "line1": "233 S Wacker Dr",
    "city": "Chicago",
    "state": "IL",
    "postal_code": "60606",
    "country": "US",
}
TESTS_DIR = Path(__file__).resolve().parents[1]
SHARED_DIR = TESTS_DIR.parent / "layers" / "shared"


@dataclass(frozen=True)
class Vendor:
    """How a test reaches one CRM's read endpoint and recognizes its error format."""

    crm: Crm
    record_id: str
    path: str
    auth: Callable[[str], dict[str, str]]
    error_status: Callable[[Any], int]
    """The status a vendor error body states (asserting the body has exactly the vendor's keys)."""
    not_found: int = 404
    """What an unknown id answers."""


def hubspot_error(body: Any) -> int:
    assert set(body) == {"status", "message", "correlationId", "category"}
    assert body["status"] == "error"
    return {"INVALID_AUTHENTICATION": 401, "OBJECT_NOT_FOUND": 404}[body["category"]]


def pipedrive_error(body: Any) -> int:
    assert set(body) == {"success", "error", "errorCode", "error_info"}
    assert body["success"] is False
    assert body["error"]
    return int(body["errorCode"])


def attio_error(body: Any) -> int:
    assert set(body) == {"status_code", "type", "code", "message"}
    assert (body["type"], body["code"]) in {
        ("auth_error", "unauthorized"),
        ("invalid_request_error", "not_found"),
        ("rate_limit_error", "rate_limit_exceeded"),
    }
    return int(body["status_code"])


def salesforce_error(body: Any) -> int:
    assert isinstance(body, list)
    assert len(body) == 1
    assert set(body[0]) == {"message", "errorCode"}
    return {"INVALID_SESSION_ID": 401, "NOT_FOUND": 404}[body[0]["errorCode"]]


def zoho_error(body: Any) -> int:
    assert set(body) == {"code", "details", "message", "status"}
    assert body["status"] == "error"
    return {"INVALID_TOKEN": 401, "TOO_MANY_REQUESTS": 429}[body["code"]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def zoho_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Zoho-oauthtoken {token}"}


VENDORS = [
    Vendor(Crm.HUBSPOT, "101", "/crm/objects/2026-03/contacts/{id}", bearer, hubspot_error),
    Vendor(Crm.PIPEDRIVE, "42", "/api/v2/persons/{id}", lambda token: {"x-api-token": token}, pipedrive_error),
    Vendor(Crm.ATTIO, ATTIO_RECORD_ID, "/v2/objects/people/records/{id}", bearer, attio_error),
    Vendor(
        Crm.SALESFORCE, SALESFORCE_RECORD_ID, "/services/data/v62.0/sobjects/Contact/{id}", bearer, salesforce_error
    ),
    Vendor(Crm.ZOHO, ZOHO_RECORD_ID, "/crm/v8/Contacts/{id}", zoho_auth, zoho_error, not_found=204),
]
BY_CRM = {vendor.crm: vendor for vendor in VENDORS}


@pytest.fixture
def standin() -> Iterator[CrmStandIn]:
    with CrmStandIn(port=0) as server:
        yield server


@pytest.fixture
def client(standin: CrmStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.base_url, timeout=CLIENT_TIMEOUT_SECONDS, trust_env=False) as http:
        yield http


def read(
    client: httpx.Client, vendor: Vendor, record_id: str | None = None, token: str | None = None
) -> httpx.Response:
    """GET the vendor's record with its token (the default one unless given)."""
    path = vendor.path.format(id=record_id or vendor.record_id)
    return client.get(path, headers=vendor.auth(token or DEFAULT_TOKENS[vendor.crm]))


def put_full(standin: CrmStandIn, vendor: Vendor) -> None:
    standin.put_record(
        vendor.crm, vendor.record_id, FULL_CONTACT, modified_at_ms=MODIFIED_AT_MS, created_at_ms=CREATED_AT_MS
    )


# ---------------------------------------------------------------------------------------------- reads


@pytest.mark.parametrize("path", ["/crm/objects/2026-09/contacts/101", "/crm/v3/objects/contacts/101"])
def test_hubspot_read_answers_the_requested_properties(client: httpx.Client, standin: CrmStandIn, path: str) -> None:
    # Given a HubSpot contact put from contact fields
    put_full(standin, BY_CRM[Crm.HUBSPOT])

    # When it is read on a dated or the legacy v3 path, asking for set and unset properties
    response = client.get(
        path,
        params={"properties": "email,mobilephone,address,zip,sphere_customer_id,firstname"},
        headers=bearer(DEFAULT_TOKENS[Crm.HUBSPOT]),
    )

    # Then HubSpot's object comes back: the requested properties (null when unset) and the three system ones
    assert response.status_code == 200
    assert response.json() == {
        "id": "101",
        "properties": {
            "email": "Ada@Example.com",
            "mobilephone": "+13125550143",
            "address": "233 S Wacker Dr",
            "zip": "60606",
            "sphere_customer_id": FULL_CONTACT["customer_id"],
            "firstname": None,
            "hs_object_id": "101",
            "createdate": "2023-11-14T22:13:20.000Z",
            "lastmodifieddate": "2025-11-26T04:06:40.123Z",
        },
        "createdAt": "2023-11-14T22:13:20.000Z",
        "updatedAt": "2025-11-26T04:06:40.123Z",
        "archived": False,
    }


def test_hubspot_read_without_properties_answers_the_default_set(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given a HubSpot contact
    put_full(standin, BY_CRM[Crm.HUBSPOT])

    # When it is read without a properties parameter
    response = read(client, BY_CRM[Crm.HUBSPOT])

    # Then HubSpot's default properties come back
    assert set(response.json()["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }


@pytest.mark.parametrize("by_query", [False, True], ids=["x-api-token", "api_token query"])
def test_pipedrive_read_answers_the_person(client: httpx.Client, standin: CrmStandIn, by_query: bool) -> None:
    # Given a Pipedrive person put from contact fields
    put_full(standin, BY_CRM[Crm.PIPEDRIVE])

    # When it is read with the token in the header, or in the api_token query parameter
    token = DEFAULT_TOKENS[Crm.PIPEDRIVE]
    if by_query:
        response = client.get("/api/v2/persons/42", params={"api_token": token})
    else:
        response = client.get("/api/v2/persons/42", headers={"x-api-token": token})

    # Then the v2 envelope holds the person with its emails, phones, address and customer id custom field
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    person = body["data"]
    assert person["id"] == 42
    assert person["update_time"] == "2025-11-26T04:06:40Z"
    assert person["add_time"] == "2023-11-14T22:13:20Z"
    assert person["emails"] == [{"value": "Ada@Example.com", "primary": True, "label": "work"}]
    assert person["phones"] == [
        {"value": "+13125550142", "primary": True, "label": "work"},
        {"value": "+13125550143", "primary": False, "label": "mobile"},
    ]
    address = person["postal_address"]
    assert (address["route"], address["locality"], address["admin_area_level_1"]) == (
        "233 S Wacker Dr",
        "Chicago",
        "IL",
    )
    assert (address["postal_code"], address["country"], address["subpremise"]) == ("60606", "US", None)
    assert person["custom_fields"] == {DEFAULT_PIPEDRIVE_CUSTOMER_ID_KEY: FULL_CONTACT["customer_id"]}


def test_attio_read_answers_lists_of_value_objects(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given an Attio person put from contact fields
    put_full(standin, BY_CRM[Crm.ATTIO])

    # When it is read
    response = read(client, BY_CRM[Crm.ATTIO])

    # Then the record names its ids and holds every attribute as a list of active value objects
    assert response.status_code == 200
    record = response.json()["data"]
    assert set(record) == {"id", "created_at", "web_url", "values"}
    assert record["id"]["record_id"] == ATTIO_RECORD_ID
    assert set(record["id"]) == {"workspace_id", "object_id", "record_id"}
    assert record["created_at"] == "2023-11-14T22:13:20.000000000Z"
    values = record["values"]
    for attribute in ("email_addresses", "phone_numbers", "primary_location", "sphere_customer_id"):
        for value in values[attribute]:
            assert value["active_from"] == "2025-11-26T04:06:40.123000000Z"
            assert value["active_until"] is None
    [email] = values["email_addresses"]
    assert email["attribute_type"] == "email-address"
    assert (email["original_email_address"], email["email_address"]) == ("Ada@Example.com", "ada@example.com")
    assert [phone["original_phone_number"] for phone in values["phone_numbers"]] == ["+13125550142", "+13125550143"]
    [location] = values["primary_location"]
    assert location["attribute_type"] == "location"
    assert (location["line_1"], location["line_2"], location["locality"]) == ("233 S Wacker Dr", None, "Chicago")
    assert (location["region"], location["postcode"], location["country_code"]) == ("IL", "60606", "US")
    assert [value["value"] for value in values["sphere_customer_id"]] == [FULL_CONTACT["customer_id"]]


def test_salesforce_token_then_read_answers_the_record(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given a Salesforce contact with two address lines
    standin.put_record(
        Crm.SALESFORCE,
        SALESFORCE_RECORD_ID,
        {**FULL_CONTACT, "line2": "Suite 400"},
        modified_at_ms=MODIFIED_AT_MS,
        created_at_ms=CREATED_AT_MS,
    )

    # When a token is fetched with the client credentials and the contact is read with it
    token = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SALESFORCE_CLIENT_ID,
            "client_secret": SALESFORCE_CLIENT_SECRET,
        },
    )
    grant = token.json()
    response = client.get(
        f"/services/data/v62.0/sobjects/Contact/{SALESFORCE_RECORD_ID}", headers=bearer(grant["access_token"])
    )

    # Then the grant names the instance and the token type, and the record carries its attributes and fields
    assert token.status_code == 200
    assert set(grant) == {"access_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"}
    assert grant["token_type"] == "Bearer"
    assert grant["instance_url"] == standin.base_url
    assert grant["issued_at"].isdigit()
    assert response.status_code == 200
    record = response.json()
    assert record["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v62.0/sobjects/Contact/{SALESFORCE_RECORD_ID}",
    }
    assert record["Id"] == SALESFORCE_RECORD_ID
    assert record["MailingStreet"] == "233 S Wacker Dr\nSuite 400"
    assert (record["MailingCity"], record["MailingState"], record["MailingPostalCode"]) == ("Chicago", "IL", "60606")
    assert (record["Email"], record["Phone"], record["MobilePhone"]) == (
        "Ada@Example.com",
        "+13125550142",
        "+13125550143",
    )
    assert record["LastModifiedDate"] == record["SystemModstamp"] == "2025-11-26T04:06:40.123+0000"
    assert record["Sphere_Customer_Id__c"] == FULL_CONTACT["customer_id"]

    # And a fields parameter narrows the record to those fields
    narrowed = client.get(
        f"/services/data/v62.0/sobjects/Contact/{SALESFORCE_RECORD_ID}",
        params={"fields": "Email,LastModifiedDate"},
        headers=bearer(grant["access_token"]),
    ).json()
    assert set(narrowed) == {"attributes", "Email", "LastModifiedDate"}


def test_zoho_read_answers_the_record_in_a_data_list(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given a Zoho contact put from contact fields
    put_full(standin, BY_CRM[Crm.ZOHO])

    # When it is read whole, then narrowed to two fields
    response = read(client, BY_CRM[Crm.ZOHO])
    narrowed = client.get(
        f"/crm/v8/Contacts/{ZOHO_RECORD_ID}",
        params={"fields": "Email,Modified_Time"},
        headers=zoho_auth(DEFAULT_TOKENS[Crm.ZOHO]),
    ).json()

    # Then the record comes alone in the data list, under Zoho's field names, and fields narrows it
    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {
                "id": ZOHO_RECORD_ID,
                "Email": "Ada@Example.com",
                "Phone": "+13125550142",
                "Mobile": "+13125550143",
                "Mailing_Street": "233 S Wacker Dr",
                "Mailing_City": "Chicago",
                "Mailing_State": "IL",
                "Mailing_Zip": "60606",
                "Mailing_Country": "US",
                "Sphere_Customer_Id": FULL_CONTACT["customer_id"],
                "Created_Time": "2023-11-14T22:13:20+00:00",
                "Modified_Time": "2025-11-26T04:06:40+00:00",
            }
        ]
    }
    modified = "2025-11-26T04:06:40+00:00"
    assert narrowed == {"data": [{"id": ZOHO_RECORD_ID, "Email": "Ada@Example.com", "Modified_Time": modified}]}


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_id": SALESFORCE_CLIENT_ID, "client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "someone-else", "client_secret": SALESFORCE_CLIENT_SECRET}, "invalid_client"),
        ({"grant_type": "password", "client_id": SALESFORCE_CLIENT_ID}, "unsupported_grant_type"),
    ],
)
def test_salesforce_token_refuses_wrong_credentials_or_grant(
    client: httpx.Client, form: dict[str, str], error: str
) -> None:
    # Given wrong client credentials or another grant
    # When a token is asked for
    response = client.post("/services/oauth2/token", data={"grant_type": "client_credentials", **form})

    # Then Salesforce's OAuth error comes back, without a token
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": response.json()["error_description"]}


def test_put_raw_answers_the_exact_body(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given a vendor body put as is, with a property the stand-in would never render
    document = {"id": "101", "properties": {"email": "raw@example.com", "hs_custom": "x"}, "archived": False}
    standin.put_raw(Crm.HUBSPOT, "101", document)

    # When it is read
    response = read(client, BY_CRM[Crm.HUBSPOT])

    # Then exactly that body comes back
    assert response.json() == document


def test_customer_id_fields_are_configurable() -> None:
    # Given a stand-in whose CRMs keep the customer id under other names
    key = "f" * 40
    with (
        CrmStandIn(pipedrive_customer_id_key=key, hubspot_customer_id_property="sphere_id") as custom,
        httpx.Client(base_url=custom.base_url, trust_env=False, timeout=CLIENT_TIMEOUT_SECONDS) as http,
    ):
        custom.put_record(Crm.PIPEDRIVE, "42", {"customer_id": "customer_1"}, modified_at_ms=MODIFIED_AT_MS)
        custom.put_record(Crm.HUBSPOT, "101", {"customer_id": "customer_1"}, modified_at_ms=MODIFIED_AT_MS)

        # When both are read
        person = read(http, BY_CRM[Crm.PIPEDRIVE]).json()["data"]
        contact = http.get(
            "/crm/v3/objects/contacts/101",
            params={"properties": "sphere_id"},
            headers=bearer(DEFAULT_TOKENS[Crm.HUBSPOT]),
        ).json()

    # Then the customer id sits under the configured names
    assert person["custom_fields"] == {key: "customer_1"}
    assert contact["properties"]["sphere_id"] == "customer_1"


@pytest.mark.parametrize(
    ("crm", "values", "message"),
    [
        ("copper", {"email": "a@example.com"}, "crm must be one of"),
        (Crm.ATTIO, {"firstname": "Ada"}, "values keys must be among"),
        (Crm.HUBSPOT, {"line2": "Suite 400"}, "no standard address line 2"),
        (Crm.ZOHO, {"line2": "Suite 400"}, "no standard address line 2"),
    ],
)
def test_put_record_refuses_what_the_crm_cannot_hold(
    standin: CrmStandIn, crm: str, values: dict[str, str], message: str
) -> None:
    # Given an unknown CRM, an unknown contact field, or a field the CRM has no place for
    # When it is put, Then it is refused by name
    with pytest.raises(ValueError, match=message):
        standin.put_record(crm, "1", values, modified_at_ms=MODIFIED_AT_MS)


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.crm)
def test_wrong_token_is_refused_in_the_vendors_format(
    client: httpx.Client, standin: CrmStandIn, vendor: Vendor
) -> None:
    # Given a stored record
    put_full(standin, vendor)

    # When it is read with another CRM's token
    other = DEFAULT_TOKENS[Crm.ATTIO if vendor.crm is not Crm.ATTIO else Crm.HUBSPOT]
    response = read(client, vendor, token=other)

    # Then the vendor's 401 comes back
    assert response.status_code == 401
    assert vendor.error_status(response.json()) == 401


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.crm)
def test_unknown_record_is_not_found_in_the_vendors_format(client: httpx.Client, vendor: Vendor) -> None:
    # Given no record stored
    # When one is read
    response = read(client, vendor)

    # Then the vendor's 404 comes back (Zoho answers 204 without a body)
    assert response.status_code == vendor.not_found
    if vendor.not_found == 204:
        assert response.content == b""
    else:
        assert vendor.error_status(response.json()) == 404


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.crm)
def test_rotated_token_refuses_the_old_one_until_reset(
    client: httpx.Client, standin: CrmStandIn, vendor: Vendor
) -> None:
    # Given a stored record and the CRM's token rotated
    put_full(standin, vendor)
    standin.rotate_token(vendor.crm, "rotated-token")

    # When it is read with the old token, then the new one
    old = read(client, vendor)
    new = read(client, vendor, token="rotated-token")

    # Then the old one is refused at once and the new one accepted; the other CRMs keep theirs
    assert old.status_code == 401
    assert vendor.error_status(old.json()) == 401
    assert new.status_code == 200
    other = BY_CRM[Crm.HUBSPOT if vendor.crm is not Crm.HUBSPOT else Crm.ATTIO]
    assert read(client, other).status_code == other.not_found

    # And a fault reset accepts the construction token again
    standin.reset_faults()
    assert read(client, vendor).status_code == 200


def test_salesforce_token_endpoint_issues_the_rotated_token(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given Salesforce's token rotated
    standin.rotate_token(Crm.SALESFORCE, "00DLOCAL!rotated")

    # When a token is fetched
    grant = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SALESFORCE_CLIENT_ID,
            "client_secret": SALESFORCE_CLIENT_SECRET,
        },
    ).json()

    # Then the new token is issued
    assert grant["access_token"] == "00DLOCAL!rotated"


# ---------------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.crm)
def test_fail_next_answers_429_with_retry_after_then_recovers(
    client: httpx.Client, standin: CrmStandIn, vendor: Vendor
) -> None:
    # Given a stored record and one 429 with Retry-After
    put_full(standin, vendor)
    standin.fail_next(1, 429, retry_after=7)

    # When it is read twice
    first, second = read(client, vendor), read(client, vendor)

    # Then the first is a 429 in the vendor's JSON format with the header, the second the record
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    body = first.json()
    match vendor.crm:
        case Crm.HUBSPOT:
            assert (body["status"], body["errorType"], body["policyName"]) == (
                "error",
                "RATE_LIMIT",
                "TEN_SECONDLY_ROLLING",
            )
            assert {"message", "correlationId", "requestId"} <= set(body)
        case Crm.SALESFORCE:
            assert [set(error) for error in body] == [{"message", "errorCode"}]
        case _:
            assert vendor.error_status(body) == 429
    assert second.status_code == 200
    assert standin.fault_counts == {"429": 1}


def test_fail_next_can_target_one_crm(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given records in two CRMs and one failure limited to Attio
    put_full(standin, BY_CRM[Crm.HUBSPOT])
    put_full(standin, BY_CRM[Crm.ATTIO])
    standin.fail_next(1, 503, crm=Crm.ATTIO)

    # When HubSpot, then Attio is read
    hubspot, attio = read(client, BY_CRM[Crm.HUBSPOT]), read(client, BY_CRM[Crm.ATTIO])

    # Then only Attio fails
    assert (hubspot.status_code, attio.status_code) == (200, 503)


def test_fail_next_can_send_a_gateway_page(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given one failure with an HTML body, as a gateway in front of the CRM sends
    standin.fail_next(1, 502, body="<html>Bad Gateway</html>")

    # When a record is read
    response = read(client, BY_CRM[Crm.PIPEDRIVE])

    # Then the page comes back as text/html
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html>Bad Gateway</html>"


def test_drop_next_closes_the_connection_without_an_answer(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given a stored record and one dropped request
    put_full(standin, BY_CRM[Crm.ATTIO])
    standin.drop_next(1)

    # When it is read, the client sees the connection end without an answer
    with pytest.raises(httpx.RemoteProtocolError):
        read(client, BY_CRM[Crm.ATTIO])

    # Then the drop is recorded without a status, and the next read succeeds
    assert [(record.status, record.fault) for record in standin.requests] == [(None, "drop")]
    assert read(client, BY_CRM[Crm.ATTIO]).status_code == 200


def test_timeout_next_provokes_a_read_timeout_and_stop_releases_it(standin: CrmStandIn) -> None:
    # Given a stored record and the next request held far longer than the client waits
    put_full(standin, BY_CRM[Crm.SALESFORCE])
    standin.timeout_next(1, 30)

    # When a client with a short read timeout reads it
    with (
        httpx.Client(base_url=standin.base_url, trust_env=False, timeout=httpx.Timeout(2.0, read=0.2)) as short,
        pytest.raises(httpx.ReadTimeout),
    ):
        read(short, BY_CRM[Crm.SALESFORCE])

    # Then stop() returns without waiting out the hold, the held request being dropped unanswered
    stopping = threading.Thread(target=standin.stop)
    stopping.start()
    stopping.join(timeout=10)
    assert not stopping.is_alive(), "stop() waited for the held request"
    assert [(record.crm, record.status, record.fault) for record in standin.requests] == [
        (Crm.SALESFORCE, None, "held")
    ]


def test_timeout_next_answers_after_a_short_hold_and_latency_delays(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given a stored record, a 100 ms hold on the next request, then 100 ms latency on every one
    put_full(standin, BY_CRM[Crm.HUBSPOT])
    standin.timeout_next(1, 0.1)

    # When it is read
    started = time.monotonic()
    held = read(client, BY_CRM[Crm.HUBSPOT])
    held_for = time.monotonic() - started
    standin.set_latency(0.1)
    started = time.monotonic()
    delayed = read(client, BY_CRM[Crm.HUBSPOT])
    delayed_for = time.monotonic() - started

    # Then both are answered, each after its delay
    assert (held.status_code, delayed.status_code) == (200, 200)
    assert held_for >= 0.1
    assert delayed_for >= 0.1


def test_failure_rate_is_seeded(standin: CrmStandIn) -> None:
    # Given a stored record and half of the requests failing with 429 or 503, from seed 7
    put_full(standin, BY_CRM[Crm.HUBSPOT])

    def statuses() -> list[int]:
        standin.set_failure_rate(0.5, seed=7, kinds=["429", "503"])
        with httpx.Client(base_url=standin.base_url, trust_env=False, timeout=CLIENT_TIMEOUT_SECONDS) as http:
            return [read(http, BY_CRM[Crm.HUBSPOT]).status_code for _ in range(20)]

    # When 20 reads are made twice from the same seed
    first, second = statuses(), statuses()

    # Then both runs fail the same requests with the same statuses, some failing and some not
    assert first == second
    assert 0 < first.count(200) < 20
    assert set(first) <= {200, 429, 503}


# ---------------------------------------------------------------------------------------------- observation


def test_every_request_is_recorded_and_records_read_lists_the_successful_reads(
    client: httpx.Client, standin: CrmStandIn
) -> None:
    # Given a HubSpot record
    put_full(standin, BY_CRM[Crm.HUBSPOT])

    # When it is read, an unknown one is read, Attio is read with a wrong token, and an unknown path is asked
    read(client, BY_CRM[Crm.HUBSPOT])
    client.get("/crm/v3/objects/contacts/999", params={"properties": "email"}, headers=bearer("nope"))
    read(client, BY_CRM[Crm.ATTIO], token="wrong")
    client.get("/nowhere")

    # Then every request is recorded with its CRM, record id, query, headers and status
    records = standin.requests
    assert [(record.method, record.crm, record.record_id, record.status) for record in records] == [
        ("GET", Crm.HUBSPOT, "101", 200),
        ("GET", Crm.HUBSPOT, "999", 401),
        ("GET", Crm.ATTIO, ATTIO_RECORD_ID, 401),
        ("GET", None, None, 404),
    ]
    assert records[1].path == "/crm/v3/objects/contacts/999"
    assert records[1].query == {"properties": "email"}
    assert records[1].headers["authorization"] == "Bearer nope"
    assert all(record.fault is None for record in records)

    # And records_read lists only the successful reads of one CRM
    assert [record.record_id for record in standin.records_read(Crm.HUBSPOT)] == ["101"]
    assert standin.records_read(Crm.ATTIO) == []


# ---------------------------------------------------------------------------------------------- HTTP controls


def test_http_controls_put_records_drive_faults_and_are_not_recorded(client: httpx.Client, standin: CrmStandIn) -> None:
    # Given a record put, a token rotated and a failure set over HTTP
    put = client.post(
        "/_standin/records",
        json={
            "crm": "attio",
            "id": ATTIO_RECORD_ID,
            "values": {"email": "a@example.com"},
            "modifiedAtMs": MODIFIED_AT_MS,
        },
    )
    faults = client.post(
        "/_standin/faults",
        json={
            "rotateToken": {"crm": "attio", "token": "rotated"},
            "fail": {"count": 1, "status": 429, "retryAfter": 3},
        },
    )

    # When the record is read twice with the rotated token
    first = read(client, BY_CRM[Crm.ATTIO], token="rotated")
    second = read(client, BY_CRM[Crm.ATTIO], token="rotated")

    # Then the controls took effect, the first read failed and the second found the record
    assert (put.status_code, faults.status_code) == (201, 200)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    assert second.json()["data"]["values"]["email_addresses"][0]["email_address"] == "a@example.com"
    # And only the two reads were recorded, as GET /_standin/requests shows them
    listed = client.get("/_standin/requests").json()
    assert [(entry["crm"], entry["status"], entry["fault"]) for entry in listed] == [
        ("attio", 429, "429"),
        ("attio", 200, None),
    ]


def test_http_controls_delete_records_count_connections_and_clear_requests(
    client: httpx.Client, standin: CrmStandIn
) -> None:
    # Given a Pipedrive person that has been read once
    put_full(standin, BY_CRM[Crm.PIPEDRIVE])
    assert read(client, BY_CRM[Crm.PIPEDRIVE]).status_code == 200

    # When it is deleted over HTTP and read again, then the request log is cleared
    deleted = client.delete("/_standin/records/pipedrive/42")
    after = read(client, BY_CRM[Crm.PIPEDRIVE])
    connections = client.get("/_standin/connections").json()
    cleared = client.delete("/_standin/requests")

    # Then the second read is Pipedrive's 404, one kept-alive connection carried everything, and the log is empty
    assert deleted.status_code == 200
    assert after.status_code == 404
    assert connections == {"count": 1}
    assert cleared.json() == {"cleared": True}
    assert standin.requests == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("DELETE", "/crm/v3/objects/contacts/101", {}, 405),
        ("GET", "/services/oauth2/token", {}, 405),
        ("POST", "/services/oauth2/token", {"json": {"grant_type": "client_credentials"}}, 400),
    ],
    ids=["write on a read path", "token by GET", "token as JSON"],
)
def test_what_the_read_endpoints_do_not_serve_is_refused(
    client: httpx.Client, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    # Given a method or a body the endpoint does not take
    # When it is sent
    response = client.request(method, path, headers=bearer(DEFAULT_TOKENS[Crm.HUBSPOT]), **kwargs)

    # Then it is refused without a record or a token
    assert response.status_code == status
    assert "access_token" not in response.text


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("/_standin/faults", {"rotateToken": "just-a-token"}),
        ("/_standin/faults", {"rotateToken": {"crm": "copper", "token": "t"}}),
        ("/_standin/faults", {"explode": 1}),
        ("/_standin/records", {"crm": "hubspot", "id": "1", "values": {"email": 5}, "modifiedAtMs": 1}),
        ("/_standin/records", {"crm": "hubspot", "id": "1", "values": {}}),
    ],
)
def test_http_controls_refuse_malformed_bodies(client: httpx.Client, path: str, spec: dict[str, Any]) -> None:
    # Given a malformed control body
    # When it is posted
    response = client.post(path, json=spec)

    # Then it is refused with a reason
    assert response.status_code == 400
    assert response.json()["error"]


# ---------------------------------------------------------------------------------------------- lifecycle


def test_main_serves_until_interrupted() -> None:
    # Given the stand-in started as a module on a free port
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(SHARED_DIR)])}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.crm_standin", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = read_base_url(process, deadline=time.monotonic() + 5.0)

        # When a record is asked for and the process is interrupted
        with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as http:
            response = read(http, BY_CRM[Crm.PIPEDRIVE])
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=5.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        logs = process.stderr.read()
        process.stderr.close()

    # Then it answered Pipedrive's 404, exited cleanly, and never logged the token
    assert response.status_code == 404
    assert returncode == 0
    assert DEFAULT_TOKENS[Crm.PIPEDRIVE] not in logs


# ---------------------------------------------------------------------------------------------- helpers


def read_base_url(process: subprocess.Popen[str], deadline: float) -> str:
    """Read the standalone server's stderr until it logs where it listens, or fail at the deadline."""
    assert process.stderr is not None
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stderr], [], [], remaining)
        if not readable:
            break
        line = process.stderr.readline()
        if not line:
            break
        if match := re.search(r"base_url=(http://127\.0\.0\.1:\d+)", line):
            return match[1]
    pytest.fail("the stand-in did not report its address in time")
