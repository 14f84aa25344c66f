"""Secrets never leave Secrets Manager, and contact details stay where the README says they are stored.

One whole flow through the real handlers (moto, the Sphere stand-in), at the service's DEBUG level
and at the template's default level, with recognizable values planted everywhere a leak could
start: the Sphere API key (before and after a rotation), the HubSpot and generic signing secrets,
and a contact's email, phone and tax number, the tax number in a HubSpot property and a generic
field that are not mapped, the email and phone echoed back in a Sphere 4xx ``detail``.

Everything the adapter leaves behind is then searched: every log line (stdout, where Powertools
writes its JSON, and every record of the ``logging`` module), every answer's body, every item of
the table and every SQS message body. The only places a contact detail may appear are the
contact's state item (README, "Outcome statuses": the only unmasked copies) and the queue's
message bodies, which carry the changed values to the deliver function by design (encrypted at
rest, kept at most 14 days). A secret may appear nowhere.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from devstack.crm import generic_request, hubspot_event, hubspot_request
from devstack.pipeline import PUBLIC_BASE_URL, Pipeline
from devstack.sphere_standin import SEED_INDIVIDUAL_ID, SphereStandIn
from webhook_adapter import runtime
from webhook_adapter.enqueue import ChangeQueue, QueueMessage
from webhook_adapter.signatures import sign_hubspot_v3
from webhook_adapter.store import STATE_SK

SPHERE_TOKEN = "sphere-token-PLANTED-5b1f0c2e"
ROTATED_SPHERE_TOKEN = "sphere-token-ROTATED-9d2e47a1"
HUBSPOT_SECRET = "hubspot-client-secret-PLANTED-41c7"
GENERIC_KEY = "generic-signing-key-PLANTED-77e0"
GENERIC_SECRET_BASE64 = base64.b64encode(GENERIC_KEY.encode()).decode()
GENERIC_SECRET = f"whsec_{GENERIC_SECRET_BASE64}"
FORGING_SECRET = "forging-secret-PLANTED-0bad"

EMAIL = "ada.planted.4417@example.com"
PHONE = "(312) 555-0147"
PHONE_E164 = "+13125550147"
TAX_NUMBER = "987-65-4329"

SECRETS = {
    "Sphere API key": SPHERE_TOKEN,
    "rotated Sphere API key": ROTATED_SPHERE_TOKEN,
    "HubSpot client secret": HUBSPOT_SECRET,
    "generic signing secret": GENERIC_SECRET,
    "generic signing secret's base64": GENERIC_SECRET_BASE64,
    "generic signing key": GENERIC_KEY,
    "forging secret": FORGING_SECRET,
}
CONTACT_DETAILS = {"email": EMAIL, "phone": PHONE, "phone in E.164": PHONE_E164, "tax number": TAX_NUMBER}

HUBSPOT_URL = f"{PUBLIC_BASE_URL}/webhooks/hubspot"
GENERIC_CUSTOMER = "customer_5ec2e7a1"
ROTATION_CUSTOMER = "customer_5ec2e7a2"
STATE_ITEM = "contact state item"
QUEUE = "SQS message body"
ALLOWED_FOR_CONTACT_DETAILS = (STATE_ITEM, QUEUE)
"""Where the README says a contact's details are kept unmasked, and where they travel by design."""


# ------------------------------------------------------------------------------------------------- capture


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is now (pytest swaps it for every test phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class _EveryRecord(logging.Handler):
    """Keeps every record that reaches the root logger, with all it carries (message, arguments, extras)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(
            f"{record.name} {record.getMessage()} {record.__dict__}"
            for record in self.records
            if not record.name.startswith(("devstack", "moto", "werkzeug"))  # the stand-ins, not the adapter
        )


@pytest.fixture
def every_log_line(monkeypatch: pytest.MonkeyPatch) -> Iterator[_EveryRecord]:
    """Powertools' JSON lines sent to the captured stdout, and every ``logging`` record kept."""
    import deliver.app  # noqa: F401 - creates the service logger and its stdout handler
    import receive.app  # noqa: F401

    service = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    streams = [handler for handler in service.handlers if isinstance(handler, logging.StreamHandler)]
    assert streams, "the Powertools logger has no stream handler"
    for handler in streams:
        monkeypatch.setattr(handler, "stream", _CurrentStdout())
    keeper = _EveryRecord()
    root = logging.getLogger()
    root.addHandler(keeper)
    yield keeper
    root.removeHandler(keeper)


@pytest.fixture(params=["DEBUG", "INFO"], ids=["service-debug", "template-default-info"])
def log_level(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``POWERTOOLS_LOG_LEVEL`` for this run, also applied to the service's loggers, built at import with their level.

    The root logger keeps the level the Lambda runtime gives it without Advanced Logging Controls (WARNING),
    so libraries log what they would log in the deployed functions.
    """
    level: str = request.param
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", level)
    import deliver.app  # noqa: F401 - creates the service logger at its import-time level
    import receive.app  # noqa: F401

    service = os.environ["POWERTOOLS_SERVICE_NAME"]
    loggers = [logging.getLogger()] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.split(".")[0] == service
    ]
    kept = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING if logger is logging.getLogger() else level)
    runtime.reset()
    yield level
    for logger, previous in zip(loggers, kept, strict=True):
        logger.setLevel(previous)


@dataclass
class SentMessages:
    """Message bodies the receive function put on the queue."""

    bodies: list[str] = field(default_factory=list)


@pytest.fixture
def queue_bodies(monkeypatch: pytest.MonkeyPatch) -> SentMessages:
    """Every SQS message body the receive function sends (what the deliver function is then handed)."""
    sent = SentMessages()
    original = ChangeQueue.send

    def keep(queue: ChangeQueue, messages: Sequence[QueueMessage]) -> None:
        sent.bodies.extend(message.body for message in messages)
        original(queue, messages)

    monkeypatch.setattr(ChangeQueue, "send", keep)
    return sent


def table_items(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every item of the table, as DynamoDB holds it."""
    client = pipeline.store.client
    pages = client.get_paginator("scan").paginate(TableName=pipeline.resources.table_name)
    return [item for page in pages for item in page["Items"]]


def is_contact_state(item: dict[str, Any]) -> bool:
    """The item holding a contact's merged fields: the README's one place for unmasked contact details."""
    return item.get("sk") == {"S": STATE_SK}


def places(pipeline: Pipeline, answers: list[dict[str, Any]], logs: str, queue: SentMessages) -> dict[str, str]:
    """Each place the adapter leaves text, by a name saying what it is (a table item per attribute)."""
    found = {"logs": logs, "answers": json.dumps(answers)}
    for index, body in enumerate(queue.bodies):
        found[f"{QUEUE} {index}"] = body
    for item in table_items(pipeline):
        kind = STATE_ITEM if is_contact_state(item) else "item"
        for name, value in item.items():
            found[f"{kind} {item['pk']['S']} .{name}"] = json.dumps(value)
    return found


def holding(value: str, where: dict[str, str]) -> list[str]:
    return sorted(place for place, text in where.items() if value in text)


# ------------------------------------------------------------------------------------------------- the flow


def plant_secrets(standin: SphereStandIn) -> None:
    """Store recognizable secrets where the functions read them, and have Sphere accept the planted key."""
    secretsmanager = boto3.client("secretsmanager")
    for variable, value in {
        "SPHERE_TOKEN_SECRET_ID": SPHERE_TOKEN,
        "HUBSPOT_SECRET_ID": HUBSPOT_SECRET,
        "GENERIC_SECRET_ID": GENERIC_SECRET,
    }.items():
        secretsmanager.put_secret_value(SecretId=os.environ[variable], SecretString=value)
    standin.rotate_token(SPHERE_TOKEN)
    runtime.reset()


def hubspot_contact(object_id: int, *, at: int, **properties: str) -> list[dict[str, Any]]:
    """One HubSpot change per property, a millisecond apart, with ids of their own."""
    return [
        hubspot_event(object_id, name, value, occurred_at=at + offset, event_id=object_id * 100 + offset)
        for offset, (name, value) in enumerate(properties.items())
    ]


@dataclass
class Crm:
    """Posts signed webhooks through the receive handler, keeping every answer and every signature it made."""

    pipeline: Pipeline
    answers: list[dict[str, Any]] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)

    def _post(self, source: str, headers: dict[str, str], body: bytes) -> None:
        answer = self.pipeline.post(source, headers, body)
        self.answers.append({"status": answer.status, "body": answer.body, "headers": answer.headers})

    def hubspot(self, events: list[dict[str, Any]], *, secret: str = HUBSPOT_SECRET) -> None:
        headers, body = hubspot_request(events, secret=secret, url=HUBSPOT_URL)
        self.signatures.append(headers["X-HubSpot-Signature-v3"])
        self._post("hubspot", headers, body)

    def hubspot_body(self, body: bytes) -> None:
        """A HubSpot request with a body ``hubspot_request`` would not build (values of the wrong types)."""
        timestamp = str(int(time.time() * 1000))
        signature = sign_hubspot_v3(
            secret=HUBSPOT_SECRET, method="POST", uri=HUBSPOT_URL, body=body, timestamp=timestamp
        )
        self.signatures.append(signature)
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": timestamp,
        }
        self._post("hubspot", headers, body)

    def generic(self, payload: dict[str, Any]) -> None:
        headers, body = generic_request(payload, secret=GENERIC_SECRET)
        self.signatures.append(headers["webhook-signature"])
        self._post("generic", headers, body)


def run_flow(pipeline: Pipeline) -> Crm:
    """Accepted, forged and invalid webhooks, a Sphere 4xx, a 5xx retried, a rotated key."""
    standin = pipeline.standin
    standin.add_customer(GENERIC_CUSTOMER)
    standin.add_customer(ROTATION_CUSTOMER)
    plant_secrets(standin)
    crm = Crm(pipeline)
    start = 1_790_000_000_000

    # A HubSpot contact (its tax number in a property that is not mapped), the same batch forged, an invalid one
    contact = hubspot_contact(
        901, at=start, sphere_customer_id=SEED_INDIVIDUAL_ID, email=EMAIL, phone=PHONE, tax_id=TAX_NUMBER
    )
    crm.hubspot(contact)
    crm.hubspot(contact, secret=FORGING_SECRET)
    invalid = [
        {**hubspot_event(902, "email", None, occurred_at=start, event_id=90_201), "propertyValue": {"v": EMAIL}},
        {**hubspot_event(902, "phone", PHONE, occurred_at=start, event_id=90_202), "occurredAt": TAX_NUMBER},
    ]
    crm.hubspot_body(json.dumps(invalid).encode())
    # Sphere refuses it with a detail that echoes the email and the phone
    standin.fail_next(
        1,
        422,
        body={
            "status": 422,
            "code": "validation/failed",
            "detail": f"Invalid field: email {EMAIL} or phone {PHONE_E164}",
            "correlationId": "5ec2e7c0ffee",
        },
    )
    pipeline.drain()

    # A generic contact (its tax number in a field that is not mapped), then an invalid one
    crm.generic(
        {"id": "crm-903", "sphereCustomerId": GENERIC_CUSTOMER, "email": EMAIL, "phone": PHONE, "taxId": TAX_NUMBER}
    )
    crm.generic({"id": "crm-904", "email": [EMAIL], "phone": {"n": PHONE}, "taxId": TAX_NUMBER})
    # Sphere is unavailable once: the change is retried
    standin.fail_next(1, 503)
    pipeline.drain()

    # The key is rotated at Sphere and in Secrets Manager: the next change meets a 401 with the cached key
    standin.rotate_token(ROTATED_SPHERE_TOKEN)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=os.environ["SPHERE_TOKEN_SECRET_ID"], SecretString=ROTATED_SPHERE_TOKEN
    )
    crm.hubspot(hubspot_contact(905, at=start + 10_000, sphere_customer_id=ROTATION_CUSTOMER, mobilephone=PHONE))
    pipeline.drain()
    return crm


# ------------------------------------------------------------------------------------------------- the test


def test_no_secret_anywhere_and_contact_details_only_in_the_contact_state_and_the_queue(
    pipeline: Pipeline,
    log_level: str,
    every_log_line: _EveryRecord,
    queue_bodies: SentMessages,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given recognizable secrets and contact details planted in every input, and the service logging at this level
    adapter_logger = logging.getLogger(f"{os.environ['POWERTOOLS_SERVICE_NAME']}.webhook_adapter.deliver")
    assert adapter_logger.getEffectiveLevel() == logging.getLevelName(log_level)

    # When the whole flow runs: accepted, forged and invalid webhooks, a Sphere 4xx, a 5xx retry, a key rotation
    crm = run_flow(pipeline)
    answers = crm.answers

    # Then the flow went where it was meant to (so the search below searched something)
    assert [answer["status"] for answer in answers] == [202, 401, 202, 202, 400, 202]
    statuses = [request.status for request in pipeline.standin.requests]
    assert statuses == [422, 503, 200, 401, 200], statuses
    assert pipeline.standin.requests[-1].headers["authorization"] == f"Bearer {ROTATED_SPHERE_TOKEN}"
    captured = capfd.readouterr()
    logs = captured.out + captured.err + every_log_line.text()
    assert '"message":"webhook refused"' in captured.out, "Powertools' JSON lines were not captured"
    assert "webhook refused" in every_log_line.text(), "the logging records were not captured"
    assert "delivery failed, will retry" in logs
    assert len(queue_bodies.bodies) >= 3, "the queue's message bodies were not captured"
    where = places(pipeline, answers, logs, queue_bodies)
    # (and it finds a planted value where it is meant to be)
    assert any(place.startswith(STATE_ITEM) for place in holding(EMAIL, where))
    assert any(place.startswith(QUEUE) for place in holding(PHONE, where))

    # And no secret, nor a signature made with one, is anywhere
    forbidden = {**SECRETS, **{f"signature {index}": value for index, value in enumerate(crm.signatures)}}
    leaks = {what: found for what, value in forbidden.items() if (found := holding(value, where))}
    assert not leaks, "secrets found:\n" + json.dumps(leaks, indent=1)

    # And the contact details are only in the contact's state item and on the queue
    # (fails while deliver records Sphere's 4xx ``detail`` verbatim in the event's ``sphere.detail``: it echoes them)
    misplaced = {
        what: found
        for what, value in CONTACT_DETAILS.items()
        if (found := [place for place in holding(value, where) if not place.startswith(ALLOWED_FOR_CONTACT_DETAILS)])
    }
    assert not misplaced, "contact details outside the contact state and the queue:\n" + json.dumps(misplaced, indent=1)


def test_sdk_loggers_stay_quiet_when_the_root_logger_is_at_debug() -> None:
    # Given Lambda's log level set to DEBUG (its advanced logging controls set the root logger)
    from webhook_adapter.aws import QUIET_LOGGERS

    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.DEBUG)
    try:
        # Then the SDKs that would write request and response bodies (secrets, contact details) do not
        assert {name: logging.getLogger(name).getEffectiveLevel() for name in QUIET_LOGGERS} == dict.fromkeys(
            QUIET_LOGGERS, logging.WARNING
        )
    finally:
        root.setLevel(saved)
