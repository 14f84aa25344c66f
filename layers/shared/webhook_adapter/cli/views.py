"""What the commands print: Rich tables for people, plain JSON for scripts, contact details masked.

The contact's state item is the one place the table keeps contact details unmasked; ``show`` masks
them as the recorded requests are (``webhook_adapter.masking``: email, phones, street lines and
postal code erased; city, state and country kept) unless the operator asks with ``--reveal``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from webhook_adapter.masking import ERASED
from webhook_adapter.merge import ContactState
from webhook_adapter.model import ContactField, Status
from webhook_adapter.replay import ReplaySummary

__all__ = [
    "MASKED_FIELDS",
    "event_table",
    "history_table",
    "item_table",
    "jsonable",
    "print_json",
    "replay_table",
    "state_json",
    "state_table",
    "stats_table",
]

MASKED_FIELDS = frozenset(
    {
        ContactField.EMAIL,
        ContactField.PHONE,
        ContactField.MOBILE_PHONE,
        ContactField.LINE1,
        ContactField.LINE2,
        ContactField.POSTAL_CODE,
    }
)
"""The contact fields whose values ``show`` erases (``masking.MASKED_PATHS`` in the contact's field names)."""
_HIDDEN = frozenset({"pk", "sk", "status_bucket", "status_at", "ttl"})
"""Keys of an item that only serve the table's layout: left out of the human view (``--json`` keeps them)."""


def jsonable(value: Any) -> Any:
    """``value`` as read from DynamoDB (``Decimal``, sets) in JSON's types."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def print_json(console: Console, value: Any) -> None:
    """``value`` as one JSON document on stdout, nothing else (for ``jq`` and scripts)."""
    console.file.write(json.dumps(jsonable(value), indent=2, sort_keys=True) + "\n")


def _short_time(stored: str) -> str:
    """``2026-11-26T07:59:01.632Z`` as ``2026-11-26 07:59:01``: narrow enough for an 80-column terminal."""
    return stored[:19].replace("T", " ")


def _contact(item: Mapping[str, Any]) -> str:
    if "contact_id" in item:
        return str(item["contact_id"])
    return "(request)" if str(item.get("pk", "")).startswith("REQUEST#") else ""


def _event_id(item: Mapping[str, Any]) -> str:
    if "event_id" in item:
        return str(item["event_id"])
    return str(item.get("pk", "")).removeprefix("REQUEST#")


def event_table(items: Iterable[Mapping[str, Any]], *, title: str) -> Table:
    """One row per event (or refused request): when its status was set, the status, who, what and why."""
    table = Table(title=title, title_justify="left")
    for column in ("updated (UTC)", "status"):
        table.add_column(column, no_wrap=True)
    for column in ("source", "contact", "event id", "kind", "fields", "reason"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            _short_time(str(item.get("updated_at", ""))),
            str(item.get("status", "")),
            str(item.get("source", "")),
            _contact(item),
            _event_id(item),
            str(item.get("kind", item.get("code", ""))),
            ", ".join(str(name) for name in item.get("fields") or ()),
            str(item.get("reason") or ""),
        )
    return table


def item_table(item: Mapping[str, Any], *, title: str) -> Table:
    """One event's item as name / value rows (its history has a table of its own)."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("name", style="bold")
    table.add_column("value", overflow="fold")
    for name in sorted(item):
        if name in _HIDDEN or name == "history":
            continue
        value = jsonable(item[name])
        table.add_row(name, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
    return table


def history_table(item: Mapping[str, Any]) -> Table:
    """An event's statuses in order (its first entry and the latest ones: the store keeps eight)."""
    table = Table(title="history", title_justify="left")
    for column in ("at", "status", "reason"):
        table.add_column(column, overflow="fold")
    for entry in item.get("history") or ():
        table.add_row(str(entry.get("at", "")), str(entry.get("status", "")), str(entry.get("reason", "")))
    return table


def state_json(state: ContactState, *, reveal: bool) -> dict[str, Any]:
    """The contact's merged state: each field's value (masked unless ``reveal``) with its CRM time and source event."""
    return {
        "version": state.version,
        "fields": {
            str(name): {
                "value": field.value if reveal or name not in MASKED_FIELDS or field.value is None else ERASED,
                "occurred_at": field.occurred_at,
                "event": field.event,
            }
            for name, field in sorted(state.fields.items())
        },
        "applied": dict(state.applied),
        "refused": dict(state.refused),
        "last_call": {"groups": list(state.last_call.groups), "result": dict(state.last_call.result)}
        if state.last_call
        else None,
    }


def state_table(state: ContactState, *, reveal: bool, title: str) -> Table:
    """The contact's fields, newest value of each (masked unless ``reveal``), with the CRM time it changed."""
    table = Table(title=title, title_justify="left")
    for column in ("field", "value", "changed in the CRM (epoch ms)"):
        table.add_column(column, overflow="fold")
    for name, field in state_json(state, reveal=reveal)["fields"].items():
        value = field["value"]
        table.add_row(name, "(cleared)" if value is None else str(value), str(field["occurred_at"]))
    return table


def stats_table(counts: Mapping[str, Mapping[str, int]], statuses: Sequence[Status], *, title: str) -> Table:
    """Counts by status (rows) and source (columns), with a total per status."""
    sources = sorted({source for by_source in counts.values() for source in by_source})
    table = Table(title=title, title_justify="left")
    table.add_column("status")
    for source in sources:
        table.add_column(source, justify="right")
    table.add_column("total", justify="right", style="bold")
    for status in statuses:
        by_source = counts.get(str(status), {})
        table.add_row(str(status), *(str(by_source.get(source, 0)) for source in sources), str(sum(by_source.values())))
    return table


def replay_table(summary: ReplaySummary) -> Table:
    """A replay's summary: its counts, then what was skipped and why, then (dry) what each contact would get."""
    verb = "would queue" if summary.dry_run else "queued"
    title = f"replay {summary.replay_id}: {summary.matched} matched, {summary.queued} {verb}"
    if summary.truncated:
        title += " (more matched: replay again for the rest)"
    table = Table(title=title, title_justify="left")
    for column in ("what", "contact", "detail"):
        table.add_column(column)
    for skipped in summary.skipped:
        where = f"{skipped.source} {skipped.contact_id}"
        table.add_row(f"skipped {skipped.key or ''}".strip(), where, skipped.reason)
    for preview in summary.contacts:
        where = f"{preview.source} {preview.contact_id}"
        compared = "; ".join(f"{name}: {how}" for name, how in preview.compared.items()) or "nothing to send"
        problems = "; ".join(f"{name}: {why}" for name, why in preview.problems.items())
        table.add_row(f"would send {json.dumps(preview.request, sort_keys=True)}", where, compared)
        if problems:
            table.add_row("cannot send", where, problems)
    return table
