"""The ``crm-sphere`` commands: list, show, map, stats and replay, on the local stack or a deployed one.

The global options choose the stack (``--stack NAME`` reads a deployed stack's CloudFormation
outputs; otherwise the running ``make run`` stack's connection file); each command is one
function registered with ``@command(name)``, which reads the stack from ``Operator`` and maps the
adapter's errors to a message and exit status 1 (a bad option exits 2, as Click does).

Adding a command: write ``def name(ctx: typer.Context, ...) -> None`` under ``@command("name")``
and use ``operator(ctx)`` for the store, the queue and the consoles.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress

from webhook_adapter.cli import target as targets
from webhook_adapter.cli.views import (
    event_table,
    history_table,
    item_table,
    print_json,
    replay_table,
    state_json,
    state_table,
    stats_table,
)
from webhook_adapter.cli.window import Window, stored_time, window
from webhook_adapter.enqueue import ChangeQueue, messages_for
from webhook_adapter.errors import InvalidPayload, StorageUnavailable
from webhook_adapter.model import ContactField, SourceEvent, Status
from webhook_adapter.receive import group_by_contact
from webhook_adapter.replay import ContactRef, EventRef, ReplayRequest
from webhook_adapter.runtime import now_ms
from webhook_adapter.salesforce_fields import CDC_NAME
from webhook_adapter.sources import SOURCE_MODULES
from webhook_adapter.sources.base import describe_validation_error
from webhook_adapter.store import OPERATOR_STATUSES, EventStore

__all__ = ["MAP_KIND", "Operator", "app", "command", "main", "operator", "time_window"]

MAP_KIND = "operator.map"
"""The ``kind`` of the event ``map`` records (a CRM's events carry theirs: ``contact.propertyChange`` ...)."""
MAP_KEY_PREFIX = "operator:map:"
KNOWN_SOURCES = frozenset({*SOURCE_MODULES, CDC_NAME})
"""Source names an event can be recorded under: the webhook routes and the Salesforce relay."""
DEFAULT_SINCE = "24h"
INDEXED = tuple(status for status in Status if status in OPERATOR_STATUSES)
"""The statuses the ``StatusByTime`` index counts cheaply, in ``Status`` order."""
NOT_INDEXED = tuple(status for status in Status if status not in OPERATOR_STATUSES and status is not Status.QUEUED)
"""Final statuses the index leaves out (``queued`` has no item at all: deliver writes an event when it ends)."""

app = typer.Typer(
    name="crm-sphere",
    help="Operate the CRM → Sphere webhook adapter: list and show recorded events, map contacts, count outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one document) instead of a table.")]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help=f"Window start: 30m, 24h, 7d ago, or an ISO time (default {DEFAULT_SINCE})."),
]
UntilOption = Annotated[str | None, typer.Option("--until", help="Window end: a duration ago or an ISO time (now).")]
ScanOption = Annotated[
    bool,
    typer.Option("--scan", help="Read the whole table (every item's read units) to include unindexed statuses."),
]


@dataclass
class Operator:
    """What one invocation works with: the consoles and, connected on first use, the stack's table and queue."""

    connect: Callable[[], targets.Target]
    console: Console = field(default_factory=Console)
    errors: Console = field(default_factory=lambda: Console(stderr=True))

    @functools.cached_property
    def target(self) -> targets.Target:
        """The stack named by the global options (``TargetUnavailable`` when it cannot be used)."""
        return self.connect()

    @functools.cached_property
    def store(self) -> EventStore:
        """The stack's events table."""
        return self.target.store()

    @functools.cached_property
    def queue(self) -> ChangeQueue:
        """The stack's changes queue (deliver's input)."""
        return self.target.queue()


def operator(ctx: typer.Context) -> Operator:
    """The invocation's ``Operator`` (set by the global options' callback)."""
    found = ctx.find_object(Operator)
    if found is None:  # a command invoked without the app's callback (never through the entry point)
        raise RuntimeError("crm-sphere: the command ran without its global options")
    return found


def command[**P](name: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Register ``function`` as the command ``name``; a stack that cannot be used or read exits 1 with why."""

    def register(function: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                function(*args, **kwargs)
            except (targets.TargetUnavailable, StorageUnavailable) as exc:
                Console(stderr=True).print(f"[red]crm-sphere {name}:[/red] {exc}", highlight=False)
                raise typer.Exit(1) from exc

        app.command(name)(run)
        return run

    return register


def time_window(since: str | None, until: str | None, *, default: str = DEFAULT_SINCE) -> Window:
    """The window the options name.

    Raises:
        typer.BadParameter: a time cannot be read, or the window ends before it starts.
    """
    try:
        return window(since or default, until, now_ms=now_ms())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since/--until") from exc


@app.callback()
def connect(
    ctx: typer.Context,
    stack: Annotated[
        str | None, typer.Option("--stack", help="A deployed stack's name: its outputs name the table and queue.")
    ] = None,
    local: Annotated[bool, typer.Option("--local", help="The running `make run` stack (the default).")] = False,
    local_file: Annotated[
        Path | None,
        typer.Option(
            "--local-file", help=f"The local stack's connection file ({targets.LOCAL_FILE_NAME} found up from here)."
        ),
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile for --stack (else the usual).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region for --stack (else the usual).")] = None,
) -> None:
    """Choose the stack: ``--stack NAME`` (deployed) or the running ``make run`` stack (``--local``, the default)."""
    if stack and (local or local_file):
        raise typer.BadParameter("name either a deployed --stack or the --local one", param_hint="--stack")
    if stack:
        ctx.obj = Operator(lambda: targets.stack(stack, profile=profile, region=region))
    else:
        ctx.obj = Operator(lambda: targets.local(local_file))


# ---------------------------------------------------------------------- list


def _statuses_wanted(statuses: list[Status] | None, *, scan: bool) -> list[Status]:
    wanted = statuses or list(INDEXED)
    unindexed = [str(status) for status in wanted if status not in OPERATOR_STATUSES]
    if unindexed and not scan:
        raise typer.BadParameter(
            f"{', '.join(unindexed)} not in the status index: add --scan (reads the whole table) or name a --contact",
            param_hint="--status",
        )
    return wanted


@command("list")
def list_events(
    ctx: typer.Context,
    status: Annotated[
        list[Status] | None,
        typer.Option(
            "--status", "-s", help="Only this status (repeatable; default: every status an operator acts on)."
        ),
    ] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source (hubspot, generic ...).")] = None,
    contact: Annotated[
        str | None, typer.Option("--contact", help="One contact's events (needs --source): every time unless --since.")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    scan: ScanOption = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many, the latest.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """List recorded events by status, source, contact and time (the latest last)."""
    me = operator(ctx)
    if contact is not None:
        if source is None:
            raise typer.BadParameter("a contact id is unique within its source: add --source", param_hint="--contact")
        items = me.store.contact_history(source, contact)
        if since or until:
            span = time_window(since, until)
            items = [item for item in items if _within(item, span)]
        if status:
            items = [item for item in items if item.get("status") in status]
        heading = f"{source} contact {contact}"
    else:
        span = time_window(since, until)
        wanted = _statuses_wanted(status, scan=scan)
        if scan:
            me.errors.print(_SCAN_WARNING)
            items = [item for item in me.store.scan_events(span.start_ms, span.end_ms) if item.get("status") in wanted]
        else:
            items = [item for one in wanted for item in me.store.events_by_status(one, span.start_ms, span.end_ms)]
        if source is not None:
            items = [item for item in items if item.get("source") == source]
        heading = f"{', '.join(str(one) for one in wanted)} · {span.describe()}"
    items = sorted(items, key=lambda item: str(item.get("updated_at", "")))[-limit:]
    if as_json:
        print_json(me.console, items)
        return
    me.console.print(event_table(items, title=f"{len(items)} events · {heading}"))


def _within(item: dict[str, Any], span: Window) -> bool:
    return stored_time(span.start_ms) <= str(item.get("updated_at", "")) <= stored_time(span.end_ms)


_SCAN_WARNING = (
    "[yellow]warning:[/yellow] --scan reads every item of the table (its read units grow with the table); "
    "without it only the indexed statuses are read"
)


# ---------------------------------------------------------------------- show


@command("show")
def show(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The contact's source (hubspot, generic ...).")],
    contact: Annotated[str, typer.Argument(help="The contact's id in that CRM (as `list` prints it).")],
    event: Annotated[
        str | None, typer.Option("--event", "-e", help="One event: its id as the CRM sent it, or its key.")
    ] = None,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show the contact's details unmasked.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show one contact's state and every event, or one event's whole record (status, Sphere's answer, history)."""
    me = operator(ctx)
    store = me.store
    if event is not None:
        item = store.get_event(source, contact, event) or next(
            (item for item in store.contact_history(source, contact) if event in {item["event_id"], item["event_key"]}),
            None,
        )
        if item is None:
            me.errors.print(f"crm-sphere show: no event {event} recorded for {source} contact {contact}")
            raise typer.Exit(1)
        if as_json:
            print_json(me.console, item)
            return
        me.console.print(item_table(item, title=f"{source} contact {contact} · event {item['event_id']}"))
        me.console.print(history_table(item))
        return
    state = store.load_contact(source, contact)
    history = store.contact_history(source, contact)
    if not history and not state.version:
        me.errors.print(f"crm-sphere show: nothing recorded for {source} contact {contact}")
        raise typer.Exit(1)
    if as_json:
        print_json(
            me.console,
            {
                "source": source,
                "contact_id": contact,
                "state": state_json(state, reveal=reveal),
                "events": history,
            },
        )
        return
    masked = "" if reveal else " (masked: --reveal shows them)"
    me.console.print(
        state_table(state, reveal=reveal, title=f"{source} contact {contact} · version {state.version}{masked}")
    )
    me.console.print(event_table(history, title=f"{len(history)} events, oldest change first"))


# ---------------------------------------------------------------------- map


def map_event(contact: str, customer_id: str, *, at_ms: int) -> SourceEvent:
    """The event ``map`` records: a change of the contact's Sphere customer id, made by an operator now."""
    key = f"{MAP_KEY_PREFIX}{uuid.uuid4().hex}"
    return SourceEvent(
        key=key,
        event_id=key,
        contact_id=contact,
        occurred_at=at_ms,
        kind=MAP_KIND,
        changes={ContactField.CUSTOMER_ID: customer_id},
    )


@command("map")
def map_contact(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The contact's source (hubspot, generic ...).")],
    contact: Annotated[str, typer.Argument(help="The contact's id in that CRM.")],
    customer_id: Annotated[str, typer.Argument(help="The Sphere customer id (customer_...).")],
    as_json: JsonOption = False,
) -> None:
    """Set or correct a contact's Sphere customer id: queued as a change like a CRM's, merged newest-wins by deliver.

    Deliver then sends the contact's known values to that customer and records the change's outcome
    (``show SOURCE CONTACT --event KEY``).
    """
    from webhook_adapter.normalize import CUSTOMER_ID_PATTERN  # noqa: PLC0415 - loads phonenumbers: map only

    if source not in KNOWN_SOURCES:
        raise typer.BadParameter(f"not a source: one of {', '.join(sorted(KNOWN_SOURCES))}", param_hint="SOURCE")
    if not CUSTOMER_ID_PATTERN.fullmatch(customer_id):
        raise typer.BadParameter("a Sphere customer id matches customer_[a-z0-9]+", param_hint="CUSTOMER_ID")
    me = operator(ctx)
    at = now_ms()
    event = map_event(contact, customer_id, at_ms=at)
    try:
        messages = messages_for(group_by_contact(source, [event], at))
    except InvalidPayload as exc:
        raise typer.BadParameter("the contact id cannot be encoded", param_hint="CONTACT") from exc
    known = me.store.load_contact(source, contact)
    me.queue.send(messages)
    if not known.version:  # on stderr, JSON or not: a typo in the contact id shows here
        me.errors.print(f"note: nothing was recorded for {source} contact {contact} yet; the id waits for its changes")
    receipt = {"accepted": [event.event_id], "source": source, "contact_id": contact, "customer_id": customer_id}
    if as_json:
        print_json(me.console, receipt)
        return
    me.console.print(f"queued {event.event_id}: {source} contact {contact} → {customer_id}", highlight=False)
    me.console.print(f"its outcome: crm-sphere show {source} {contact} --event {event.event_id}", highlight=False)


# ---------------------------------------------------------------------- stats


def count_by_status(items: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Items counted by status, then by source."""
    counts: dict[str, Counter[str]] = {}
    for item in items:
        counts.setdefault(str(item.get("status")), Counter())[str(item.get("source", ""))] += 1
    return {status: dict(by_source) for status, by_source in counts.items()}


@command("stats")
def stats(
    ctx: typer.Context,
    since: SinceOption = None,
    until: UntilOption = None,
    scan: ScanOption = False,
    as_json: JsonOption = False,
) -> None:
    """Count events by status and source over a window.

    Without ``--scan``: the statuses an operator acts on, from the status index (a query per day and
    shard). Delivered, unchanged, superseded and ignored are not indexed: ``--scan`` counts them by
    reading the whole table.
    """
    me = operator(ctx)
    span = time_window(since, until)
    if scan:
        me.errors.print(_SCAN_WARNING)
        counts = count_by_status(me.store.scan_events(span.start_ms, span.end_ms))
        counted, not_counted = [*INDEXED, *NOT_INDEXED], []
    else:
        counts = count_by_status(
            item for status in INDEXED for item in me.store.events_by_status(status, span.start_ms, span.end_ms)
        )
        counted, not_counted = list(INDEXED), list(NOT_INDEXED)
    if as_json:
        print_json(
            me.console,
            {
                "from": stored_time(span.start_ms),
                "to": stored_time(span.end_ms),
                "scanned": scan,
                "counts": {str(status): counts.get(str(status), {}) for status in counted},
                "not_counted": [str(status) for status in not_counted],
            },
        )
        return
    me.console.print(stats_table(counts, counted, title=f"events by status and source · {span.describe()}"))
    if not_counted:
        me.console.print(
            "not counted (not in the status index): "
            f"{', '.join(str(status) for status in not_counted)}; --scan counts them"
        )


# ---------------------------------------------------------------------- replay


def _event_ref(text: str) -> EventRef:
    """``SOURCE/CONTACT/KEY`` as a replay's event (the contact id may hold ``:``, never ``/``).

    Raises:
        typer.BadParameter: not three parts.
    """
    source, _, rest = text.partition("/")
    contact, _, key = rest.partition("/")
    if not (source and contact and key):
        raise typer.BadParameter("give SOURCE/CONTACT/KEY (as `list` prints them)", param_hint="--event")
    return EventRef(source=source, contact_id=contact, key=key)


@command("replay")
def replay(
    ctx: typer.Context,
    events: Annotated[
        list[str] | None, typer.Option("--event", help="An event to replay: SOURCE/CONTACT/KEY (repeatable).")
    ] = None,
    status: Annotated[
        Status | None, typer.Option("--status", help="Replay the events in this status within --since/--until.")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    source: Annotated[str | None, typer.Option("--source", help="With --status: only this source.")] = None,
    contact: Annotated[
        tuple[str, str] | None, typer.Option("--contact", help="Replay one contact: SOURCE CONTACT.")
    ] = None,
    dead_letters: Annotated[
        bool, typer.Option("--dead-letters", help="Move the dead-letter queue's messages back to deliver.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent; queue nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Also replay events Sphere has (delivered ...).")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Replay at most this many.")] = 1000,
    replay_id: Annotated[str | None, typer.Option("--replay-id", help="Name the replay (default: a new id).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run recorded changes again through deliver: the same forms as the replay function (README "Replay").

    What is replayed is the contact's current state; deliver sends the whole request and records the outcome.
    """
    me = operator(ctx)
    request: dict[str, Any] = {"dry_run": dry_run, "force": force, "limit": limit, "replay_id": replay_id}
    if events:
        request["events"] = [_event_ref(text) for text in events]
    if status is not None:
        span = time_window(since, until)
        request |= {"status": status, "since": _aware(span.start_ms), "until": _aware(span.end_ms), "source": source}
    if contact is not None:
        request["contact"] = ContactRef(source=contact[0], contact_id=contact[1])
    request["dead_letters"] = dead_letters
    try:
        wanted = ReplayRequest.model_validate(request)
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_error(exc), param_hint="replay options") from exc
    with Progress(console=me.errors, transient=True, disable=as_json or dry_run) as progress:
        task = progress.add_task("queueing", total=None)
        replayer = me.target.replayer(
            on_sent=lambda done, total: progress.update(task, completed=done, total=total),
        )
        summary = replayer.run(wanted)
    if as_json:
        print_json(me.console, summary.model_dump(mode="json", by_alias=True))
        return
    me.console.print(replay_table(summary))


def _aware(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def main() -> None:
    """The ``crm-sphere`` console script."""
    app()
