"""The CRMs' record readers against the CRM stand-in: the documented shapes in, the mapped fields and time out."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.crm_shapes import Crm
from devstack.crm_standin import DEFAULT_TOKENS, CrmStandIn
from webhook_adapter import runtime
from webhook_adapter.errors import CrmUnavailable
from webhook_adapter.model import ContactField, ReadMode
from webhook_adapter.readers.attio import AttioReadConfig, AttioReader
from webhook_adapter.readers.hubspot import HubSpotReadConfig, HubSpotReader, contact_path
from webhook_adapter.readers.hubspot import build as hubspot_build
from webhook_adapter.settings import deliver_settings

T0 = 1_795_000_000_000
WORKSPACE = "14beef7a-99f7-4534-a87e-70b564330a4c"
VALUES = {
    "customer_id": "customer_abc123",
    "email": "Ada@Example.com",
    "phone": "+1 312 555 0142",
    "line1": "233 S Wacker Dr",
    "city": "Chicago",
    "state": "IL",
    "postal_code": "60606",
    "country": "US",
}


@pytest.fixture
def crm() -> Iterator[CrmStandIn]:
    with CrmStandIn(port=0) as standin:
        yield standin


def hubspot(crm: CrmStandIn, **config: str) -> HubSpotReader:
    settings = HubSpotReadConfig(
        read_mode=ReadMode.WHEN_INCOMPLETE, api_url=crm.base_url, api_token_secret_id="x", **config
    )
    return HubSpotReader.with_token(
        settings, lambda _refresh: DEFAULT_TOKENS[Crm.HUBSPOT], connect_timeout=1, timeout=2
    )


def attio(crm: CrmStandIn) -> AttioReader:
    settings = AttioReadConfig(api_url=crm.base_url, api_token_secret_id="x")
    return AttioReader.with_token(settings, lambda _refresh: DEFAULT_TOKENS[Crm.ATTIO], connect_timeout=1, timeout=2)


@pytest.mark.parametrize("version", ["2026-09", "v3"])
def test_hubspot_reads_a_contacts_mapped_properties_dated_by_its_last_modification(
    crm: CrmStandIn, version: str
) -> None:
    # Given a HubSpot contact
    crm.put_record("hubspot", "51", VALUES, modified_at_ms=T0)

    # When it is read in the configured API version
    record = hubspot(crm, api_version=version).read("62515:51")

    # Then the mapped properties come back as fields, dated by updatedAt, from the version's path
    assert record is not None
    assert record.modified_at == T0
    assert record.values[ContactField.EMAIL] == "Ada@Example.com"
    assert record.values[ContactField.CUSTOMER_ID] == "customer_abc123"
    assert record.values[ContactField.MOBILE_PHONE] is None  # empty in HubSpot: read as cleared
    assert crm.records_read("hubspot")[-1].path == contact_path(version, "51")


def test_attio_reads_a_persons_active_values_dated_by_the_newest_of_them(crm: CrmStandIn) -> None:
    # Given an Attio person
    crm.put_record("attio", "bf071e1f-6035-429d-b874-d83ea64ea13b", VALUES, modified_at_ms=T0)

    # When it is read
    record = attio(crm).read(f"{WORKSPACE}:bf071e1f-6035-429d-b874-d83ea64ea13b")

    # Then its email, phone, location and customer id are the fields, as of the newest active value
    assert record is not None
    assert record.modified_at == T0
    assert record.values == {
        ContactField.EMAIL: "Ada@Example.com",
        ContactField.PHONE: "+1 312 555 0142",
        ContactField.CUSTOMER_ID: "customer_abc123",
        ContactField.LINE1: "233 S Wacker Dr",
        ContactField.LINE2: None,
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60606",
        ContactField.COUNTRY: "US",
    }


@pytest.mark.parametrize("reader", [hubspot, attio])
def test_a_record_the_crm_no_longer_has_reads_as_none(crm: CrmStandIn, reader: object) -> None:
    # Given no such record, When it is read, Then the reader says it is gone (not an error to retry)
    assert reader(crm).read(f"{WORKSPACE}:404") is None  # type: ignore[operator]


@pytest.mark.parametrize(("status", "retry_after"), [(429, 7), (503, None)])
def test_a_crm_that_cannot_answer_is_unavailable_with_its_retry_after(
    crm: CrmStandIn, status: int, retry_after: int | None
) -> None:
    # Given HubSpot answering the next read with a transient failure
    crm.put_record("hubspot", "51", VALUES, modified_at_ms=T0)
    crm.fail_next(1, status, retry_after=retry_after, crm="hubspot")

    # When the contact is read, Then the read is unavailable, with the wait HubSpot asked for
    with pytest.raises(CrmUnavailable) as raised:
        hubspot(crm).read("62515:51")
    assert raised.value.retry_after == retry_after


def test_a_token_refused_twice_is_unavailable_and_read_again_once(crm: CrmStandIn) -> None:
    # Given a HubSpot that accepts another token than the one the reader has, even when read again
    crm.put_record("hubspot", "51", VALUES, modified_at_ms=T0)
    crm.rotate_token("hubspot", "another-token")
    asked: list[bool] = []

    def token(refresh: bool) -> str:
        asked.append(refresh)
        return DEFAULT_TOKENS[Crm.HUBSPOT]

    settings = HubSpotReadConfig(read_mode=ReadMode.WHEN_INCOMPLETE, api_url=crm.base_url, api_token_secret_id="x")
    reader = HubSpotReader.with_token(settings, token, connect_timeout=1, timeout=2)

    # When the contact is read, Then the token was read again once, and the read is unavailable
    with pytest.raises(CrmUnavailable, match="refused the API token"):
        reader.read("62515:51")
    assert asked == [False, True]


def test_a_read_mode_without_a_token_secret_is_a_configuration_error() -> None:
    # Given a read mode but no token, When the settings are read, Then they are refused naming the parameter
    with pytest.raises(ValueError, match="HubSpotApiTokenSecretArn"):
        HubSpotReadConfig(read_mode=ReadMode.ALWAYS)
    with pytest.raises(ValueError, match="AttioApiTokenSecretArn"):
        AttioReadConfig()


def test_a_reader_built_for_deliver_serves_its_threads_at_once(
    crm: CrmStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given HubSpot's reader as deliver builds it (10 threads, 2 s timeouts) and a HubSpot answering in 0.4 s
    for name, value in {
        "TABLE_NAME": "events",
        "QUEUE_URL": "https://sqs.local/changes.fifo",
        "SPHERE_API_URL": "https://sphere.local",
        "SPHERE_TOKEN_SECRET_ID": "sphere",
        "SPHERE_TIMEOUT_SECONDS": "2",
        "DELIVER_THREADS": "10",
        "HUBSPOT_READ_MODE": "fetch-when-incomplete",
        "HUBSPOT_API_TOKEN_SECRET_ID": "hubspot-token",
        "HUBSPOT_API_URL": crm.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    monkeypatch.setattr("webhook_adapter.readers.api.read_secret", lambda *_, **__: DEFAULT_TOKENS[Crm.HUBSPOT])
    reading = hubspot_build(deliver_settings())
    assert reading.reader is not None
    for number in range(10):
        crm.put_record("hubspot", str(number), VALUES, modified_at_ms=T0)
    crm.set_latency(0.4)

    # When its ten threads read ten contacts at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        records = list(pool.map(lambda number: reading.reader.read(f"62515:{number}"), range(10)))  # type: ignore[union-attr]

    # Then every read is answered, each thread on a connection of its own: reads wait for HubSpot together, not
    # in turn behind one shared connection (where, under load, the later ones timed out: the chaos load in CI)
    assert all(record is not None for record in records)
    assert crm.connection_count == 10
