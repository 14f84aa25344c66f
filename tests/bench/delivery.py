"""Measure 3: delivery throughput today, against the Sphere stand-in answering after 100 ms.

Many contacts whose Sphere id is already known each get one email change (one webhook, one queued
message, one PATCH). The deliver handler is then invoked as the event source mapping does, with
batches of the template's ``BatchSize`` taken from the queue, and each invocation's wall time is
measured: events per second per invocation. The bound is batch size × ``MaximumConcurrency`` ÷
latency: what the system would reach if every invocation kept a full batch in flight at once.
Moto's own time is reported beside it (with real AWS each call would take a few ms instead).
"""

# ruff: noqa: RUF001, RUF002 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report import Section

__all__ = ["SPHERE_LATENCY_SECONDS", "collect", "delivery_section", "mapping_settings"]

SPHERE_LATENCY_SECONDS = 0.1


def mapping_settings() -> tuple[int, int]:
    """The deliver event source mapping's ``BatchSize`` and ``MaximumConcurrency``, from the template's defaults."""
    from devstack.resources import Resolver, load_template

    template = load_template()
    mapping = template["Resources"]["DeliverFunction"]["Properties"]["Events"]["Changes"]["Properties"]
    concurrency = Resolver(template, {}).resolve(mapping["ScalingConfig"]["MaximumConcurrency"])
    return int(mapping["BatchSize"]), int(concurrency)


def collect(options: dict[str, Any]) -> dict[str, Any]:
    """Deliver ``options["batches"]`` full batches at 100 ms Sphere latency; per-invocation rates and counts."""
    from bench.local_aws import local_aws
    from bench.moto_meter import MotoMeter
    from bench.workload import customer_id, single_change

    batch_size, concurrency = mapping_settings()
    batches = int(options["batches"])
    contacts = range(1, batches * batch_size + 1)
    with local_aws(MotoMeter.install()) as stack:
        for number in contacts:
            stack.standin.add_customer(customer_id(number))
        for start in range(contacts.start, contacts.stop, batch_size):
            ids = [
                single_change(n, "sphere_customer_id", customer_id(n), at=1_000)[0]
                for n in range(start, start + batch_size)
            ]
            stack.post(ids)
        stack.drain()
        for number in contacts:
            stack.post(single_change(number, "email", f"user{number}@example.com", at=2_000))
        stack.forget()
        patches_before, connections_before = len(stack.standin.patches()), stack.standin.connection_count
        stack.standin.set_latency(SPHERE_LATENCY_SECONDS)
        runs = []
        for _ in range(batches):
            messages, records = stack.receive_batch(batch_size)
            failed = stack.deliver_batch(messages, records)
            invocation = stack.invocations[-1]
            runs.append(
                {
                    "messages": len(messages),
                    "failed": len(failed),
                    "wall_ms": invocation.wall_ms,
                    "moto_ms": invocation.moto_ms,
                }
            )
        return {
            "runs": runs,
            "batch_size": batch_size,
            "concurrency": concurrency,
            "latency_s": SPHERE_LATENCY_SECONDS,
            "patches": len(stack.standin.patches()) - patches_before,
            "connections": stack.standin.connection_count - connections_before,
        }


def delivery_section(raw: dict[str, Any]) -> Section:
    """Measure 3's rows: events per second per invocation against the bound."""
    from bench.report import Row, Section
    from bench.stats import Summary

    size, concurrency, latency = raw["batch_size"], raw["concurrency"], raw["latency_s"]
    rates = Summary.of([run["messages"] / (run["wall_ms"] / 1000) for run in raw["runs"]])
    moto = Summary.of([run["moto_ms"] for run in raw["runs"]])
    per_invocation_bound = size / latency
    bound = size * concurrency / latency
    failed = sum(run["failed"] for run in raw["runs"])
    rows = [
        Row(
            "3",
            f"deliver events/s per invocation (batches of {size}, Sphere at {latency * 1000:.0f} ms)",
            f"{rates.median:.2f}/s",
            rates.spread("/s", 2),
            f"{per_invocation_bound:.0f}/s ({size} ÷ {latency:g} s)",
            f"{rates.median / per_invocation_bound:.1%}",
            "≥ 80 %",
        ),
        Row(
            "3",
            f"whole system at MaximumConcurrency {concurrency}",
            f"{rates.median * concurrency:.0f}/s",
            "",
            f"{bound:.0f}/s ({size} × {concurrency} ÷ {latency:g} s)",
            f"{rates.median * concurrency / bound:.1%}",
            "≥ 80 %",
        ),
    ]
    method = [
        f"{len(raw['runs']) * size} contacts whose Sphere id is already known each get one email change (one "
        "webhook, one message, one PATCH); the real receive handler queues them on moto. The deliver handler is "
        f"then invoked {len(raw['runs'])} times, as the event source mapping does, with {size} messages from the "
        f"queue each, the stand-in answering every call after {latency * 1000:.0f} ms (`set_latency`). Events/s per "
        "invocation = messages ÷ the invocation's wall time; the system figure assumes the "
        f"{concurrency} concurrent invocations the template allows scale linearly. Moto's own time inside an "
        f"invocation: median {moto.median:.0f} ms (included: real AWS calls take a few ms each too). Sphere calls "
        f"made: {raw['patches']}, on {raw['connections']} TCP connection(s) at the stand-in; "
        f"messages failed: {failed}. "
        "Today the messages of a batch are delivered one after the other, so an invocation cannot beat "
        f"1 ÷ {latency:g} s = {1 / latency:.0f} events/s.",
    ]
    return Section("3", "Delivery throughput", rows, method)
