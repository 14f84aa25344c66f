"""Run a chaos load over the local stack and report: CRM clients send while the poller drains; Sphere fails often.

The stack is ``make run``'s, tuned for speed and for a flaky Sphere: retries at once
(``RETRY_BASE_SECONDS=0``, a 429's ``Retry-After`` of 1 s still honoured), up to 100 receives
before the dead-letter queue (20 % failures never get there), Sphere's client timeout 1 s, and the
queue's own 180 s visibility: every message the deliver function reports failed, the ones it skips
behind a failed change of the same contact included, is given its backoff, so none waits that long.

Every source takes part. Attio's and Keap's events name the record only: their contacts' changes land in the
CRM read stand-in first (``chaos.traffic``), and deliver reads each from there (``ATTIO_*``/``KEAP_*`` read
settings as ``make run`` has them, from the template: fetch when an event asks, which theirs always do). The
CRM reads fail as often as Sphere's calls (429s, 5xx, timeouts, drops), HubSpot's included: its contacts are
read before every call.

Waiting is on conditions with a deadline: the clients pause while the queue holds more than
``max_backlog`` messages (moto slows sharply with a long queue), and the run ends when the queue is
empty; nothing sleeps a fixed time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chaos.traffic import TIME_BASE_MS, ChaosContact, CrmClient, Traffic, event_counter
from chaos.verdict import Verdict, applied_values, judge, read_outcomes
from devstack.crm_shapes import Crm
from devstack.crm_standin import CrmStandIn
from devstack.sphere_faults import APPLIED_THEN_FAILED, FaultKind
from devstack.stack import LocalStack, StackOptions
from devstack.vendors import VENDORS

__all__ = ["ChaosReport", "ChaosSettings", "run_chaos"]

STACK_ENVIRONMENT = {
    "RETRY_BASE_SECONDS": "0",
    "RETRY_MAX_SECONDS": "1",
    "MAX_RECEIVE_COUNT": "100",
    "SPHERE_TIMEOUT_SECONDS": "1",
    "SPHERE_CONNECT_TIMEOUT_SECONDS": "1",
    "POWERTOOLS_LOG_LEVEL": "CRITICAL",
    # Every HubSpot delivery reads the contact first, from a CRM stand-in failing like Sphere's (issue 13).
    "HUBSPOT_READ_MODE": "always-fetch",
    # Attio and Keap keep the template's fetch-when-incomplete: each of their events asks for the record's read.
}
READ_FAULTS = (FaultKind.RATE_LIMITED, FaultKind.SERVER_ERROR, FaultKind.UNAVAILABLE, FaultKind.TIMEOUT, FaultKind.DROP)
"""What a failing record read meets: the transient faults of a GET (nothing to apply)."""
STANDIN_TIMEOUT_SECONDS = 1.5
"""How long a ``timeout`` fault holds a call: past the deliver function's 1 s client timeout."""
BACKLOG_CHECK_EVERY = 10
"""Requests between two looks at the queue's length."""


@dataclass(frozen=True)
class ChaosSettings:
    """The load: how many events (duplicates included) over how many contacts, and how unkind."""

    events: int
    contacts: int
    seed: int = 20261125
    clients: int = 2
    duplicate_share: float = 0.3
    reorder_share: float = 0.1
    failure_rate: float = 0.2
    max_backlog: int = 150
    deadline_seconds: float = 900.0


class Progress:
    """The poller's batch listener: counts batches and wakes whoever waits on the queue."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.batches = 0
        self.failed_items = 0
        self.skipped_items = 0
        """Messages reported failed only because an earlier one of their contact failed in the same batch."""
        self.out_of_order: list[str] = []
        """Messages delivered after a later message of their contact (by the queue's sequence numbers)."""
        self._last_delivered: dict[str, int] = {}

    def __call__(self, records: list[dict[str, Any]], failed: set[str]) -> None:
        failing_groups: set[str] = set()
        skipped = 0
        for record in records:
            group = record["attributes"]["MessageGroupId"]
            if record["messageId"] in failed:
                skipped += group in failing_groups
                failing_groups.add(group)
                continue
            sequence = int(record["attributes"]["SequenceNumber"])
            if sequence < self._last_delivered.get(group, -1):
                self.out_of_order.append(f"{group}: message {sequence} delivered after {self._last_delivered[group]}")
            self._last_delivered[group] = max(sequence, self._last_delivered.get(group, -1))
        with self.condition:
            self.batches += 1
            self.failed_items += len(failed)
            self.skipped_items += skipped
            self.condition.notify_all()

    def wait_until(self, condition: Callable[[], bool], deadline: float) -> bool:
        """Check ``condition`` after each batch (and each second) until it holds or the deadline passes."""
        with self.condition:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.condition.wait(timeout=min(remaining, 1.0))
            return True


@dataclass
class ChaosReport:
    """What was sent, what happened, how long it took, and what broke."""

    settings: ChaosSettings
    traffic: Traffic
    verdict: Verdict
    drained: bool
    still_queued: int
    dead_letter_messages: int
    patches: Counter[str]
    fault_counts: dict[str, int]
    batches: int
    failed_items: int
    skipped_items: int
    send_seconds: float
    total_seconds: float
    judge_seconds: float
    contacts: list[ChaosContact] = field(default_factory=list)
    crm_reads: Counter[str] = field(default_factory=Counter)
    """Record reads per CRM answered 200 by the CRM stand-in (HubSpot's, and those of the ids-only sources)."""
    crm_requests: Counter[str] = field(default_factory=Counter)
    """Record reads per CRM the stand-in received, the failed ones included."""
    crm_faults: dict[str, int] = field(default_factory=dict)
    unread_records: list[str] = field(default_factory=list)
    """Contacts of ids-only sources whose record deliver never read (their values cannot have reached Sphere)."""

    @property
    def accepted_by_source(self) -> Counter[str]:
        """Accepted events per source."""
        return Counter(source for source, _ in self.traffic.accepted)

    def text(self) -> str:
        """The counts, one line each, then every kind of violation with its first instances."""
        traffic, verdict, settings = self.traffic, self.verdict, self.settings
        unique = traffic.events_sent - traffic.duplicate_events_sent
        faults = ", ".join(f"{kind} {count}" for kind, count in sorted(self.fault_counts.items()))
        lines = [
            f"chaos load: seed {settings.seed}, {settings.contacts} contacts (every source), {settings.clients} "
            f"clients, Sphere failing {settings.failure_rate:.0%} of calls",
            f"  sent        {traffic.events_sent} events in {traffic.requests_sent} requests: {unique} unique, "
            f"{traffic.duplicate_events_sent} duplicates ({traffic.duplicate_events_sent / traffic.events_sent:.0%}), "
            f"{traffic.reordered_events_sent} older changes sent after newer "
            f"({traffic.reordered_events_sent / unique:.0%} of unique); {traffic.retried_sends} re-sends after a 5xx "
            "or no answer",
            f"  accepted    {len(traffic.accepted)} events; {traffic.answered_duplicate} answered as duplicates; "
            f"{len(traffic.failed_requests)} requests never accepted",
            "  by source   "
            + ", ".join(f"{source} {count}" for source, count in sorted(self.accepted_by_source.items())),
            "  final       " + ", ".join(f"{status} {count}" for status, count in verdict.statuses.most_common()),
            f"  sphere      {sum(self.patches.values())} PATCHes: "
            + ", ".join(f"{status} {count}" for status, count in self.patches.most_common())
            + f"; {self.fault_counts.get(APPLIED_THEN_FAILED, 0)} applied then failed; faults: {faults}",
            "  crm reads   "
            + ", ".join(
                f"{crm} {self.crm_reads[crm]} read ({tried} requests)"
                for crm, tried in sorted(self.crm_requests.items())
            )
            + "; faults: "
            + (", ".join(f"{kind} {count}" for kind, count in sorted(self.crm_faults.items())) or "none")
            + f"; {len(self.unread_records)} ids-only contacts never read",
            f"  retries     {verdict.events_retried} events retried, {verdict.retry_entries} retries recorded, "
            f"{self.failed_items} batch items reported failed in {self.batches} batches, {self.skipped_items} of "
            f"them skipped behind a failed change of their contact; {verdict.reapplied_after_lost_answer} values "
            "re-applied after a lost answer",
            f"  queue       {'drained' if self.drained else f'NOT drained: {self.still_queued} left'}, "
            f"{self.dead_letter_messages} in the dead-letter queue",
            f"  elapsed     {self.send_seconds:.0f} s sending, {self.total_seconds:.0f} s until drained "
            f"({traffic.events_sent / self.total_seconds:.0f} events/s), {self.judge_seconds:.0f} s reading "
            "the outcomes and judging",
        ]
        violations = verdict.violations
        if not violations:
            lines.append("  violations  none")
        for kind, found in violations.items():
            lines.append(f"  VIOLATION   {kind}: {len(found)}")
            lines += [f"      {instance}" for instance in found[:5]]
        lines += [f"  NOT ACCEPTED {failure}" for failure in traffic.failed_requests[:5]]
        lines += [f"  NEVER READ  {contact}" for contact in self.unread_records[:5]]
        return "\n".join(lines)


def _queued(stack: LocalStack, url: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


class _Backpressure:
    """Holds the clients back while the queue is long, until the poller has drained half of it."""

    def __init__(self, stack: LocalStack, progress: Progress, limit: int, deadline: float) -> None:
        assert stack.resources is not None
        self._stack = stack
        self._url = stack.resources.queue_url
        self._progress = progress
        self._limit = limit
        self._deadline = deadline
        self._lock = threading.Lock()
        self._calls = 0

    def __call__(self) -> None:
        with self._lock:
            self._calls += 1
            if self._calls % BACKLOG_CHECK_EVERY or _queued(self._stack, self._url) <= self._limit:
                return
            drained = self._progress.wait_until(
                lambda: _queued(self._stack, self._url) <= self._limit // 2, self._deadline
            )
            if not drained:
                raise TimeoutError("the queue did not drain below the backlog limit before the deadline")


def _unread_records(crm: CrmStandIn, contacts: list[ChaosContact]) -> list[str]:
    """The started contacts of ids-only sources whose CRM record no read answered 200 for."""
    read = {(str(request.crm), request.record_id) for name in Crm for request in crm.records_read(name)}
    return [
        f"{contact.source} {contact.contact_id}"
        for contact in contacts
        if contact.started and (record := contact.record) is not None and (record.crm, record.record_id) not in read
    ]


def run_chaos(settings: ChaosSettings) -> ChaosReport:
    """Start the local stack, send the load while it drains, wait for an empty queue, and judge."""
    progress = Progress()
    options = StackOptions(
        port=0,
        environment=STACK_ENVIRONMENT,
        on_batch=progress,
    )
    with LocalStack(options) as stack:
        assert stack.standin is not None
        assert stack.resources is not None
        standin, resources = stack.standin, stack.resources
        contacts = [
            ChaosContact(number, VENDORS[number % len(VENDORS)], f"customer_chaos{number:06d}")
            for number in range(settings.contacts)
        ]
        for contact in contacts:
            standin.add_customer(contact.customer_id)
        assert stack.crm is not None
        for contact in contacts:
            if contact.source == "hubspot":
                # HubSpot's record as of before the load: its reads never win over a change, only exercise the path.
                stack.crm.put_record(
                    "hubspot", str(contact.number), {"customer_id": contact.customer_id}, modified_at_ms=TIME_BASE_MS
                )
        stack.crm.set_failure_rate(
            settings.failure_rate,
            seed=settings.seed,
            kinds=READ_FAULTS,
            retry_after=1,
            timeout_seconds=STANDIN_TIMEOUT_SECONDS,
        )
        standin.set_failure_rate(
            settings.failure_rate, seed=settings.seed, retry_after=1, timeout_seconds=STANDIN_TIMEOUT_SECONDS
        )
        started = time.monotonic()
        deadline = started + settings.deadline_seconds
        backpressure = _Backpressure(stack, progress, settings.max_backlog, deadline)
        ids = event_counter()
        clients = [
            CrmClient(
                contacts[number :: settings.clients],
                seed=settings.seed + number,
                events=settings.events // settings.clients,
                duplicate_share=settings.duplicate_share,
                reorder_share=settings.reorder_share,
                url=stack.url,
                secrets=stack.secrets,
                backpressure=backpressure,
                event_ids=ids,
                crm=stack.crm,
            )
            for number in range(settings.clients)
        ]
        traffic = Traffic()
        with ThreadPoolExecutor(max_workers=settings.clients) as pool:
            for client_traffic in pool.map(CrmClient.run, clients):
                traffic.add(client_traffic)
        sent = time.monotonic()
        drained = progress.wait_until(lambda: _queued(stack, resources.queue_url) == 0, deadline)
        finished = time.monotonic()
        still_queued = _queued(stack, resources.queue_url)
        dead_letter_messages = _queued(stack, resources.dead_letter_queue_url)
        requests = standin.requests
        customers = {contact.customer_id for contact in contacts}
        outcomes = read_outcomes(stack, [(contact.source, contact.contact_id) for contact in contacts])
        verdict = judge(
            traffic,
            outcomes,
            applied_values(requests, customers),
            {contact.customer_id: standin.customer(contact.customer_id) for contact in contacts},
        )
        verdict.delivered_out_of_order += progress.out_of_order
        judged = time.monotonic()
        patches = Counter(
            str(request.status or "no answer")
            for request in requests
            if request.method == "PATCH" and request.customer_id in customers
        )
        return ChaosReport(
            settings=settings,
            traffic=traffic,
            verdict=verdict,
            drained=drained,
            still_queued=still_queued,
            dead_letter_messages=dead_letter_messages,
            patches=patches,
            fault_counts=standin.fault_counts,
            crm_reads=Counter({str(crm): len(stack.crm.records_read(crm)) for crm in Crm}),
            crm_requests=Counter(str(read.crm) for read in stack.crm.requests if read.record_id is not None),
            crm_faults=stack.crm.fault_counts,
            unread_records=_unread_records(stack.crm, contacts),
            batches=progress.batches,
            failed_items=progress.failed_items,
            skipped_items=progress.skipped_items,
            send_seconds=sent - started,
            total_seconds=finished - started,
            judge_seconds=judged - finished,
            contacts=contacts,
        )
