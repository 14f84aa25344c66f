"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.stack import LocalStack
from e2e.support import stack_with


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """The local stack on free ports, as ``make run`` starts it (without the demo)."""
    yield from stack_with()
