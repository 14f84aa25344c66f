"""The chaos load's verdict: every event's outcome (from the table) and what Sphere applied (from the stand-in's log).

Definitions, per Sphere customer and request field (``email``, ``phone``, ``address``), over the
values the stand-in applied in the order it applied them (answered 200, or applied and then
answered 502 or dropped):

- **lost**: an event the adapter accepted (named in a 202's ``accepted``) without a final status
  in the table: missing, still ``queued`` or ``retrying``, or dead-lettered;
- **settled twice**: an event whose history holds more than one final status;
- **applied twice**: a value applied again after it was applied before, unless the application just
  before it (of that customer and field) was that same value whose answer was lost (502 or
  dropped): the adapter could not know, so it retried; those re-applications are counted apart;
- **older after newer**: a value whose CRM change is older than that of a value applied before it;
- **not newest**: a field whose value at the stand-in at the end is not the newest change sent;
- **unknown value**: an applied value that no CRM change of that customer and field carried;
- **delivered out of order**: a contact's change given to the deliver function after a later one
  of the same contact (by the queue's sequence numbers; the poller's listener records it), or an
  event ``unmapped``: each contact's first request carries its customer id and is answered before
  the next is sent, so a change found no customer id only if it overtook that first request.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.traffic import FIELDS, Traffic
from webhook_adapter.model import Status

if TYPE_CHECKING:
    from devstack.sphere_standin import RecordedRequest
    from devstack.stack import LocalStack

__all__ = ["Applied", "Verdict", "applied_values", "judge", "read_outcomes"]

ON_THE_WAY = frozenset({Status.QUEUED, Status.RETRYING})


def read_outcomes(stack: LocalStack, contacts: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every recorded event of these ``(source, contact id)`` contacts, by ``(source, event id)``.

    The one place the chaos suite reads the events table, through the store method that stays
    whatever the table's keys become.
    """
    outcomes: dict[tuple[str, str], dict[str, Any]] = {}
    for source, contact_id in contacts:
        for item in stack.store.contact_history(source, contact_id):
            outcomes[(source, str(item["event_id"]))] = item
    return outcomes


@dataclass(frozen=True)
class Applied:
    """A value Sphere applied to a customer's field, and whether the adapter got the answer."""

    value: Any
    answer_lost: bool
    request_number: int


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def applied_values(requests: Iterable[RecordedRequest], customers: set[str]) -> dict[tuple[str, str], list[Applied]]:
    """Per (customer, field), the values the stand-in applied, in the order it applied them."""
    applied: dict[tuple[str, str], list[Applied]] = {}
    for number, request in enumerate(requests):
        if request.method != "PATCH" or not request.applied or request.customer_id not in customers:
            continue
        for name in FIELDS:
            if isinstance(request.body, dict) and name in request.body:
                entry = Applied(request.body[name], request.status != 200, number)
                applied.setdefault((str(request.customer_id), name), []).append(entry)
    return applied


@dataclass
class Verdict:
    """The violations found (each a line saying where) and the counts the report prints."""

    lost: list[str] = field(default_factory=list)
    settled_twice: list[str] = field(default_factory=list)
    applied_twice: list[str] = field(default_factory=list)
    older_after_newer: list[str] = field(default_factory=list)
    not_newest: list[str] = field(default_factory=list)
    unknown_values: list[str] = field(default_factory=list)
    delivered_out_of_order: list[str] = field(default_factory=list)
    reapplied_after_lost_answer: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    events_retried: int = 0
    retry_entries: int = 0

    @property
    def violations(self) -> dict[str, list[str]]:
        """Each kind of violation with its instances (empty lists left out)."""
        kinds = {
            "lost": self.lost,
            "settled twice": self.settled_twice,
            "applied twice": self.applied_twice,
            "older after newer": self.older_after_newer,
            "not newest at the end": self.not_newest,
            "unknown value applied": self.unknown_values,
            "delivered out of order": self.delivered_out_of_order,
        }
        return {kind: found for kind, found in kinds.items() if found}


def judge(
    traffic: Traffic,
    outcomes: Mapping[tuple[str, str], dict[str, Any]],
    applied: Mapping[tuple[str, str], list[Applied]],
    customers_at_end: Mapping[str, dict[str, Any]],
) -> Verdict:
    """Check the load's outcomes and Sphere's applied values against what the CRM clients sent."""
    verdict = Verdict()
    _judge_outcomes(verdict, traffic, outcomes)
    change_times: dict[tuple[str, str, str], int] = {}
    newest: dict[tuple[str, str], tuple[int, Any]] = {}
    for change in traffic.changes:
        change_times[(change.customer_id, change.field, _key(change.value))] = change.occurred_at
        current = newest.get((change.customer_id, change.field))
        if current is None or change.occurred_at > current[0]:
            newest[(change.customer_id, change.field)] = (change.occurred_at, change.value)
    for (customer_id, name), values in applied.items():
        _judge_applied(verdict, customer_id, name, values, change_times)
    for (customer_id, name), (_, value) in newest.items():
        at_end = customers_at_end[customer_id].get(name)
        if at_end != value:
            verdict.not_newest.append(f"{customer_id} {name}: {at_end!r} at the end, newest sent {value!r}")
    return verdict


def _judge_outcomes(verdict: Verdict, traffic: Traffic, outcomes: Mapping[tuple[str, str], dict[str, Any]]) -> None:
    for source, event_id in sorted(traffic.accepted):
        item = outcomes.get((source, event_id))
        if item is None:
            verdict.lost.append(f"{source} {event_id}: accepted, never recorded")
            continue
        status = str(item["status"])
        verdict.statuses[status] += 1
        history = [str(entry["status"]) for entry in item.get("history", [])]
        verdict.retry_entries += history.count(Status.RETRYING)
        verdict.events_retried += Status.RETRYING in history
        if status in ON_THE_WAY or status == Status.DEAD_LETTERED:
            verdict.lost.append(f"{source} {event_id}: {status} ({' > '.join(history)})")
        if status == Status.UNMAPPED:
            verdict.delivered_out_of_order.append(f"{source} {event_id}: unmapped, before its contact's first change")
        finals = [entry for entry in history if entry not in ON_THE_WAY]
        if len(finals) > 1:
            verdict.settled_twice.append(f"{source} {event_id}: {' > '.join(history)}")


def _judge_applied(
    verdict: Verdict,
    customer_id: str,
    name: str,
    values: list[Applied],
    change_times: Mapping[tuple[str, str, str], int],
) -> None:
    seen: set[str] = set()
    newest_time = -1
    previous: Applied | None = None
    for entry in values:
        key = _key(entry.value)
        where = f"{customer_id} {name} = {entry.value!r} (request {entry.request_number})"
        time = change_times.get((customer_id, name, key))
        if time is None:
            verdict.unknown_values.append(where)
        elif time < newest_time:
            verdict.older_after_newer.append(f"{where}: changed at {time}, after a change of {newest_time}")
        newest_time = max(newest_time, time or -1)
        if key in seen:
            if previous is not None and previous.answer_lost and _key(previous.value) == key:
                verdict.reapplied_after_lost_answer += 1
            else:
                verdict.applied_twice.append(where)
        seen.add(key)
        previous = entry
