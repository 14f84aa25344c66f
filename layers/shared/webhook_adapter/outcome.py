"""What happened to an event, in the shape it is recorded (no raw PII: requests are masked first)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from webhook_adapter.model import Status

__all__ = ["Outcome", "SphereResult"]


class SphereResult(BaseModel):
    """What Sphere answered, worth keeping with the outcome."""

    model_config = ConfigDict(frozen=True)

    http_status: int | None = None
    updated_at: str | None = None
    kyc_status: str | None = None
    kyc_errors: list[str] = Field(default_factory=list)
    code: str | None = None
    detail: str | None = None
    correlation_id: str | None = None


class Outcome(BaseModel):
    """One event's result: its status, why, and what was (or would have been) sent."""

    model_config = ConfigDict(frozen=True)

    status: Status
    reason: str | None = None
    missing: list[str] = Field(default_factory=list)
    customer_id: str | None = None
    request: dict[str, Any] | None = None
    """The Sphere request body with PII masked."""
    sphere: SphereResult | None = None
