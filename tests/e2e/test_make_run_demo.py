"""``make run``'s demo, as a newcomer sees it: every demo webhook answered and every outcome printed."""

from __future__ import annotations

from devstack.demo import HEADER, OutcomePrinter, outcome_line, run_demo
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

    # Then deliver settled every queued event (HubSpot's and the generic source's 14, then each other source's
    # sample), with the outcome the demo is there to show, each source answered in its own format
    samples = [vendor(source) for source in VENDORS if source not in {"hubspot", "generic"}]
    assert settled == 14 + sum(kit.sample_expectation().queued for kit in samples)
    text = "\n".join(lines)
    assert "receive      200 <soapenv:Envelope" in text  # Salesforce's SOAP acknowledgement
    assert "completed by reading the CRM's record (redacted)" in text  # a redacted value read from HubSpot
    assert "receive      202" in text
    assert "receive      401" in text  # the forged signature
    assert "(still on their way" not in text  # each request's events settled before the next heading
    outcomes = [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("  receive")]
    assert set(outcomes) == {
        "STATUS",  # the header
        "delivered",
        "duplicate",
        "superseded",
        "unmapped",
        "unchanged",
        "ignored",
        "refused",
        "rejected",
    }
    assert "customer/business-no" in text


def test_an_outcome_line_keeps_its_columns_whatever_its_fields_and_detail() -> None:
    # Given an event with many fields and a long reason, and one with few
    many = [f"field_{index}" for index in range(12)]
    long_line = outcome_line("delivered", "hubspot-workflow", many, "a reason " * 20, "event-1 (contact-1)")
    short_line = outcome_line("ignored", "hubspot", [], "not mapped", "event-2 (contact-2)")

    # Then both put the ids where the header says, the fields cut with a count of the rest, the detail with "…"
    column = HEADER.index("EVENT ID")
    assert long_line[column:] == "event-1 (contact-1)"
    assert short_line[column:] == "event-2 (contact-2)"
    fields = long_line[HEADER.index("FIELDS") : HEADER.index("DETAIL")].split()
    shown, rest = fields[0].split(","), int(fields[1].removeprefix("+"))
    assert shown == many[: len(shown)]
    assert len(shown) + rest == len(many)
    assert long_line[column - 2 : column] == "… "
    assert short_line.split()[2] == "-"
