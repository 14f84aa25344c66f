"""One exception hierarchy for the adapter; each error knows the HTTP answer it stands for.

The receive handler maps these to responses in one place (``http_error_response``); nothing else
string-matches messages. Messages never carry a secret, a signature, a body or PII.
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "BodyTooLarge",
    "InvalidPayload",
    "SignatureError",
    "StorageUnavailable",
    "UnknownSource",
    "UnsupportedMediaType",
    "VerificationUnavailable",
]


class AdapterError(Exception):
    """Base of every error the adapter raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownSource(AdapterError):
    """The ``{source}`` path parameter names no configured source."""

    status_code = 404
    code = "unknown_source"


class BodyTooLarge(AdapterError):
    """The request body is over the configured limit."""

    status_code = 413
    code = "body_too_large"


class UnsupportedMediaType(AdapterError):
    """The request's content type is not the one the source sends."""

    status_code = 415
    code = "unsupported_media_type"


class SignatureError(AdapterError):
    """The request is not authentic: a signature or timestamp is missing, malformed, stale or wrong."""

    status_code = 401
    code = "invalid_signature"


class InvalidPayload(AdapterError):
    """The body is not parseable, or does not have the shape the source promises."""

    status_code = 400
    code = "invalid_payload"


class VerificationUnavailable(AdapterError):
    """The verification secret could not be read: answer 5xx so the CRM retries later."""

    status_code = 503
    code = "verification_unavailable"


class StorageUnavailable(AdapterError):
    """The event could not be stored or queued: answer 5xx so the CRM retries and nothing is lost."""

    status_code = 503
    code = "storage_unavailable"
