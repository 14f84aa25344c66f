"""DynamoDB write units, counted from the calls the adapter makes and each item's size, as on-demand bills them.

A write costs one unit per started KB of the item, the larger of before and after; a conditional
write that fails still costs one; each write also costs, in every index whose keys the item has
(before or after), the units of the projected item (a key change is a delete plus a put). Item
sizes follow DynamoDB's rules: attribute names and values in UTF-8, numbers by their digits.

``WriteMeter`` hooks a boto3 client's events, so it counts exactly the calls made through that
client; it reads items before and after each write with its own client (reads are not counted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["WriteMeter", "item_size", "write_units"]

_KB = 1024
_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")


def _value_size(value: Mapping[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    match kind:
        case "S":
            return len(str(inner).encode())
        case "B":
            return len(inner)
        case "N":
            digits = str(Decimal(str(inner))).lstrip("-").replace(".", "").lstrip("0") or "0"
            return (len(digits) + 1) // 2 + 1
        case "BOOL" | "NULL":
            return 1
        case "L":
            return 3 + sum(_value_size(element) + 1 for element in inner)
        case "M":
            return 3 + sum(len(name.encode()) + _value_size(element) + 1 for name, element in inner.items())
        case "SS" | "NS" | "BS":
            return sum(_value_size({kind[0]: element}) for element in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Any]) -> int:
    """Bytes of an item in DynamoDB's wire format (``{"name": {"S": "..."}}``)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def write_units(item: Mapping[str, Any] | None) -> int:
    """Write units of writing ``item`` (0 for no item)."""
    return math.ceil(item_size(item) / _KB) if item else 0


@dataclass
class WriteMeter:
    """Counts the write units of the calls made through ``client``, using ``reader`` to see items before and after.

    ``indexes`` maps each index name to its key attributes (all indexes project ALL attributes here).
    """

    reader: Any
    table: str
    indexes: Mapping[str, tuple[str, ...]]
    table_units: int = 0
    index_units: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)

    @property
    def units(self) -> int:
        """Every write unit counted so far: the table's and the indexes'."""
        return self.table_units + self.index_units

    @contextmanager
    def watching(self, client: Any) -> Iterator[WriteMeter]:
        """Count the writes made through ``client`` inside the block."""
        pending: list[tuple[str, list[tuple[dict[str, Any], dict[str, Any] | None]]]] = []

        def before(params: dict[str, Any], model: Any, **_: Any) -> None:
            operation = model.name
            pending.append((operation, [(key, self._read(key)) for key in self._keys(operation, params)]))

        def after(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
            operation, befores = pending.pop()
            self.calls[operation] = self.calls.get(operation, 0) + 1
            error = parsed.get("Error", {}).get("Code")
            if error == "ConditionalCheckFailedException":
                self.table_units += 1
                return
            if error:
                return
            unprocessed = {
                _key_of(request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"])
                for request in (parsed.get("UnprocessedItems") or {}).get(self.table, [])
            }
            for key, old in befores:
                if _key_of(key) not in unprocessed:
                    self._count(old, self._read(key))

        handlers: list[tuple[str, Callable[..., None]]] = []
        for operation in _WRITES:
            handlers.append((f"provide-client-params.dynamodb.{operation}", before))
            handlers.append((f"after-call.dynamodb.{operation}", after))
        for event, handler in handlers:
            client.meta.events.register(event, handler)
        try:
            yield self
        finally:
            for event, handler in handlers:
                client.meta.events.unregister(event, handler)

    def _keys(self, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if operation == "BatchWriteItem":
            requests = params["RequestItems"].get(self.table, [])
            return [
                _key_of_dict(
                    request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"]
                )
                for request in requests
            ]
        if operation == "PutItem":
            return [_key_of_dict(params["Item"])]
        return [_key_of_dict(params["Key"])]

    def _read(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.reader.get_item(TableName=self.table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item

    def _count(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        self.table_units += max(write_units(old), write_units(new), 1)
        if new:
            self.sizes.append(item_size(new))
        for keys in self.indexes.values():
            old_keys = _index_keys(old, keys)
            new_keys = _index_keys(new, keys)
            if old_keys is None and new_keys is None:
                continue
            if old_keys == new_keys:
                if old != new:
                    self.index_units += max(write_units(old), write_units(new))
                continue
            self.index_units += write_units(old) if old_keys is not None else 0
            self.index_units += write_units(new) if new_keys is not None else 0


def _index_keys(item: Mapping[str, Any] | None, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    if item is None or any(name not in item for name in keys):
        return None
    return tuple(str(item[name]) for name in keys)


def _key_of_dict(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


def _key_of(item: Mapping[str, Any]) -> tuple[str, str]:
    return (str(item["pk"]), str(item["sk"]))
