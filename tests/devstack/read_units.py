"""DynamoDB read units, counted from the adapter's ``BatchGetItem`` calls and the size of each item asked for.

On-demand bills a strongly consistent read one unit per started 4 KB of the whole item (a
projection does not make it cheaper), half for an eventually consistent one, and a key that finds
no item still one unit (half). ``ReadMeter`` hooks a client's events like ``WriteMeter`` and reads
each asked-for item whole with its own client to size it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from devstack.write_units import item_size

__all__ = ["ReadMeter"]

_READ_UNIT_BYTES = 4 * 1024


@dataclass
class ReadMeter:
    """Counts the read units of ``BatchGetItem`` calls through a client, sizing items with ``reader``."""

    reader: Any
    table: str
    units: float = 0.0
    keys: int = 0
    missing: int = 0
    sizes: list[int] = field(default_factory=list)

    @contextmanager
    def watching(self, client: Any) -> Iterator[ReadMeter]:
        """Count the reads made through ``client`` inside the block."""

        def before(params: dict[str, Any], **_: Any) -> None:
            request = params["RequestItems"].get(self.table, {})
            share = 1.0 if request.get("ConsistentRead") else 0.5
            for key in request.get("Keys", []):
                item = self.reader.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
                self.keys += 1
                if item is None:
                    self.missing += 1
                    self.units += share
                    continue
                size = item_size(item)
                self.sizes.append(size)
                self.units += share * max(1, math.ceil(size / _READ_UNIT_BYTES))

        event = "provide-client-params.dynamodb.BatchGetItem"
        client.meta.events.register(event, before)
        try:
            yield self
        finally:
            client.meta.events.unregister(event, before)
