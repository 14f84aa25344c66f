"""Measure 4: what a million events cost, from the calls and bytes counted in a full in-process run.

Three scenarios replay HubSpot traffic through both real handlers on moto and the stand-ins:
``single`` (contacts already known, one change per webhook), ``batch`` (batches of 100 events over
10 new contacts) and ``read`` (one redacted email per webhook, HubSpot read
``fetch-when-incomplete``: each delivery reads the contact from the CRM stand-in first). Each runs
twice in a fresh stack: once timed (durations less moto's own time, log bytes written to standard
output, every AWS request and its 64 KB chunks, the event source mapping's receives and deletes,
Sphere calls, CRM reads) and once metered (DynamoDB write units with ``WriteMeter``, read units with
``ReadMeter``, item sizes), because the meters' own reads would otherwise be timed too. ``price``
turns the counts into dollars with ``bench.prices``.
"""

from __future__ import annotations

import io
import math
import statistics
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.local_aws import LocalAWS

__all__ = ["SCENARIOS", "CountingStdout", "collect"]

SCENARIOS = ("single", "batch", "read")

_CHUNK = 64 * 1024


class CountingStdout(io.TextIOBase):
    """Standard output that counts the bytes written to it (the functions' log lines) and drops them."""

    def __init__(self) -> None:
        self.bytes_written = 0

    def write(self, text: str) -> int:
        """Count ``text`` in UTF-8."""
        self.bytes_written += len(text.encode("utf-8", errors="replace"))
        return len(text)


def _traffic(stack: LocalAWS, name: str, rounds: int, contacts: range) -> int:
    """Send the scenario's counted traffic and drain it; the number of CRM events sent."""
    from bench.workload import customer_id, hubspot_batch, single_change

    events = 0
    for round_number in range(rounds):
        if name == "single":
            for step, prop in enumerate(("email", "phone", "email")):
                for number in contacts:
                    value = (
                        f"user{number}.{round_number}.{step}@example.com"
                        if prop == "email"
                        else f"+1 312 555 {(round_number * 100 + number) % 10_000:04d}"
                    )
                    stack.post(single_change(number, prop, value, at=2_000 + round_number * 10 + step))
                    events += 1
                # Each step is delivered before a contact's next change arrives: one PATCH per change, as when
                # webhooks trickle in (a backlog would coalesce a contact's changes into fewer PATCHes).
                stack.drain()
        elif name == "read":
            for number in contacts:
                at = 2_000 + round_number * 10
                email = f"user{number}.{round_number}@example.com"
                record = {"customer_id": customer_id(number), "email": email}
                stack.crm.put_record("hubspot", str(number), record, modified_at_ms=at + 1)
                stack.post(single_change(number, "email", "REDACTED", at=at))
                events += 1
        else:
            first = 100 + round_number * 10
            for number in range(first, first + 10):
                stack.standin.add_customer(customer_id(number))
            stack.post(hubspot_batch(first))
            events += 100
        stack.drain()
    return events


def _warm_up(stack: LocalAWS, name: str, contacts: range) -> None:
    """Traffic that is not counted: single changes' contacts learn their Sphere id; one batch warms caches."""
    from bench.workload import customer_id, hubspot_batch, single_change

    if name in {"single", "read"}:
        for number in contacts:
            stack.standin.add_customer(customer_id(number))
        stack.post([single_change(n, "sphere_customer_id", customer_id(n), at=1_000)[0] for n in contacts])
    else:
        for number in range(9_000, 9_010):
            stack.standin.add_customer(customer_id(number))
        stack.post(hubspot_batch(9_000))
    stack.drain()
    stack.forget()


def _function_counts(stack: LocalAWS, function: str) -> dict[str, Any]:
    invocations = [invocation for invocation in stack.invocations if invocation.function == function]
    calls: Counter[str] = Counter()
    chunks: Counter[str] = Counter()
    for invocation in invocations:
        calls.update(invocation.aws_calls)
        chunks.update(invocation.aws_chunks)
    return {
        "invocations": len(invocations),
        "net_ms": [invocation.net_ms for invocation in invocations],
        "moto_ms": sum(invocation.moto_ms for invocation in invocations),
        "log_bytes": sum(invocation.log_bytes for invocation in invocations),
        "sphere_calls": [invocation.sphere_calls for invocation in invocations],
        "crm_reads": [invocation.crm_reads for invocation in invocations],
        "aws_calls": dict(calls),
        "aws_chunks": dict(chunks),
    }


def _units(stack: LocalAWS, name: str, rounds: int, contacts: range) -> dict[str, Any]:
    """The scenario's traffic with DynamoDB's write and read units metered, and the items' sizes after it."""
    import boto3

    from devstack.read_units import ReadMeter
    from devstack.write_units import WriteMeter, item_size
    from webhook_adapter import aws
    from webhook_adapter.store import STATUS_INDEX

    reader = boto3.session.Session().client("dynamodb")
    table = stack.resources.table_name
    writes = WriteMeter(reader=reader, table=table, indexes={STATUS_INDEX: ("status_bucket", "status_at")})
    reads = ReadMeter(reader=reader, table=table)
    client = aws.dynamodb()
    with writes.watching(client), reads.watching(client):
        events = _traffic(stack, name, rounds, contacts)
    items = [item for item in reader.scan(TableName=table)["Items"] if item["sk"]["S"].startswith("E#")]
    return {
        "events": events,
        "write_table": writes.table_units,
        "write_index": writes.index_units,
        "write_calls": writes.calls,
        "read": reads.units,
        "read_keys": reads.keys,
        "read_missing": reads.missing,
        "max_item_bytes": max(writes.sizes, default=0),
        "event_item_bytes": statistics.mean(item_size(item) for item in items) if items else 0,
        "indexed_share": sum("status_bucket" in item for item in items) / max(1, len(items)),
    }


def collect(options: dict[str, Any]) -> dict[str, Any]:
    """Every scenario, each in a fresh stack timed, then in another metered."""
    from bench.local_aws import local_aws
    from bench.moto_meter import MotoMeter

    sys.stdout = CountingStdout()
    rounds = int(options["rounds"])
    contacts = range(1, 1 + int(options["contacts"]))
    meter = MotoMeter.install()
    result: dict[str, Any] = {}
    for name in SCENARIOS:
        environment = {"HUBSPOT_READ_MODE": "fetch-when-incomplete"} if name == "read" else {}
        with local_aws(meter, environment=environment) as stack:
            _warm_up(stack, name, contacts)
            patches = len(stack.standin.patches())
            events = _traffic(stack, name, rounds, contacts)
            result[name] = {
                "events": events,
                "webhooks": sum(1 for invocation in stack.invocations if invocation.function == "receive"),
                "messages": stack.messages_delivered,
                "sphere_calls": len(stack.standin.patches()) - patches,
                "crm_reads": sum(invocation.crm_reads for invocation in stack.invocations),
                "esm_requests": dict(stack.esm_requests),
                "esm_chunks": sum(max(1, math.ceil(size / _CHUNK)) for size in stack.esm_payload_bytes),
                "receive": _function_counts(stack, "receive"),
                "deliver": _function_counts(stack, "deliver"),
            }
        with local_aws(meter, environment=environment) as stack:
            _warm_up(stack, name, contacts)
            result[name]["units"] = _units(stack, name, rounds, contacts)
    return result
