"""Business metrics: counted during an invocation, written once per set of dimensions at its end."""

from __future__ import annotations

import json
import threading

import pytest

from webhook_adapter import telemetry


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    telemetry.flush()


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def test_an_invocations_counts_are_one_line_per_set_of_dimensions(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a handler that counts ten delivered events one by one, from several threads, and one refused
    @telemetry.flushed
    def handler() -> str:
        workers = [
            threading.Thread(
                target=telemetry.count, args=("EventOutcome", 1), kwargs={"source": "hubspot", "status": "delivered"}
            )
            for _ in range(10)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        telemetry.count("EventOutcome", 1, source="hubspot", status="refused")
        return "done"

    # When it runs
    assert handler() == "done"

    # Then two lines were written, one per status, with the totals
    lines = emitted(capsys)
    totals = sorted((line["status"], line["EventOutcome"]) for line in lines)
    assert totals == [("delivered", [10.0]), ("refused", [1.0])]


def test_counts_are_written_when_the_handler_raises(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a handler that counts, then fails
    @telemetry.flushed
    def handler() -> None:
        telemetry.count("EventsAccepted", 3, source="generic")
        raise RuntimeError("boom")

    # When it runs
    with pytest.raises(RuntimeError):
        handler()

    # Then its count was still written, once, and nothing is left for the next invocation
    assert [line["EventsAccepted"] for line in emitted(capsys)] == [[3.0]]
    telemetry.flush()
    assert emitted(capsys) == []


def test_nothing_is_written_while_metrics_are_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given metrics turned off, as on the local stack
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    # When a count is made and flushed
    telemetry.count("EventsAccepted", 1, source="hubspot")
    telemetry.flush()

    # Then nothing was printed
    assert emitted(capsys) == []


def test_each_line_also_declares_the_totals_without_the_source(capsys: pytest.CaptureFixture[str]) -> None:
    # Given counts of two sources in one status, and one without any other dimension
    telemetry.count("EventOutcome", 2, source="hubspot", status="rejected")
    telemetry.count("EventOutcome", 1, source="generic", status="rejected")
    telemetry.count("EventsAccepted", 3, source="generic")

    # When they are flushed
    telemetry.flush()

    # Then each line declares its own dimensions and the same without the source (what the alarms read)
    declared = {
        (line.get("status"), line["source"]): line["_aws"]["CloudWatchMetrics"][0]["Dimensions"]  # type: ignore[index]
        for line in emitted(capsys)
    }
    assert declared == {
        ("rejected", "hubspot"): [["source", "status", "service"], ["service", "status"]],
        ("rejected", "generic"): [["source", "status", "service"], ["service", "status"]],
        (None, "generic"): [["source", "service"], ["service"]],
    }


def test_timings_are_written_with_the_counts_of_their_dimensions_and_every_value_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an invocation's three delivered events, two with a latency, and 150 timings of Sphere's calls
    telemetry.count("EventOutcome", 3, source="hubspot", status="delivered")
    telemetry.observe_ms("EndToEndLatency", 1234.4, source="hubspot", status="delivered")
    telemetry.observe_ms("EndToEndLatency", -5, source="hubspot", status="delivered")  # clocks apart: zero
    for milliseconds in range(150):
        telemetry.observe_ms("SphereLatency", milliseconds, source="hubspot", status_class="2xx")

    # When they are flushed
    telemetry.flush()

    # Then the latencies share the count's line, in milliseconds
    lines = emitted(capsys)
    [delivered] = [line for line in lines if line.get("status") == "delivered"]
    assert (delivered["EventOutcome"], delivered["EndToEndLatency"]) == ([3.0], [1234.0, 0.0])
    units = {metric["Name"]: metric["Unit"] for metric in delivered["_aws"]["CloudWatchMetrics"][0]["Metrics"]}  # type: ignore[index]
    assert units == {"EventOutcome": "Count", "EndToEndLatency": "Milliseconds"}
    # And the 150 call timings are all written, at most 100 a line (the format's limit)
    calls = [line["SphereLatency"] for line in lines if "SphereLatency" in line]
    assert [len(values) for values in calls] == [100, 50]  # type: ignore[arg-type]
    assert sorted(value for values in calls for value in values) == [float(ms) for ms in range(150)]  # type: ignore[attr-defined]
