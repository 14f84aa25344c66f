"""``make run``'s demo, as a newcomer sees it: every demo webhook answered and every outcome printed."""

from __future__ import annotations

from devstack.demo import OutcomePrinter, run_demo
from devstack.stack import LocalStack, StackOptions
from devstack.vendors import VENDORS, vendor


def test_the_demo_settles_every_event_and_prints_each_outcome() -> None:
    # Given the local stack as `make run` starts it, printing outcomes into a list
    lines: list[str] = []
    printer = OutcomePrinter(say=lines.append)
    environment = {"HUBSPOT_READ_MODE": "fetch-when-incomplete"}  # as make run sets it
    with LocalStack(StackOptions(port=0, on_batch=printer, environment=environment)) as stack:
        printer.stack = stack

        # When the demo plays
        settled = run_demo(stack, printer, say=lines.append)

    # Then every queued event settled (HubSpot's and the generic source's 13, then each other source's sample),
    # with the outcome the demo is there to show, each source answered in its own format
    samples = [vendor(source) for source in VENDORS if source not in {"hubspot", "generic"}]
    assert settled == 13 + sum(kit.sample_expectation().queued for kit in samples)
    text = "\n".join(lines)
    assert "<Ack>true</Ack>" in text  # Salesforce's SOAP acknowledgement
    assert "completed by reading the CRM's record (redacted)" in text  # a redacted value read from HubSpot
    assert "receive  202" in text
    assert "receive  401" in text  # the forged signature
    assert '"duplicates": [' in text  # HubSpot's retry
    delivered = [line.split() for line in lines if line.startswith("  deliver")]
    statuses = {tokens[5] for tokens in delivered}  # deliver, source, "contact", id, fields, status, detail
    assert statuses == {"delivered", "superseded", "unmapped", "rejected"}
    assert "customer/business-not-supported" in text
