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
