"""DynamoDB data access: one table for each contact's events, their outcomes, and the contact's merged state.

Designed for write cost (on-demand bills one write unit per started KB of an item, plus one per
index entry written) while answering the operator's three questions:

- a contact's history: ``pk = C#{source}#{contact}``, the items whose ``sk`` begins with ``E#``
  (one Query on the table itself: no index write per event);
- one event: ``pk = C#{source}#{contact}``, ``sk = E#{key}`` (the CRM's event identity);
- the events in a status over a time range: the sparse index ``StatusByTime``. Only the statuses
  an operator acts on (``OPERATOR_STATUSES``) carry its keys, ``status_bucket =
  {status}#{day}#{shard}`` and ``status_at = {ISO time}#{pk}#{sk}``: a day's writes of one status
  spread over ``STATUS_SHARDS`` partition keys, and ``events_by_status`` queries the buckets of
  the asked range. Delivered, unchanged, superseded and ignored events never touch the index.

An event is written once when it ends (deliver's outcome, or receive's for events settled on
arrival), and again only when it is retried. Events still on the queue have no item: receive
answers duplicates of them within SQS's 5-minute deduplication window, and deliver drops a later
repeat because its event already has a final status. The contact's state is ``sk = S``, kept
under 1 KB by storing digests instead of copies (``merge.digest``). Refused requests (4xx) are
``pk = REQUEST#{request id}``, ``sk = REQUEST``.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from webhook_adapter.errors import StaleContactState, StorageUnavailable
from webhook_adapter.merge import ContactState, FieldState, LastCall
from webhook_adapter.model import TERMINAL_STATUSES, ContactChange, ContactField, SourceEvent, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, WriteRequestTypeDef

    from webhook_adapter.outcome import Outcome  # deliver's outcomes: receive need not build the model

__all__ = [
    "HISTORY_LIMIT",
    "OPERATOR_STATUSES",
    "STATE_SK",
    "STATUS_INDEX",
    "STATUS_SHARDS",
    "EventStore",
    "Loaded",
    "MessageOutcomes",
    "StaleContactState",
    "contact_pk",
    "event_sk",
]

STATUS_INDEX = "StatusByTime"
STATUS_SHARDS = 16
"""Write-sharding of the status index: a bulk import's events of one status spread over this many keys a day."""
OPERATOR_STATUSES = frozenset(
    {Status.REJECTED, Status.INCOMPLETE, Status.UNMAPPED, Status.RETRYING, Status.DEAD_LETTERED, Status.REFUSED}
)
"""The statuses an operator acts on: only these are in the status index (it is sparse)."""
HISTORY_LIMIT = 8
"""Entries kept in an event's history: the first (when it was received) and the latest ones."""
STATE_SK = "S"
_EVENT_PREFIX = "E#"
_BATCH_GET_LIMIT = 100
_BATCH_WRITE_LIMIT = 25
_MAX_UNPROCESSED_ROUNDS = 5
_UNPROCESSED_BACKOFF_SECONDS = 0.05
"""First pause before asking again for unprocessed keys or items; doubled each round (at most 0.75 s in all)."""
_CONDITION_FAILED = "ConditionalCheckFailedException"
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def contact_pk(source: str, contact_id: str) -> str:
    """Partition key of a contact's items: its state and its events."""
    return f"C#{source}#{contact_id}"


def event_sk(key: str) -> str:
    """Sort key of an event's item within its contact."""
    return f"{_EVENT_PREFIX}{key}"


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _status_keys(status: Status, at_ms: int, pk: str, sk: str) -> dict[str, str]:
    """The status index's keys for an item in an operator status (none otherwise: the index is sparse)."""
    if status not in OPERATOR_STATUSES:
        return {}
    shard = zlib.crc32(f"{pk}#{sk}".encode()) % STATUS_SHARDS
    return {"status_bucket": f"{status}#{_iso(at_ms)[:10]}#{shard}", "status_at": f"{_iso(at_ms)}#{pk}#{sk}"}


def _history_entry(status: Status, reason: str | None, at_ms: int) -> dict[str, str]:
    entry = {"at": _iso(at_ms), "status": str(status)}
    if reason:
        entry["reason"] = reason
    return entry


def _bounded(history: list[dict[str, str]]) -> list[dict[str, str]]:
    """The first entry and the latest ones, so a long retry run cannot grow an item past a write unit."""
    if len(history) <= HISTORY_LIMIT:
        return history
    return [history[0], *history[-(HISTORY_LIMIT - 1) :]]


def _dump(item: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {name: _SERIALIZER.serialize(value) for name, value in item.items() if value is not None}


def _load(item: Mapping[str, Any]) -> dict[str, Any]:
    loaded = {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
    sk = str(loaded.get("sk", ""))
    if sk.startswith(_EVENT_PREFIX):
        loaded["event_key"] = sk.removeprefix(_EVENT_PREFIX)
    return loaded


def _key(pk: str, sk: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


type Loaded = tuple[ContactState, dict[str, dict[str, Any]]]
"""A contact's state and the items its events already have, by event key (``EventStore.load_change``)."""


@dataclass(frozen=True, slots=True)
class MessageOutcomes:
    """The outcomes of one queue message's events: what ``EventStore.record_outcomes`` writes for it."""

    change: ContactChange
    outcomes: Sequence[tuple[SourceEvent, Outcome]]
    attempts: int
    """The receive the outcomes were decided on."""
    prior: Mapping[str, Mapping[str, Any]]
    """The items its events had when they were read, by event key (their history goes on from there)."""
    now_ms: int
    """When the outcomes were decided."""


@dataclass(frozen=True, slots=True)
class EventStore:
    """Reads and writes the adapter's table.

    Every method raises ``StorageUnavailable`` when DynamoDB cannot be reached or refuses the call,
    so callers answer 5xx (receive) or retry (deliver) instead of losing the event.
    """

    client: DynamoDBClient
    table_name: str
    ttl_days: int

    def _ttl(self, now_ms: int) -> int:
        return int((datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(days=self.ttl_days)).timestamp())

    # ------------------------------------------------------------------ receive

    def known_events(self, source: str, events: Sequence[SourceEvent]) -> dict[str, Status]:
        """The status of each event among ``events`` that already has an item, by event key.

        Read eventually consistent (half the read units): a repeat that arrives within a second of
        its event's final write may be queued again, and deliver's strongly consistent read then
        finds it ended and records nothing twice.

        Raises:
            StorageUnavailable: DynamoDB failed or kept keys unprocessed.
        """
        items = self._batch_get(
            [(contact_pk(source, event.contact_id), event_sk(event.key)) for event in events],
            projection="sk, #status",
            consistent=False,
        )
        return {str(item["event_key"]): Status(item["status"]) for item in items}

    def record_settled(
        self, source: str, events: Sequence[SourceEvent], *, now_ms: int, correlation_id: str | None = None
    ) -> None:
        """Store events that ended on arrival (ignored, incomplete, refused, rejected), in as few calls as possible.

        ``correlation_id`` is the request's (API Gateway's request id), kept on each item.

        Unconditional batch puts: an event is settled the same way each time it arrives, so a
        repeat writes the same item.

        Raises:
            StorageUnavailable: a write failed or stayed unprocessed.
        """
        items = []
        for event in events:
            status = event.settled or Status.QUEUED
            pk, sk = contact_pk(source, event.contact_id), event_sk(event.key)
            items.append(
                {
                    "pk": pk,
                    "sk": sk,
                    **self._event_attributes(source, event, status, event.reason, now_ms, now_ms),
                    "refused_fields": {str(name): reason for name, reason in event.refused.items()} or None,
                    "correlation_id": correlation_id,
                    "attempts": 0,
                    "history": [_history_entry(status, event.reason, now_ms)],
                }
            )
        self._batch_put(items)

    def record_refused(
        self, *, request_id: str, source: str, status_code: int, code: str, message: str, body: bytes, now_ms: int
    ) -> None:
        """Record a request answered 4xx: why, and a digest of the body (never the body itself).

        Raises:
            StorageUnavailable: the write failed.
        """
        pk, sk = f"REQUEST#{request_id}", "REQUEST"
        item = {
            "pk": pk,
            "sk": sk,
            "source": source,
            "status": Status.REFUSED,
            "http_status": status_code,
            "code": code,
            "reason": message,
            "body_bytes": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "received_at": now_ms,
            "updated_at": _iso(now_ms),
            **_status_keys(Status.REFUSED, now_ms, pk, sk),
            "ttl": self._ttl(now_ms),
        }
        try:
            self.client.put_item(TableName=self.table_name, Item=_dump(item))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not record the refused request in DynamoDB") from exc

    # ------------------------------------------------------------------ deliver

    def load_change(self, change: ContactChange) -> Loaded:
        """In one read: the contact's merged state and the items its events already have (by event key).

        Raises:
            StorageUnavailable: the read failed.
        """
        return self.load_changes([change])[contact_pk(change.source, change.contact_id)]

    def load_changes(self, changes: Sequence[ContactChange]) -> dict[str, Loaded]:
        """``load_change`` for changes of several contacts in as few reads as possible, by ``contact_pk``.

        Raises:
            StorageUnavailable: a read failed.
        """
        pks = [contact_pk(change.source, change.contact_id) for change in changes]
        wanted = [
            key
            for pk, change in zip(pks, changes, strict=True)
            for key in [(pk, STATE_SK), *((pk, event_sk(event.key)) for event in change.events)]
        ]
        loaded: dict[str, Loaded] = {pk: (ContactState(), {}) for pk in pks}
        for item in self._batch_get(wanted):
            pk = str(item["pk"])
            if item["sk"] == STATE_SK:
                loaded[pk] = (_state_from_item(item), loaded[pk][1])
            else:
                loaded[pk][1][str(item["event_key"])] = item
        return loaded

    def save_contact(self, source: str, contact_id: str, state: ContactState, *, now_ms: int) -> None:
        """Write the contact's state if nobody changed it since it was read (optimistic version check).

        Raises:
            StaleContactState: another writer saved a newer version.
            StorageUnavailable: the write failed.
        """
        item = {
            "pk": contact_pk(source, contact_id),
            "sk": STATE_SK,
            "fields": {
                str(name): [field.value, field.occurred_at, field.event] for name, field in state.fields.items()
            },
            "applied": dict(state.applied) or None,
            "refused": dict(state.refused) or None,
            "last_call": _last_call_attribute(state.last_call),
            "version": state.version + 1,
            "updated_at": _iso(now_ms),
        }
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if state.version:
            condition = {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": _dump({":version": state.version}),
            }
        try:
            self.client.put_item(TableName=self.table_name, Item=_dump(item), **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                raise StaleContactState(f"contact state of {source} changed while it was being updated") from exc
            raise StorageUnavailable("could not save the contact state to DynamoDB") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("could not save the contact state to DynamoDB") from exc

    def record_outcomes(self, messages: Sequence[MessageOutcomes]) -> None:
        """Write each event's final item (its history continued from the item read before), batched.

        ``messages`` may come from several Sphere calls (and several contacts): each event is written
        with its own message's arrival time and receive count, and once (the first outcome of an event
        that two messages carried). Deliver is the only writer of a queued event's item, and a
        contact's changes are delivered one at a time (its FIFO message group), so a read-then-put
        cannot lose a concurrent update.

        Raises:
            StorageUnavailable: a write failed or stayed unprocessed.
        """
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for message in messages:
            for event, outcome in message.outcomes:
                item = self._outcome_item(
                    message.change,
                    event,
                    outcome,
                    message.prior.get(event.key),
                    attempts=message.attempts,
                    now_ms=message.now_ms,
                )
                items.setdefault((item["pk"], item["sk"]), item)
        self._batch_put(list(items.values()))

    def record_failure(
        self, change: ContactChange, events: Iterable[SourceEvent], outcome: Outcome, *, attempts: int, now_ms: int
    ) -> None:
        """Record a failed attempt (``retrying``, ``dead_lettered``) on events that have not ended.

        Conditional on the event not having a final status, so a failed repeat of a change that was
        already delivered leaves its record alone.

        Raises:
            StorageUnavailable: a write failed.
        """
        for event in events:
            pk, sk = contact_pk(change.source, event.contact_id), event_sk(event.key)
            values: dict[str, Any] = {
                **self._event_attributes(
                    change.source, event, outcome.status, outcome.reason, change.received_at, now_ms
                ),
                "customer_id": outcome.customer_id,
                "sphere": _sphere(outcome),
                "attempts": attempts,
                "correlation_id": change.correlation_id,
            }
            values |= _status_keys(outcome.status, now_ms, pk, sk)
            present = {name: value for name, value in values.items() if value is not None}
            absent = [name for name in ("status_bucket", "status_at", "sphere", "reason") if name not in present]
            names = {f"#{name}": name for name in [*present, *absent, "history"]}
            expression = "SET " + ", ".join(f"#{name} = :{name}" for name in present)
            expression += ", #history = list_append(if_not_exists(#history, :received), :entry)"
            if absent:
                expression += " REMOVE " + ", ".join(f"#{name}" for name in absent)
            terminal = [str(status) for status in TERMINAL_STATUSES]
            attribute_values = _dump({f":{name}": value for name, value in present.items()})
            attribute_values |= _dump(
                {
                    ":received": [_history_entry(Status.QUEUED, None, change.received_at)],
                    ":entry": [_history_entry(outcome.status, outcome.reason, now_ms)],
                    **{f":t{index}": status for index, status in enumerate(terminal)},
                }
            )
            condition = (
                f"attribute_not_exists(pk) OR NOT #status IN ({', '.join(f':t{i}' for i in range(len(terminal)))})"
            )
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=_key(pk, sk),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=attribute_values,
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                    continue  # it ended meanwhile: its final record stands
                raise StorageUnavailable("could not record the failed attempt in DynamoDB") from exc
            except BotoCoreError as exc:
                raise StorageUnavailable("could not record the failed attempt in DynamoDB") from exc

    def _event_attributes(
        self, source: str, event: SourceEvent, status: Status, reason: str | None, received_at: int, now_ms: int
    ) -> dict[str, Any]:
        """What every write of an event item sets: who it is, where it stands, and until when it is kept."""
        return {
            "source": source,
            "contact_id": event.contact_id,
            "event_id": event.event_id,
            "kind": event.kind,
            "fields": sorted(event.changes) or None,
            "occurred_at": event.occurred_at,
            "received_at": received_at,
            "updated_at": _iso(now_ms),
            "status": status,
            "reason": reason,
            **_status_keys(status, now_ms, contact_pk(source, event.contact_id), event_sk(event.key)),
            "ttl": self._ttl(now_ms),
        }

    def _outcome_item(
        self,
        change: ContactChange,
        event: SourceEvent,
        outcome: Outcome,
        prior: Mapping[str, Any] | None,
        *,
        attempts: int,
        now_ms: int,
    ) -> dict[str, Any]:
        earlier = list(prior.get("history", [])) if prior else [_history_entry(Status.QUEUED, None, change.received_at)]
        attributes = self._event_attributes(
            change.source, event, outcome.status, outcome.reason, change.received_at, now_ms
        )
        if event.replay is not None and prior:
            # A replay queued the event again without its values: what the CRM sent, and when, stays as recorded.
            attributes |= {name: prior[name] for name in _KEPT_ON_REPLAY if name in prior}
        return {
            "pk": contact_pk(change.source, event.contact_id),
            "sk": event_sk(event.key),
            **attributes,
            "missing": outcome.missing or None,
            "customer_id": outcome.customer_id,
            "request": outcome.request,
            "sphere": _sphere(outcome),
            "attempts": attempts,
            "correlation_id": change.correlation_id,
            "history": _bounded([*earlier, _history_entry(outcome.status, outcome.reason, now_ms)]),
        }

    # ------------------------------------------------------------------ operators

    def get_event(self, source: str, contact_id: str, key: str) -> dict[str, Any] | None:
        """An event's whole item (status, outcome, history), or ``None``.

        Raises:
            StorageUnavailable: the read failed.
        """
        try:
            answer = self.client.get_item(
                TableName=self.table_name, Key=_key(contact_pk(source, contact_id), event_sk(key)), ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not read from DynamoDB") from exc
        return _load(answer["Item"]) if "Item" in answer else None

    def load_contact(self, source: str, contact_id: str) -> ContactState:
        """The contact's merged state, or an empty one at version 0.

        Raises:
            StorageUnavailable: the read failed.
        """
        items = self._batch_get([(contact_pk(source, contact_id), STATE_SK)])
        return _state_from_item(items[0]) if items else ContactState()

    def contact_history(self, source: str, contact_id: str) -> list[dict[str, Any]]:
        """Every recorded event of one contact, oldest change first.

        Raises:
            StorageUnavailable: the query failed.
        """
        items = self._query(
            None,
            "pk = :pk AND begins_with(sk, :events)",
            {":pk": {"S": contact_pk(source, contact_id)}, ":events": {"S": _EVENT_PREFIX}},
        )
        return sorted(items, key=lambda item: (int(item["occurred_at"]), str(item["event_key"])))

    def events_by_status(self, status: Status, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Every item whose current status is ``status`` (one of ``OPERATOR_STATUSES``), set within [start, end].

        Raises:
            StorageUnavailable: a query failed.
        """
        found: list[dict[str, Any]] = []
        day = datetime.fromtimestamp(start_ms / 1000, UTC).date()
        last = datetime.fromtimestamp(end_ms / 1000, UTC).date()
        while day <= last:
            for shard in range(STATUS_SHARDS):
                found += self._query(
                    STATUS_INDEX,
                    "status_bucket = :bucket AND status_at BETWEEN :from AND :to",
                    {
                        ":bucket": {"S": f"{status}#{day.isoformat()}#{shard}"},
                        ":from": {"S": _iso(start_ms)},
                        ":to": {"S": _iso(end_ms) + "~"},
                    },
                )
            day += timedelta(days=1)
        return sorted(found, key=lambda item: str(item.get("status_at", "")))

    def scan_events(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Every event item and refused request last written within [start, end], whatever its status, oldest first.

        A ``Scan`` of the whole table (the filter does not lower the read units: every item is read):
        for the statuses the status index leaves out (delivered, unchanged, superseded, ignored), on
        an operator's explicit request only. Contact states are left out.

        Raises:
            StorageUnavailable: the scan failed.
        """
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("scan")
        try:
            for page in paginator.paginate(
                TableName=self.table_name,
                FilterExpression="updated_at BETWEEN :from AND :to AND sk <> :state",
                ExpressionAttributeValues=_dump({":from": _iso(start_ms), ":to": _iso(end_ms), ":state": STATE_SK}),
            ):
                items += [_load(item) for item in page.get("Items", [])]
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not scan DynamoDB") from exc
        return sorted(items, key=lambda item: (str(item["updated_at"]), str(item["pk"]), str(item["sk"])))

    # ------------------------------------------------------------------ calls

    def _batch_get(
        self, keys: Sequence[tuple[str, str]], *, projection: str | None = None, consistent: bool = True
    ) -> list[dict[str, Any]]:
        """The items at ``keys`` (those that exist), strongly consistent unless told otherwise, 100 keys a call."""
        unique = list(dict.fromkeys(keys))
        found: list[dict[str, Any]] = []
        for start in range(0, len(unique), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                "Keys": [_key(pk, sk) for pk, sk in unique[start : start + _BATCH_GET_LIMIT]],
                "ConsistentRead": consistent,
            }
            if projection:
                request |= {"ProjectionExpression": projection, "ExpressionAttributeNames": {"#status": "status"}}
            found += [_load(item) for item in self._batch_get_rounds({self.table_name: request})]
        return found

    def _batch_get_rounds(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for round_number in range(_MAX_UNPROCESSED_ROUNDS):
            if round_number:  # DynamoDB throttled part of the batch: back off before asking for the rest
                time.sleep(_UNPROCESSED_BACKOFF_SECONDS * 2 ** (round_number - 1))
            try:
                answer = self.client.batch_get_item(RequestItems=request)
            except (BotoCoreError, ClientError) as exc:
                raise StorageUnavailable("could not read events from DynamoDB") from exc
            yield from answer.get("Responses", {}).get(self.table_name, [])
            request = dict(answer.get("UnprocessedKeys") or {})
            if not request:
                return
        raise StorageUnavailable("DynamoDB left event reads unprocessed")

    def _batch_put(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Put ``items``, 25 a call, asking again (with backoff) for what DynamoDB leaves unprocessed."""
        for start in range(0, len(items), _BATCH_WRITE_LIMIT):
            pending: list[WriteRequestTypeDef] = [
                {"PutRequest": {"Item": _dump(item)}} for item in items[start : start + _BATCH_WRITE_LIMIT]
            ]
            for round_number in range(_MAX_UNPROCESSED_ROUNDS):
                if round_number:
                    time.sleep(_UNPROCESSED_BACKOFF_SECONDS * 2 ** (round_number - 1))
                try:
                    answer = self.client.batch_write_item(RequestItems={self.table_name: pending})
                except (BotoCoreError, ClientError) as exc:
                    raise StorageUnavailable("could not record events in DynamoDB") from exc
                pending = cast(
                    "list[WriteRequestTypeDef]", (answer.get("UnprocessedItems") or {}).get(self.table_name, [])
                )
                if not pending:
                    break
            else:
                raise StorageUnavailable("DynamoDB left event writes unprocessed")

    def _query(self, index: str | None, condition: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if index:
            arguments["IndexName"] = index
        try:
            for page in paginator.paginate(**arguments):
                items += [_load(item) for item in page.get("Items", [])]
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not query DynamoDB") from exc
        return items


_KEPT_ON_REPLAY = ("fields", "kind", "occurred_at", "received_at")
"""An event item's attributes a replay's outcome leaves as the first delivery recorded them."""


def _sphere(outcome: Outcome) -> dict[str, Any] | None:
    return outcome.sphere.model_dump(exclude_none=True, exclude_defaults=True) if outcome.sphere else None


def _state_from_item(item: Mapping[str, Any]) -> ContactState:
    fields = {
        ContactField(name): FieldState(value=value, occurred_at=int(occurred_at), event=str(event))
        for name, (value, occurred_at, event) in item.get("fields", {}).items()
    }
    last = item.get("last_call")
    return ContactState(
        fields=fields,
        applied=dict(item.get("applied") or {}),
        version=int(item["version"]),
        refused=dict(item.get("refused") or {}),
        last_call=LastCall(
            events=frozenset(last["events"]),
            groups=tuple(last["groups"]),
            result=last["result"],
            refused=last["refused"],
        )
        if last
        else None,
    )


def _last_call_attribute(last: LastCall | None) -> dict[str, Any] | None:
    if last is None:
        return None
    return {
        "events": sorted(last.events),
        "groups": list(last.groups),
        "result": dict(last.result),
        "refused": last.refused,
    }
