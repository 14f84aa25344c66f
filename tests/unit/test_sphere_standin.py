"""The Sphere stand-in speaks the customer-update contract and lets tests observe and perturb it."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.sphere_standin import (
    CORRELATION_ID_HEADER,
    SEED_BUSINESS_ID,
    SEED_INDIVIDUAL_ID,
    SEED_KYC_SUBMITTED_ID,
    SphereStandIn,
)

TOKEN = "test-sphere-token"
CLIENT_TIMEOUT_SECONDS = 2.0
CUSTOMER_PATH = f"/v2/customer/{SEED_INDIVIDUAL_ID}"
KYC_CUSTOMER_PATH = f"/v2/customer/{SEED_KYC_SUBMITTED_ID}"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
US_ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "62701", "state": "IL", "country": "USA"}
DE_ADDRESS = {"line1": "Unter den Linden 1", "city": "Berlin", "postalCode": "10117", "country": "DEU"}
TAX_IDENTIFICATION = {
    "taxIdentificationNumber": "123-45-6789",
    "taxIdentificationNumberType": "ssn",
    "taxIdentificationNumberCountry": "USA",
}
TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def standin() -> Iterator[SphereStandIn]:
    with SphereStandIn(token=TOKEN, port=0) as server:
        yield server


@pytest.fixture
def client(standin: SphereStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=standin.base_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=CLIENT_TIMEOUT_SECONDS,
        trust_env=False,
    ) as http:
        yield http


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is Sphere's error format with this status and code."""
    assert response.status_code == status
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "detail", "code", "correlationId"}
    assert body["status"] == status
    assert body["code"] == code
    assert body["detail"]
    assert HEX32.fullmatch(body["correlationId"])
    assert response.headers[CORRELATION_ID_HEADER] == body["correlationId"]
    return body


def kyc_profile(customer: dict[str, Any]) -> dict[str, Any]:
    profiles: list[dict[str, Any]] = customer["verificationProfiles"]
    assert [profile["name"] for profile in profiles] == ["kyc_profile_a"]
    return profiles[0]


# ---------------------------------------------------------------------------------------------- success path


def test_patch_returns_the_full_customer_object(client: httpx.Client) -> None:
    # Given a seeded individual without contact details
    # When its email is patched
    response = client.patch(CUSTOMER_PATH, json={"email": "ada@example.com"})

    # Then the full customer object comes back with the change and a correlation id
    assert response.status_code == 200
    customer = response.json()
    assert customer["id"] == SEED_INDIVIDUAL_ID
    assert customer["type"] == "individual"
    assert customer["email"] == "ada@example.com"
    assert customer["phone"] is None
    assert {"firstName", "lastName", "dateOfBirth", "meta", "tosStatus", "personalInformation"} <= set(customer)
    assert TIMESTAMP.fullmatch(customer["createdAt"])
    assert TIMESTAMP.fullmatch(customer["updatedAt"])
    assert customer["updatedAt"] > customer["createdAt"]
    assert HEX32.fullmatch(response.headers[CORRELATION_ID_HEADER])


def test_updated_at_increases_and_kyc_criteria_follow_the_contact_details(
    client: httpx.Client, standin: SphereStandIn
) -> None:
    # Given a seeded individual with no email, phone or address
    # When email, then phone, then address are patched one after the other
    first = client.patch(CUSTOMER_PATH, json={"email": "ada@example.com"}).json()
    second = client.patch(CUSTOMER_PATH, json={"phone": "+14155550123"}).json()
    third = client.patch(CUSTOMER_PATH, json={"address": US_ADDRESS}).json()

    # Then updatedAt strictly increases
    assert first["updatedAt"] < second["updatedAt"] < third["updatedAt"]
    # And the KYC criteria move from required to complete, the profile leaving "incomplete" at the end
    assert kyc_profile(first)["status"] == "incomplete"
    assert kyc_profile(first)["criteria"] == {
        "complete": ["email_address"],
        "pending": [],
        "required": ["phone_number", "residential_address"],
        "errors": [],
    }
    assert kyc_profile(second)["criteria"]["required"] == ["residential_address"]
    assert kyc_profile(third)["status"] == "pending"
    assert kyc_profile(third)["criteria"]["complete"] == ["email_address", "phone_number", "residential_address"]
    assert kyc_profile(third)["criteria"]["required"] == []
    # And the stored customer holds every change
    stored = standin.customer(SEED_INDIVIDUAL_ID)
    assert (stored["email"], stored["phone"], stored["address"]) == ("ada@example.com", "+14155550123", US_ADDRESS)


def test_meta_replaces_the_stored_object_entirely(client: httpx.Client) -> None:
    # Given a customer whose meta has two keys
    client.patch(CUSTOMER_PATH, json={"meta": {"crm": "hubspot", "contactId": "101"}})

    # When meta is patched with a single other key
    response = client.patch(CUSTOMER_PATH, json={"meta": {"lastEventId": "e-2"}})

    # Then the stored meta is exactly the new object (no merge)
    assert response.status_code == 200
    assert response.json()["meta"] == {"lastEventId": "e-2"}


def test_tax_identification_is_stored_but_never_echoed(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given a complete tax identification sent with an address
    body = {"address": US_ADDRESS, "personalInformation": {**TAX_IDENTIFICATION, "sourceOfFunds": "salary"}}

    # When it is patched
    response = client.patch(CUSTOMER_PATH, json=body)

    # Then it is accepted, the number is absent from the answer and present in the store
    assert response.status_code == 200
    information = response.json()["personalInformation"]
    assert "taxIdentificationNumber" not in information
    assert "123-45-6789" not in response.text
    assert information["taxIdentificationNumberType"] == "ssn"
    assert information["sourceOfFunds"] == "salary"
    assert standin.customer(SEED_INDIVIDUAL_ID)["personalInformation"]["taxIdentificationNumber"] == "123-45-6789"


def test_address_and_contact_details_stay_editable_after_kyc(client: httpx.Client) -> None:
    # Given a customer whose KYC is submitted
    # When its address, email and phone change
    body = {"address": DE_ADDRESS, "email": "grace@example.org", "phone": "+493012345678"}
    response = client.patch(KYC_CUSTOMER_PATH, json=body)

    # Then the change is accepted (no state needed for DEU)
    assert response.status_code == 200
    assert response.json()["address"] == DE_ADDRESS


# ---------------------------------------------------------------------------------------------- refusals


def test_malformed_customer_id_is_not_found(client: httpx.Client) -> None:
    # Given a path id that does not match ^customer_[a-z0-9]+$
    # When it is patched
    response = client.patch("/v2/customer/customer_ABC", json={"email": "a@example.com"})

    # Then the answer is 404 resource/not-found in Sphere's error format
    assert_error(response, 404, "resource/not-found")


def test_unknown_customer_is_not_found(client: httpx.Client) -> None:
    # Given a well-formed id of a customer that does not exist
    # When it is patched
    response = client.patch("/v2/customer/customer_ffffffff", json={"email": "a@example.com"})

    # Then the answer is 404 resource/not-found
    assert_error(response, 404, "resource/not-found")


def test_business_customer_is_refused(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given the seeded business customer
    # When it is patched
    response = client.patch(f"/v2/customer/{SEED_BUSINESS_ID}", json={"email": "new@example.com"})

    # Then it is refused with 422 and left untouched
    assert_error(response, 422, "customer/business-not-supported")
    assert standin.customer(SEED_BUSINESS_ID)["email"] == "ops@example.com"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_bad_or_missing_token_is_unauthorized(standin: SphereStandIn, headers: dict[str, str]) -> None:
    # Given a client without the valid bearer token
    with httpx.Client(base_url=standin.base_url, headers=headers, trust_env=False, timeout=2.0) as anonymous:
        # When it patches a customer
        response = anonymous.patch(CUSTOMER_PATH, json={"email": "a@example.com"})

    # Then the answer is 401 auth/unauthorized
    assert_error(response, 401, "auth/unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_rotated_token_refuses_the_old_one_at_once(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given the token is rotated
    standin.rotate_token("rotated-token")

    # When the old token, then the new one, are used
    old = client.patch(CUSTOMER_PATH, json={"email": "a@example.com"})
    new = client.patch(
        CUSTOMER_PATH, json={"email": "a@example.com"}, headers={"Authorization": "Bearer rotated-token"}
    )

    # Then the old one is refused and the new one accepted
    assert_error(old, 401, "auth/unauthorized")
    assert new.status_code == 200
    # And reset_faults accepts the construction token again
    standin.reset_faults()
    assert client.patch(CUSTOMER_PATH, json={}).status_code == 200


def test_non_json_content_type_is_unsupported(client: httpx.Client) -> None:
    # Given a body sent as form data
    # When it is patched
    response = client.patch(CUSTOMER_PATH, content=b"email=a@example.com", headers={"Content-Type": "text/plain"})

    # Then the answer is 415
    assert_error(response, 415, "request/unsupported-media-type")


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b""], ids=["malformed", "array", "empty"])
def test_body_must_be_a_json_object(client: httpx.Client, content: bytes) -> None:
    # Given a JSON content type with a body that is not a JSON object
    # When it is patched
    response = client.patch(CUSTOMER_PATH, content=content, headers={"Content-Type": "application/json"})

    # Then the answer is 400 validation/failed
    assert_error(response, 400, "validation/failed")


def test_unknown_field_is_refused_by_name(client: httpx.Client) -> None:
    # Given a body with a field the endpoint does not know
    # When it is patched
    response = client.patch(CUSTOMER_PATH, json={"email": "a@example.com", "firstName": "Ada"})

    # Then the answer is 422 naming the field
    body = assert_error(response, 422, "validation/failed")
    assert "firstName" in body["detail"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", 42),
        ("phone", "4155550123"),
        ("phone", "+0123456789"),
        ("phone", "+1 415 555 0123"),
        ("meta", ["not", "an", "object"]),
    ],
)
def test_malformed_contact_fields_are_refused(client: httpx.Client, field: str, value: object) -> None:
    # Given a malformed email, phone or meta
    # When it is patched
    response = client.patch(CUSTOMER_PATH, json={field: value})

    # Then the answer is 422 validation/failed naming the field
    body = assert_error(response, 422, "validation/failed")
    assert field in body["detail"]


@pytest.mark.parametrize(
    "address",
    [
        {key: value for key, value in US_ADDRESS.items() if key != "line1"},
        {key: value for key, value in US_ADDRESS.items() if key != "city"},
        {key: value for key, value in US_ADDRESS.items() if key != "postalCode"},
        {key: value for key, value in US_ADDRESS.items() if key != "country"},
        {**US_ADDRESS, "city": "  "},
        {**US_ADDRESS, "country": "US"},
        {key: value for key, value in US_ADDRESS.items() if key != "state"},
        {**DE_ADDRESS, "zip": "10117"},
        "1 Main St, Springfield",
    ],
    ids=[
        "no-line1",
        "no-city",
        "no-postal-code",
        "no-country",
        "blank-city",
        "alpha-2",
        "usa-no-state",
        "extra",
        "str",
    ],
)
def test_invalid_address_is_refused(client: httpx.Client, standin: SphereStandIn, address: object) -> None:
    # Given an incomplete or malformed address
    # When it is patched
    response = client.patch(CUSTOMER_PATH, json={"address": address})

    # Then the answer is 400 address/invalid with Sphere's fixed detail, and nothing is stored
    body = assert_error(response, 400, "address/invalid")
    assert body["detail"] == "Invalid request parameters"
    assert standin.customer(SEED_INDIVIDUAL_ID)["address"] is None


def test_personal_information_without_address_is_refused(client: httpx.Client) -> None:
    # Given personalInformation sent alone
    # When it is patched
    response = client.patch(CUSTOMER_PATH, json={"personalInformation": {"sourceOfFunds": "salary"}})

    # Then cross-field rule 1 refuses it with 400
    assert_error(response, 400, "personal-information/address-required")


@pytest.mark.parametrize("missing", sorted(TAX_IDENTIFICATION))
def test_partial_tax_identification_is_refused(client: httpx.Client, missing: str) -> None:
    # Given a tax identification missing one of number, type and country
    information = {key: value for key, value in TAX_IDENTIFICATION.items() if key != missing}

    # When it is patched with an address
    response = client.patch(CUSTOMER_PATH, json={"address": US_ADDRESS, "personalInformation": information})

    # Then cross-field rule 2 refuses it with 400 naming the missing field
    body = assert_error(response, 400, "personal-information/tax-identification-incomplete")
    assert missing in body["detail"]


@pytest.mark.parametrize(
    "information",
    [{"firstName": "Amazing"}, {"dateOfBirth": "1906-12-09"}, {"middleName": "Brewster"}, TAX_IDENTIFICATION],
    ids=["first-name", "date-of-birth", "middle-name", "tax"],
)
def test_identity_fields_are_locked_after_kyc(client: httpx.Client, information: dict[str, str]) -> None:
    # Given a customer whose KYC is submitted
    # When an identity field is patched (with an address, as rule 1 wants)
    response = client.patch(KYC_CUSTOMER_PATH, json={"address": US_ADDRESS, "personalInformation": information})

    # Then cross-field rule 3 refuses it with 400
    assert_error(response, 400, "customer/identity-locked")


def test_identity_fields_update_top_level_before_kyc(client: httpx.Client) -> None:
    # Given a customer whose KYC is not submitted
    # When names and date of birth are sent in personalInformation with an address
    information = {"firstName": "Augusta", "dateOfBirth": "1815-12-10", "nationality": "GBR"}
    response = client.patch(CUSTOMER_PATH, json={"address": DE_ADDRESS, "personalInformation": information})

    # Then the customer object shows them at top level
    assert response.status_code == 200
    customer = response.json()
    assert (customer["firstName"], customer["dateOfBirth"]) == ("Augusta", "1815-12-10")
    assert customer["personalInformation"] == {"nationality": "GBR"}


def test_wrong_method_and_unknown_route(client: httpx.Client) -> None:
    # Given the endpoint only supports PATCH
    # When a GET reaches it and a PATCH reaches an unknown route
    wrong_method = client.get(CUSTOMER_PATH)
    unknown_route = client.patch("/v1/customers/customer_abc", json={})

    # Then they get 405 and 404 respectively
    assert_error(wrong_method, 405, "request/method-not-allowed")
    assert wrong_method.headers["Allow"] == "PATCH"
    assert_error(unknown_route, 404, "resource/not-found")


# ---------------------------------------------------------------------------------------------- faults


def test_fail_next_answers_429_with_retry_after_then_recovers(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given two injected 429s with Retry-After
    standin.fail_next(2, 429, retry_after=2)

    # When three requests are made
    responses = [client.patch(CUSTOMER_PATH, json={}) for _ in range(3)]

    # Then the first two are 429 with the header and error JSON, the third is processed
    for response in responses[:2]:
        assert_error(response, 429, "rate-limit/exceeded")
        assert response.headers["Retry-After"] == "2"
    assert responses[2].status_code == 200


def test_fail_next_can_target_one_customer(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given one failure for the KYC-submitted customer only
    standin.fail_next(1, 503, customer_id=SEED_KYC_SUBMITTED_ID)

    # When another customer is updated first, then that one twice
    other = client.patch(CUSTOMER_PATH, json={})
    targeted = [client.patch(KYC_CUSTOMER_PATH, json={}) for _ in range(2)]

    # Then only the targeted customer's first request fails
    assert other.status_code == 200
    assert_error(targeted[0], 503, "server/unavailable")
    assert targeted[1].status_code == 200


def test_fail_next_can_send_a_non_json_gateway_page(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given an injected 503 whose body is an HTML page
    standin.fail_next(1, 503, body="<html>bad gateway</html>")

    # When a request is made
    response = client.patch(CUSTOMER_PATH, json={})

    # Then the body is that page, not JSON
    assert response.status_code == 503
    assert response.text == "<html>bad gateway</html>"
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(("status", "code"), [(500, "server/internal-error"), (502, "server/bad-gateway")])
def test_fail_next_server_errors_use_the_error_format(
    client: httpx.Client, standin: SphereStandIn, status: int, code: str
) -> None:
    # Given an injected server error
    standin.fail_next(1, status)

    # When a request is made
    response = client.patch(CUSTOMER_PATH, json={})

    # Then it is answered in Sphere's error format
    assert_error(response, status, code)


def test_fail_next_can_send_the_older_error_format(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given an injected 500 with the older {"ts", "error"} body
    older = {"ts": "2025-01-01T00:00:00.000Z", "error": {"message": "boom"}}
    standin.fail_next(1, 500, body=older)

    # When a request is made
    response = client.patch(CUSTOMER_PATH, json={})

    # Then that body comes back as JSON
    assert response.status_code == 500
    assert response.json() == older


def test_drop_next_closes_the_connection_without_an_answer(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given one dropped request
    standin.drop_next(1)

    # When a request is made, the client sees the connection end without an answer
    with pytest.raises(httpx.RemoteProtocolError):
        client.patch(CUSTOMER_PATH, json={"email": "a@example.com"})

    # Then the drop is recorded without a status, nothing is applied, and the next request succeeds
    assert [record.status for record in standin.requests] == [None]
    assert standin.customer(SEED_INDIVIDUAL_ID)["email"] is None
    assert client.patch(CUSTOMER_PATH, json={}).status_code == 200


def test_timeout_next_provokes_a_read_timeout_and_stop_releases_it(standin: SphereStandIn) -> None:
    # Given the next request is held far longer than the client waits
    standin.timeout_next(1, 30)

    # When a client with a short read timeout makes it
    with (
        httpx.Client(base_url=standin.base_url, trust_env=False, timeout=httpx.Timeout(2.0, read=0.2)) as short,
        pytest.raises(httpx.ReadTimeout),
    ):
        short.patch(CUSTOMER_PATH, json={}, headers={"Authorization": f"Bearer {TOKEN}"})

    # Then stop() returns without waiting out the 30 s hold, the held request being dropped unanswered
    stopping = threading.Thread(target=standin.stop)
    stopping.start()
    stopping.join(timeout=10)
    assert not stopping.is_alive(), "stop() waited for the held request"
    assert [(record.method, record.status) for record in standin.requests] == [("PATCH", None)]


def test_timeout_next_processes_the_request_after_the_delay(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given a short hold, shorter than the client's timeout
    standin.timeout_next(1, 0.1)

    # When a request is made
    started = time.monotonic()
    response = client.patch(CUSTOMER_PATH, json={"email": "late@example.com"})

    # Then it is answered after the hold and applied
    assert time.monotonic() - started >= 0.1
    assert response.status_code == 200
    assert standin.customer(SEED_INDIVIDUAL_ID)["email"] == "late@example.com"


def test_latency_delays_every_answer(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given 100 ms of latency
    standin.set_latency(0.1)

    # When a request is made
    started = time.monotonic()
    response = client.patch(CUSTOMER_PATH, json={})

    # Then it takes at least that long
    assert time.monotonic() - started >= 0.1
    assert response.status_code == 200

    # And once latency is reset, a client that waits far less than a (long) latency is answered
    standin.set_latency(30)
    standin.reset_faults()
    assert client.patch(CUSTOMER_PATH, json={}, timeout=5.0).status_code == 200


@pytest.mark.parametrize(
    ("call", "args"),
    [("fail_next", (-1, 500)), ("fail_next", (1, 200)), ("set_latency", (-0.1,)), ("timeout_next", (1, 0))],
)
def test_fault_arguments_are_checked(standin: SphereStandIn, call: str, args: tuple[float, ...]) -> None:
    # Given out-of-range fault arguments / When the fault is set / Then ValueError is raised
    with pytest.raises(ValueError, match="must be"):
        getattr(standin, call)(*args)


# ---------------------------------------------------------------------------------------------- chaos faults


def test_apply_then_fail_next_applies_the_update_then_answers_502(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given the next request is to be applied, then answered 502 (a gateway failing after Sphere did the work)
    standin.apply_then_fail_next(1)

    # When two updates are sent
    failed = client.patch(CUSTOMER_PATH, json={"email": "applied@example.com"})
    after = client.patch(CUSTOMER_PATH, json={"phone": "+14155550100"})

    # Then the first is answered 502 but was applied, the second is processed normally
    assert_error(failed, 502, "server/bad-gateway")
    assert after.status_code == 200
    assert after.json()["email"] == "applied@example.com"
    first, second = standin.requests
    assert (first.status, first.fault, first.applied) == (502, "applied-then-502", True)
    assert (second.status, second.fault, second.applied) == (200, None, True)
    assert standin.fault_counts == {"applied-then-502": 1, "applied-then-failed": 1}


def test_apply_then_drop_next_applies_the_update_then_closes(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given the next request is to be applied, then left unanswered
    standin.apply_then_drop_next(1)

    # When an update is sent, the client sees the connection end without an answer
    with pytest.raises(httpx.RemoteProtocolError):
        client.patch(CUSTOMER_PATH, json={"email": "applied@example.com"})

    # Then the update was applied and the request recorded without a status
    assert standin.customer(SEED_INDIVIDUAL_ID)["email"] == "applied@example.com"
    (record,) = standin.requests
    assert (record.status, record.fault, record.applied) == (None, "applied-then-drop", True)
    assert standin.fault_counts == {"applied-then-drop": 1, "applied-then-failed": 1}


def test_apply_then_fail_counts_only_what_was_applied(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given the next request is to be applied then failed, but Sphere refuses it
    standin.apply_then_fail_next(1, 500)

    # When an invalid update is sent
    response = client.patch(CUSTOMER_PATH, json={"email": "not an email"})

    # Then the client sees the 500, nothing was applied, and it is not counted as applied-then-failed
    assert_error(response, 500, "server/internal-error")
    assert standin.customer(SEED_INDIVIDUAL_ID)["email"] is None
    assert standin.requests[0].applied is False
    assert standin.fault_counts == {"applied-then-500": 1}


def statuses_under(rate: float, seed: int, requests: int) -> list[int | None]:
    """The statuses a fresh stand-in answers ``requests`` PATCHes with, failing ``rate`` of them from ``seed``."""
    with (
        SphereStandIn(token=TOKEN, port=0) as server,
        httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False) as http,
    ):
        server.set_failure_rate(rate, seed=seed, kinds=["429", "500", "502", "503"], retry_after=3)
        answers = [http.patch(CUSTOMER_PATH, json={}) for _ in range(requests)]
        assert all(answer.headers["Retry-After"] == "3" for answer in answers if answer.status_code == 429)
        assert sum(server.fault_counts.values()) == sum(answer.status_code != 200 for answer in answers)
        return [record.status for record in server.requests]


def test_failure_rate_fails_a_seeded_share_of_requests_with_transient_statuses() -> None:
    # Given two stand-ins failing a fifth of their requests from the same seed, and one from another seed
    # When each answers the same 60 requests
    first, again, other = statuses_under(0.2, 7, 60), statuses_under(0.2, 7, 60), statuses_under(0.2, 8, 60)

    # Then the same seed fails the same requests with the same statuses, another seed others
    assert first == again
    assert first != other
    failures = [status for status in first if status != 200]
    assert 0 < len(failures) < 30
    assert set(failures) <= {429, 500, 502, 503}


def test_failure_rate_timeouts_hold_then_close_without_applying(standin: SphereStandIn) -> None:
    # Given every request hits a timeout fault held 0.1 s
    standin.set_failure_rate(1, kinds=["timeout"], timeout_seconds=0.1)

    # When an update is sent by a client that waits longer than the hold
    started = time.monotonic()
    with (
        httpx.Client(base_url=standin.base_url, trust_env=False, timeout=CLIENT_TIMEOUT_SECONDS) as patient,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        patient.patch(CUSTOMER_PATH, json={"email": "late@example.com"}, headers={"Authorization": f"Bearer {TOKEN}"})

    # Then the connection closed unanswered after the hold and nothing was applied
    assert time.monotonic() - started >= 0.1
    assert standin.customer(SEED_INDIVIDUAL_ID)["email"] is None
    assert [(record.status, record.fault, record.applied) for record in standin.requests] == [(None, "timeout", False)]


def test_failure_rate_can_apply_then_fail(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given every request is applied, then answered 502 or dropped
    standin.set_failure_rate(1, seed=3, kinds=["applied-then-502", "applied-then-drop"])

    # When ten updates are sent
    outcomes: list[int | None] = []
    for number in range(10):
        try:
            outcomes.append(client.patch(CUSTOMER_PATH, json={"email": f"n{number}@example.com"}).status_code)
        except httpx.RemoteProtocolError:
            outcomes.append(None)

    # Then each was applied, and counted by kind and as applied-then-failed
    assert set(outcomes) <= {502, None}
    assert standin.customer(SEED_INDIVIDUAL_ID)["email"] == "n9@example.com"
    assert all(record.applied for record in standin.requests)
    counts = standin.fault_counts
    assert counts["applied-then-502"] == outcomes.count(502)
    assert counts["applied-then-drop"] == outcomes.count(None)
    assert counts["applied-then-failed"] == 10


def test_failure_rate_zero_turns_it_off_and_counts_outlive_a_reset(
    client: httpx.Client, standin: SphereStandIn
) -> None:
    # Given a stand-in that failed one request at random
    standin.set_failure_rate(1, kinds=["503"])
    assert client.patch(CUSTOMER_PATH, json={}).status_code == 503

    # When the rate is set to zero, then the faults reset, then the request log cleared
    standin.set_failure_rate(0)
    answered = client.patch(CUSTOMER_PATH, json={}).status_code
    standin.reset_faults()
    kept = standin.fault_counts
    standin.clear_requests()

    # Then requests succeed again, and the counts are kept until the log is cleared
    assert answered == 200
    assert kept == {"503": 1}
    assert standin.fault_counts == {}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rate": 1.5}, ValueError),
        ({"rate": 0.1, "kinds": ["418"]}, ValueError),
        ({"rate": 0.1, "kinds": []}, ValueError),
        ({"rate": 0.1, "timeout_seconds": 0}, ValueError),
        ({"rate": 0.1, "seed": "seven"}, TypeError),
    ],
)
def test_failure_rate_arguments_are_checked(
    standin: SphereStandIn, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    # Given out-of-range random fault settings / When they are set / Then they are refused
    with pytest.raises(error, match="must be"):
        standin.set_failure_rate(**kwargs)


# ---------------------------------------------------------------------------------------------- observation


def test_every_request_is_recorded_including_refused_ones(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given a refused request and an accepted one
    client.patch(CUSTOMER_PATH, json={"email": "bad"})
    client.patch(CUSTOMER_PATH, json={"email": "ada@example.com"})
    client.patch(KYC_CUSTOMER_PATH, json={"phone": "+14155550199"})

    # When the records are read
    records = standin.requests

    # Then all three are there with status, lower-cased headers and parsed body
    assert [record.status for record in records] == [422, 200, 200]
    assert records[0].body == {"email": "bad"}
    assert records[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert records[0].headers["content-type"] == "application/json"
    assert records[0].method == "PATCH"
    assert records[0].path == CUSTOMER_PATH
    assert records[0].received_at <= records[1].received_at
    assert HEX32.fullmatch(records[0].correlation_id or "")
    # And patches() keeps only successful PATCHes, optionally per customer
    assert [record.body for record in standin.patches(SEED_INDIVIDUAL_ID)] == [{"email": "ada@example.com"}]
    assert len(standin.patches()) == 2
    # And records are immutable and cleared on demand
    with pytest.raises(AttributeError):
        records[0].status = 500  # type: ignore[misc]
    with pytest.raises(TypeError):
        records[0].headers["authorization"] = "x"  # type: ignore[index]
    standin.clear_requests()
    assert standin.requests == []


def test_connections_are_counted_and_reused(standin: SphereStandIn) -> None:
    # Given one keep-alive client making two requests, then a second client
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=standin.base_url, headers=headers, trust_env=False, timeout=2.0) as first:
        first.patch(CUSTOMER_PATH, json={})
        first.patch(CUSTOMER_PATH, json={})
    with httpx.Client(base_url=standin.base_url, headers=headers, trust_env=False, timeout=2.0) as second:
        second.patch(CUSTOMER_PATH, json={})

    # When the counters are read
    connection_ids = [record.connection_id for record in standin.requests]

    # Then the first client reused its connection and two connections were accepted in all
    assert connection_ids == [1, 1, 2]
    assert standin.connection_count == 2


def test_chunked_body_is_read(client: httpx.Client) -> None:
    # Given a body streamed with chunked transfer encoding
    def chunks() -> Iterator[bytes]:
        yield b'{"email": '
        yield b'"chunked@example.com"}'

    # When it is patched
    response = client.patch(CUSTOMER_PATH, content=chunks(), headers={"Content-Type": "application/json"})

    # Then it is parsed like any other body
    assert response.status_code == 200
    assert response.json()["email"] == "chunked@example.com"


@pytest.mark.parametrize(
    ("content_length", "status", "code"),
    [("2000000", 413, "request/too-large"), ("twelve", 400, "request/malformed")],
)
def test_oversized_or_malformed_length_is_refused_and_recorded(
    standin: SphereStandIn, content_length: str, status: int, code: str
) -> None:
    # Given a request announcing a body too large, or a length that is not a number
    request = (
        f"PATCH {CUSTOMER_PATH} HTTP/1.1\r\nHost: sphere\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    )
    port = int(standin.base_url.rsplit(":", 1)[1])

    # When it is sent on a raw connection
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as connection:
        connection.sendall(request.encode())
        answer = connection.makefile("rb").read()

    # Then it is answered without reading a body, the connection is closed, and the refusal recorded
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode())
    assert b"Connection: close" in head
    assert json.loads(body)["code"] == code
    assert [record.status for record in standin.requests] == [status]


def test_add_customer_and_customer_copies(standin: SphereStandIn) -> None:
    # Given a customer added from Python
    added = standin.add_customer("customer_123abc", email="x@example.com", kyc_submitted=True)

    # When its copy is modified
    added["email"] = "changed@example.com"

    # Then the stored customer is unchanged and bad input is refused
    assert standin.customer("customer_123abc")["email"] == "x@example.com"
    assert standin.customer("customer_123abc")["kyc_submitted"] is True
    with pytest.raises(KeyError):
        standin.customer("customer_missing")
    with pytest.raises(ValueError, match="customer id"):
        standin.add_customer("Customer-1")
    with pytest.raises(ValueError, match="type"):
        standin.add_customer("customer_1", type="robot")
    with pytest.raises(ValueError, match="unknown customer fields"):
        standin.add_customer("customer_1", nickname="x")


# ---------------------------------------------------------------------------------------------- HTTP controls


def test_http_controls_drive_faults_without_being_recorded_or_faulted(
    client: httpx.Client, standin: SphereStandIn
) -> None:
    # Given two failures, a drop and a rotation set over HTTP
    fail = client.post("/_standin/faults", json={"fail": {"count": 1, "status": 503, "retryAfter": 1}, "drop": 1})
    faults = client.get("/_standin/faults").json()

    # When API requests are made
    with pytest.raises(httpx.RemoteProtocolError):
        client.patch(CUSTOMER_PATH, json={})
    unavailable = client.patch(CUSTOMER_PATH, json={})
    client.post("/_standin/faults", json={"rotateToken": "new-token"})
    unauthorized = client.patch(CUSTOMER_PATH, json={})

    # Then the faults apply in order, control calls are answered despite pending faults and are not recorded
    assert fail.status_code == 200
    assert faults["fail"] == {"count": 1, "status": 503, "retryAfter": "1", "customerId": None}
    assert faults["drop"] == 1
    assert_error(unavailable, 503, "server/unavailable")
    assert unavailable.headers["Retry-After"] == "1"
    assert_error(unauthorized, 401, "auth/unauthorized")
    listed = client.get("/_standin/requests").json()
    assert [(entry["method"], entry["status"]) for entry in listed] == [("PATCH", None), ("PATCH", 503), ("PATCH", 401)]
    assert TIMESTAMP.fullmatch(listed[0]["receivedAt"])
    assert all(not entry["path"].startswith("/_standin") for entry in listed)
    assert len(standin.requests) == 3


def test_http_controls_latency_timeout_reset_and_clear(client: httpx.Client, standin: SphereStandIn) -> None:
    # Given latency and a timeout set over HTTP
    response = client.post("/_standin/faults", json={"latency": 30, "timeout": {"count": 3, "seconds": 5}})
    assert response.json()["latency"] == 30
    assert response.json()["timeout"] == {"count": 3, "seconds": 5.0}

    # When faults are reset over HTTP while that long latency is set (control calls are not delayed: a client
    # waiting far less than the latency is answered)
    reset = client.post("/_standin/faults", json={"reset": True}, timeout=5.0)

    # Then API requests are answered at once, and the record list can be cleared over HTTP
    assert reset.json()["timeout"]["count"] == 0
    assert client.patch(CUSTOMER_PATH, json={}).status_code == 200
    assert client.delete("/_standin/requests").status_code == 200
    assert standin.requests == []
    assert client.get("/_standin/connections").json() == {"count": 1}


def test_http_controls_drive_random_and_applied_then_failed_faults(
    client: httpx.Client, standin: SphereStandIn
) -> None:
    # Given an applied-then-502, an applied-then-drop and a random rate set over HTTP
    set_faults = client.post(
        "/_standin/faults",
        json={
            "appliedThenFail": {"count": 1},
            "appliedThenDrop": 1,
            "random": {"rate": 1, "seed": 5, "kinds": ["429"], "retryAfter": 2, "timeoutSeconds": 0.5},
        },
    )

    # When four updates are sent, the random rate being turned off over HTTP before the last
    applied_then_502 = client.patch(CUSTOMER_PATH, json={"email": "one@example.com"})
    with pytest.raises(httpx.RemoteProtocolError):
        client.patch(CUSTOMER_PATH, json={"email": "two@example.com"})
    limited = client.patch(CUSTOMER_PATH, json={"email": "three@example.com"})
    client.post("/_standin/faults", json={"random": None})
    accepted = client.patch(CUSTOMER_PATH, json={"email": "four@example.com"})

    # Then the faults apply in order, the counted ones first, and the counts and log say what happened
    assert set_faults.json()["random"] == {
        "rate": 1.0,
        "seed": 5,
        "kinds": ["429"],
        "retryAfter": "2",
        "timeoutSeconds": 0.5,
    }
    assert set_faults.json()["appliedThenFail"] == {"count": 1, "status": 502}
    assert applied_then_502.status_code == 502
    assert_error(limited, 429, "rate-limit/exceeded")
    assert limited.headers["Retry-After"] == "2"
    assert accepted.status_code == 200
    faults = client.get("/_standin/faults").json()
    assert faults["random"] is None
    assert faults["counts"] == {"applied-then-502": 1, "applied-then-drop": 1, "429": 1, "applied-then-failed": 2}
    listed = client.get("/_standin/requests").json()
    assert [(entry["status"], entry["fault"], entry["applied"]) for entry in listed] == [
        (502, "applied-then-502", True),
        (None, "applied-then-drop", True),
        (429, "429", False),
        (200, None, True),
    ]
    assert standin.customer(SEED_INDIVIDUAL_ID)["email"] == "four@example.com"


def test_http_controls_manage_customers(client: httpx.Client) -> None:
    # Given a customer added over HTTP
    created = client.post("/_standin/customers", json={"id": "customer_new1", "kyc_submitted": True})

    # When it is read back over HTTP, and an unknown one too
    stored = client.get("/_standin/customers/customer_new1")
    missing = client.get("/_standin/customers/customer_nope")

    # Then the customer exists as given
    assert created.status_code == 201
    assert stored.json()["kyc_submitted"] is True
    assert_error(missing, 404, "resource/not-found")


@pytest.mark.parametrize(
    "spec",
    [
        {"explode": True},
        {"fail": {"count": 1}},
        {"fail": {"count": 1, "status": 200}},
        {"latency": -1},
        {"drop": "one"},
        {"timeout": {"count": 1}},
        {"rotateToken": ""},
        {"reset": "yes"},
        {"appliedThenFail": {"count": 1, "status": 200}},
        {"appliedThenFail": 1},
        {"appliedThenDrop": -1},
        {"random": {"rate": 2}},
        {"random": {"seed": 1}},
        {"random": {"rate": 0.1, "kinds": "429"}},
        {"random": {"rate": 0.1, "kinds": ["418"]}},
        {"random": {"rate": 0.1, "seed": "x"}},
        {"random": {"rate": 0.1, "timeoutSeconds": 0}},
    ],
)
def test_http_controls_refuse_malformed_faults(client: httpx.Client, standin: SphereStandIn, spec: object) -> None:
    # Given a malformed fault instruction
    # When it is posted
    response = client.post("/_standin/faults", json=spec)

    # Then it is refused with 400 and nothing changes
    assert_error(response, 400, "validation/failed")
    assert client.patch(CUSTOMER_PATH, json={}).status_code == 200


def test_http_controls_refuse_non_object_bodies_and_unknown_endpoints(client: httpx.Client) -> None:
    # Given control requests with a non-object body and an unknown path
    # When they are sent
    array = client.post("/_standin/faults", json=[1])
    garbage = client.post("/_standin/faults", content=b"{", headers={"Content-Type": "application/json"})
    unknown = client.get("/_standin/nothing")

    # Then they are refused in the error format
    assert_error(array, 400, "validation/failed")
    assert_error(garbage, 400, "validation/failed")
    assert_error(unknown, 404, "resource/not-found")


# ---------------------------------------------------------------------------------------------- lifecycle


def test_lifecycle_is_explicit_and_idempotent() -> None:
    # Given a stand-in that is not started
    standin = SphereStandIn(token=TOKEN, port=0)
    with pytest.raises(RuntimeError):
        _ = standin.base_url

    # When it is started twice, then stopped twice
    standin.start()
    with pytest.raises(RuntimeError):
        standin.start()
    base_url = standin.base_url
    standin.stop()
    standin.stop()

    # Then it had listened on loopback and no longer does
    assert base_url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        _ = standin.base_url
    with pytest.raises(ValueError, match="token"):
        SphereStandIn(token="")


def test_main_serves_until_interrupted() -> None:
    # Given the stand-in started as a module on a free port
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    process = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter and our own module
        [sys.executable, "-m", "devstack.sphere_standin", "--port", "0", "--token", TOKEN],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = read_base_url(process, deadline=time.monotonic() + 5.0)

        # When a request is made and the process is interrupted
        with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as http:
            response = http.patch(CUSTOMER_PATH, json={}, headers={"Authorization": f"Bearer {TOKEN}"})
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=5.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        logs = process.stderr.read()
        process.stderr.close()

    # Then it answered, exited cleanly, and never logged the token
    assert response.status_code == 200
    assert returncode == 0
    assert TOKEN not in logs


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
