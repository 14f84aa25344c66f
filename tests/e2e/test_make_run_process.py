"""``make run`` as a process: its console reads in order, its logs go to a file, and it stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from devstack.crm import generic_request
from devstack.demo import DEMO_CUSTOMER, HEADER
from devstack.resources import LOCAL_SECRETS

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0
STOP_SECONDS = 30.0


class Output:
    """Collects a process's output lines in a thread, so the test can wait for one with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line containing ``text`` printed from now; fail if the output ends or time runs out."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return line
        pytest.fail(f"make run did not print {text!r} in time; it printed {self.seen}")

    def rest(self, timeout: float) -> str:
        """Everything printed until the output ends."""
        self._thread.join(timeout)
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


def start(**variables: str) -> tuple[subprocess.Popen[str], Output]:
    """``make run``'s command (``python -m devstack``) in the background: SIGINT ignored, as a non-interactive
    shell leaves it, with these variables set."""
    environment = {
        **{name: value for name, value in os.environ.items() if name not in {"LOGS", "LOG_LEVEL", "DEMO"}},
        "PORT": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("layers/shared", "functions", "tests")),
        **variables,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - only sets a signal
    )
    return process, Output(process)


def stop(process: subprocess.Popen[str], output: Output) -> str:
    """SIGTERM, then everything it printed."""
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return output.rest(STOP_SECONDS)


def test_make_run_in_the_background_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # Given make run started in the background, no demo
    process, output = start(DEMO="0", RUN_LOG=str(tmp_path / "run.log"))
    output.wait_for("Serving webhooks", START_SECONDS)

    # When it is sent SIGTERM
    printed = stop(process, output)

    # Then it says it stops, stops its servers and exits 0
    assert "Stopping." in printed
    assert process.returncode == 0


def sections(printed: str) -> list[tuple[str, list[str]]]:
    """The output by request heading (``> ...``), in order: each heading and the lines under it."""
    found: list[tuple[str, list[str]]] = []
    for line in printed.splitlines():
        if line.startswith("> "):
            found.append((line[2:], []))
        elif line.startswith(("Serving webhooks", "Stopping.")):
            found.append(("", []))  # not a request's: dropped below
        elif found and line.strip():
            found[-1][1].append(line)
    return [(heading, under) for heading, under in found if heading]


def test_make_run_prints_every_event_under_its_request_with_the_crms_id_and_logs_to_a_file(tmp_path: Path) -> None:
    # Given make run as a newcomer starts it (the demo on, no LOGS), its log file in a temporary folder
    log = tmp_path / "run.log"
    process, output = start(RUN_LOG=str(log))

    # When its demo has played
    output.wait_for("Serving webhooks", START_SECONDS)
    printed = stop(process, output)

    # Then it named the log file first, and printed no JSON log line: the file holds them
    lines = printed.splitlines()
    assert str(log) in lines[0]
    assert not [line for line in lines if line.lstrip().startswith("{")]
    logged = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    assert {"webhook refused", "event settled"} <= {entry.get("message") for entry in logged}

    # And under each request's heading, its answer and then one line per id its receipt lists (accepted,
    # duplicate, settled on arrival), the id where the header says; nothing else's id
    column = HEADER.index("EVENT ID")
    by_request = dict(sections(printed))
    assert len(by_request) >= 17  # the demo's 8 HubSpot and generic requests, then each source's sample
    for heading, under in by_request.items():
        assert under[0].startswith("  receive "), heading
        outcomes = {line[column:].split(" ")[0]: line for line in under[1:] if not line.startswith("  (")}
        answer = re.fullmatch(r"  receive +(\d+) (.*)", under[0])
        assert answer is not None
        if answer[1].startswith("2") and answer[2].startswith("{"):
            listed = set(re.findall(r'"([^"]+)"[,\]]', answer[2]))  # the ids shown (a long answer is cut: "…")
            assert listed <= set(outcomes), heading
            if not answer[2].endswith("…"):
                assert set(outcomes) == listed, heading
        for line in outcomes.values():
            assert line[column - 1] == " ", line  # the columns before the id kept their width
            assert line[column] != " ", line

    # And each kind of outcome shows, settled at receive ones and refused requests too
    statuses = {line.split()[0] for under in by_request.values() for line in under[1:]}
    assert {"delivered", "duplicate", "superseded", "unmapped", "ignored", "refused", "rejected"} <= statuses
    forged = by_request["A forged HubSpot signature (the request is refused)"]
    assert forged[1].split()[:3] == ["refused", "hubspot", "-"]
    assert " request " in forged[1]
    first = by_request["HubSpot batch: a new contact's id, email, phone and address (lifecyclestage is not mapped)"]
    assert sum(line.split()[0] == "delivered" for line in first) == 8
    assert sum(line.split()[0] == "ignored" for line in first) == 1
    assert process.returncode == 0


def test_logs_1_prints_the_functions_json_lines_on_the_console(tmp_path: Path) -> None:
    # Given make run with LOGS=1 and the functions logging at INFO, no demo
    process, output = start(DEMO="0", LOGS="1", LOG_LEVEL="INFO", RUN_LOG=str(tmp_path / "run.log"))

    # When it has started
    output.wait_for("Serving webhooks", START_SECONDS)
    printed = stop(process, output)

    # Then the functions' JSON lines are on the console (the Zoho channel's first run logs one), and no file is written
    logged = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert "zoho channel renewed" in {entry.get("message") for entry in logged}
    assert not (tmp_path / "run.log").exists()


def test_after_the_demo_each_webhook_sent_prints_under_its_own_heading(tmp_path: Path) -> None:
    # Given make run serving, no demo
    process, output = start(DEMO="0", RUN_LOG=str(tmp_path / "run.log"))
    serving = output.wait_for("Serving webhooks", START_SECONDS)
    match = re.search(r"http://127\.0\.0\.1:\d+", serving)
    assert match is not None

    # When a signed generic webhook arrives, then one with a forged signature
    payload = {"id": "crm-7", "sphereCustomerId": DEMO_CUSTOMER, "email": "ada@example.com"}
    headers, body = generic_request(payload, secret=LOCAL_SECRETS["GenericSecretArn"], msg_id="msg_console_1")
    forged, _ = generic_request(payload, secret="whsec_bm90LXRoZS1zZWNyZXQ=", msg_id="msg_console_2")
    with httpx.Client(base_url=match[0], timeout=10) as client:
        assert client.post("/webhooks/generic", headers=headers, content=body).status_code == 202
        output.wait_for("msg_console_1 (crm-7)", START_SECONDS)
        assert client.post("/webhooks/generic", headers=forged, content=body).status_code == 401
        output.wait_for("request ", START_SECONDS)
    printed = stop(process, output)

    # Then each printed under its own heading: the answer, then its event's outcome or its refusal
    by_request = sections(printed)
    assert len(by_request) == 2
    (_, accepted), (_, refused) = by_request
    assert accepted[0].startswith("  receive      202")
    assert accepted[1].split()[:2] == ["delivered", "generic"]
    assert accepted[1].endswith("msg_console_1 (crm-7)")
    assert refused[0].startswith("  receive      401")
    assert refused[1].split()[:3] == ["refused", "generic", "-"]
