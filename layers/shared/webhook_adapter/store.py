"""DynamoDB data access: one table for events, their outcomes, and each contact's merged state.

Keys (``pk``/``sk``, two sparse GSIs), so an operator can ask the three questions that matter:

- an event's history: ``pk = EVENT#{source}#{key}``, ``sk = EVENT``; the item's ``history`` list
  holds every status it went through;
- a contact's history: index ``ContactHistory``, ``gsi1pk = CONTACT#{source}#{contact}``,
  ``gsi1sk = {occurred ISO time}#{key}``;
- every event in a status over a time range: index ``StatusByTime``,
  ``gsi2pk = STATUS#{status}#{day}#{shard}``, ``gsi2sk = {updated ISO time}#{source}#{key}`` —
  sharded by day and by ``STATUS_SHARDS`` suffixes so a bulk import does not funnel every write
  into one partition; ``events_by_status`` queries the buckets of the asked range.

A contact's merged state is the item ``pk = CONTACT#{source}#{contact}``, ``sk = STATE``.
Refused requests (4xx) are recorded as ``pk = REQUEST#{id}``, ``sk = REQUEST`` in status ``refused``.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from webhook_adapter.errors import StorageUnavailable
from webhook_adapter.merge import ContactState, FieldState
from webhook_adapter.model import ContactChange, ContactField, SourceEvent, Status
from webhook_adapter.outcome import Outcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = [
    "CONTACT_INDEX",
    "STATUS_INDEX",
    "STATUS_SHARDS",
    "EventStore",
    "StaleContactState",
    "contact_pk",
    "event_pk",
]

CONTACT_INDEX = "ContactHistory"
STATUS_INDEX = "StatusByTime"
STATUS_SHARDS = 8
"""Write-sharding of the status index: each (status, day) spreads over this many partition keys."""
_BATCH_GET_LIMIT = 100
_WRITE_WORKERS = 8
_MAX_UNPROCESSED_ROUNDS = 5
_UNPROCESSED_BACKOFF_SECONDS = 0.05
"""First pause before re-reading unprocessed keys; doubled each round (at most 0.75 s in all)."""
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class StaleContactState(Exception):
    """The contact's state changed since it was read (another writer got there first)."""


def event_pk(source: str, key: str) -> str:
    """Partition key of an event's item."""
    return f"EVENT#{source}#{key}"


def contact_pk(source: str, contact_id: str) -> str:
    """Partition key of a contact's state item (and of its history in ``ContactHistory``)."""
    return f"CONTACT#{source}#{contact_id}"


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _shard(value: str) -> int:
    return zlib.crc32(value.encode()) % STATUS_SHARDS


def _status_keys(status: Status, at_ms: int, source: str, key: str) -> dict[str, str]:
    day = _iso(at_ms)[:10]
    return {
        "gsi2pk": f"STATUS#{status}#{day}#{_shard(source + key)}",
        "gsi2sk": f"{_iso(at_ms)}#{source}#{key}",
    }


def _history_entry(status: Status, reason: str | None, at_ms: int) -> dict[str, str]:
    entry = {"at": _iso(at_ms), "status": str(status)}
    if reason:
        entry["reason"] = reason
    return entry


def _dump(item: dict[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {name: _SERIALIZER.serialize(value) for name, value in item.items() if value is not None}


def _load(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


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

    # ------------------------------------------------------------------ events

    def event_statuses(self, source: str, keys: Iterable[str]) -> dict[str, Status]:
        """The current status of each known event among ``keys`` (unknown keys are absent).

        Raises:
            StorageUnavailable: DynamoDB failed or kept keys unprocessed.
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Status] = {}
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        {"pk": {"S": event_pk(source, key)}, "sk": {"S": "EVENT"}}
                        for key in wanted[start : start + _BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                    "ProjectionExpression": "event_key, #s",
                    "ExpressionAttributeNames": {"#s": "status"},
                }
            }
            for item in self._batch_get(request):
                found[item["event_key"]["S"]] = Status(item["status"]["S"])
        return found

    def _batch_get(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
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

    def record_received(self, source: str, events: Sequence[SourceEvent], *, status: Status, now_ms: int) -> None:
        """Store each new event with its first status (``queued``, or how it was settled on receipt).

        A conditional put: an item that already exists (a duplicate, or deliver got there first)
        is left as it is.

        Raises:
            StorageUnavailable: a write failed for another reason than the item existing.
        """
        items = [self._received_item(source, event, status=event.settled or status, now_ms=now_ms) for event in events]
        if len(items) <= 1:
            for item in items:
                self._put_new(item)
            return
        with ThreadPoolExecutor(max_workers=min(_WRITE_WORKERS, len(items))) as pool:
            list(pool.map(self._put_new, items))

    def _received_item(self, source: str, event: SourceEvent, *, status: Status, now_ms: int) -> dict[str, Any]:
        return {
            "pk": event_pk(source, event.key),
            "sk": "EVENT",
            **self._event_attributes(
                source, event, status=status, reason=event.reason, received_at=now_ms, now_ms=now_ms
            ),
            "attempts": 0,
            "history": [_history_entry(status, event.reason, now_ms)],
        }

    def _event_attributes(
        self, source: str, event: SourceEvent, *, status: Status, reason: str | None, received_at: int, now_ms: int
    ) -> dict[str, Any]:
        """What every write of an event item sets: its identity, its status and the index keys that follow them."""
        return {
            "source": source,
            "event_key": event.key,
            "event_id": event.event_id,
            "contact_id": event.contact_id,
            "kind": event.kind,
            "fields": sorted(event.changes) or None,
            "occurred_at": event.occurred_at,
            "received_at": received_at,
            "updated_at": _iso(now_ms),
            "status": status,
            "reason": reason,
            "gsi1pk": contact_pk(source, event.contact_id),
            "gsi1sk": f"{_iso(event.occurred_at)}#{event.key}",
            **_status_keys(status, now_ms, source, event.key),
            "ttl": self._ttl(now_ms),
        }

    def _put_new(self, item: dict[str, Any]) -> None:
        try:
            self.client.put_item(
                TableName=self.table_name, Item=_dump(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return
            raise StorageUnavailable("could not store the event in DynamoDB") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("could not store the event in DynamoDB") from exc

    def record_outcome(
        self, change: ContactChange, event: SourceEvent, outcome: Outcome, *, attempts: int, now_ms: int
    ) -> None:
        """Set an event's status and outcome, appending to its history (creating the item if receive has not yet).

        Raises:
            StorageUnavailable: the write failed.
        """
        entry = _history_entry(outcome.status, outcome.reason, now_ms)
        values: dict[str, Any] = {
            **self._event_attributes(
                change.source,
                event,
                status=outcome.status,
                reason=outcome.reason,
                received_at=change.received_at,
                now_ms=now_ms,
            ),
            "missing": outcome.missing or None,
            "customer_id": outcome.customer_id,
            "request": outcome.request,
            "sphere": outcome.sphere.model_dump(exclude_none=True, exclude_defaults=True) if outcome.sphere else None,
            "attempts": attempts,
        }
        present = {name: value for name, value in values.items() if value is not None}
        absent = [name for name, value in values.items() if value is None]
        names = {f"#{name}": name for name in [*present, *absent, "history"]}
        expression = "SET " + ", ".join(f"#{name} = :{name}" for name in present)
        expression += ", #history = list_append(if_not_exists(#history, :empty), :entry)"
        if absent:
            expression += " REMOVE " + ", ".join(f"#{name}" for name in absent)
        attribute_values = _dump({f":{name}": value for name, value in present.items()})
        attribute_values |= _dump({":empty": [], ":entry": [entry]})
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": event_pk(change.source, event.key)}, "sk": {"S": "EVENT"}},
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attribute_values,
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not record the outcome in DynamoDB") from exc

    def record_refused(
        self, *, request_id: str, source: str, status_code: int, code: str, message: str, body: bytes, now_ms: int
    ) -> None:
        """Record a request answered 4xx: why, and a digest of the body (never the body itself).

        Raises:
            StorageUnavailable: the write failed.
        """
        item = {
            "pk": f"REQUEST#{request_id}",
            "sk": "REQUEST",
            "source": source,
            "status": Status.REFUSED,
            "http_status": status_code,
            "code": code,
            "reason": message,
            "body_bytes": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "received_at": now_ms,
            "updated_at": _iso(now_ms),
            **_status_keys(Status.REFUSED, now_ms, source, request_id),
            "ttl": self._ttl(now_ms),
        }
        try:
            self.client.put_item(TableName=self.table_name, Item=_dump(item))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not record the refused request in DynamoDB") from exc

    def get_event(self, source: str, key: str) -> dict[str, Any] | None:
        """An event's whole item (status, outcome, history), or ``None``.

        Raises:
            StorageUnavailable: the read failed.
        """
        return self._get_item(event_pk(source, key), "EVENT")

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            answer = self.client.get_item(
                TableName=self.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not read from DynamoDB") from exc
        return _load(answer["Item"]) if "Item" in answer else None

    def contact_history(self, source: str, contact_id: str) -> list[dict[str, Any]]:
        """Every event of one contact, oldest change first.

        Raises:
            StorageUnavailable: the query failed.
        """
        return self._query(CONTACT_INDEX, "gsi1pk = :pk", {":pk": {"S": contact_pk(source, contact_id)}})

    def events_by_status(self, status: Status, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Every event whose current status is ``status`` and was set within [start, end], oldest first.

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
                    "gsi2pk = :pk AND gsi2sk BETWEEN :from AND :to",
                    {
                        ":pk": {"S": f"STATUS#{status}#{day.isoformat()}#{shard}"},
                        ":from": {"S": _iso(start_ms)},
                        ":to": {"S": _iso(end_ms) + "~"},
                    },
                )
            day += timedelta(days=1)
        return sorted(found, key=lambda item: str(item.get("gsi2sk", "")))

    def _query(self, index: str, condition: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self.table_name,
                IndexName=index,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
            ):
                items += [_load(item) for item in page.get("Items", [])]
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("could not query DynamoDB") from exc
        return items

    # ---------------------------------------------------------------- contacts

    def load_contact(self, source: str, contact_id: str) -> ContactState:
        """The contact's merged state, or an empty one at version 0.

        Raises:
            StorageUnavailable: the read failed.
        """
        item = self._get_item(contact_pk(source, contact_id), "STATE")
        if item is None:
            return ContactState()
        fields = {
            ContactField(name): FieldState(value=raw.get("v"), occurred_at=int(raw["t"]), event_key=str(raw["k"]))
            for name, raw in item.get("fields", {}).items()
        }
        return ContactState(
            fields=fields,
            applied=dict(item.get("applied") or {}),
            version=int(item["version"]),
            refused=dict(item.get("refused") or {}),
        )

    def save_contact(self, source: str, contact_id: str, state: ContactState, *, now_ms: int) -> None:
        """Write the contact's state if nobody changed it since it was read (optimistic version check).

        Raises:
            StaleContactState: another writer saved a newer version.
            StorageUnavailable: the write failed.
        """
        item = {
            "pk": contact_pk(source, contact_id),
            "sk": "STATE",
            "source": source,
            "contact_id": contact_id,
            "fields": {
                str(name): {"v": field.value, "t": field.occurred_at, "k": field.event_key}
                for name, field in state.fields.items()
            },
            "applied": state.applied,
            "refused": state.refused,
            "version": state.version + 1,
            "updated_at": _iso(now_ms),
        }
        try:
            if state.version == 0:
                self.client.put_item(
                    TableName=self.table_name, Item=_dump(item), ConditionExpression="attribute_not_exists(pk)"
                )
            else:
                self.client.put_item(
                    TableName=self.table_name,
                    Item=_dump(item),
                    ConditionExpression="version = :version",
                    ExpressionAttributeValues=_dump({":version": state.version}),
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StaleContactState(f"contact state of {source} changed while it was being updated") from exc
            raise StorageUnavailable("could not save the contact state to DynamoDB") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("could not save the contact state to DynamoDB") from exc
