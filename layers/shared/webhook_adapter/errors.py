"""One exception hierarchy for the adapter, split where it matters: transient (retry) or permanent (refuse or record).

- ``PermanentError``: retrying the same input cannot help. At receive it is the CRM's bad request
  (a 4xx, recorded as ``refused``); at deliver it is recorded as the event's outcome and the
  change is not retried.
- ``TransientError``: the adapter or a service it depends on could not do it now. At receive it is
  a 5xx so the CRM retries; at deliver the message is delayed (``retry_after`` when the service
  said how long) and delivered again.

Each function catches them in one place: ``api.answer_webhook`` (receive) and
``consume.deliver_batch`` (deliver). Nothing string-matches messages. Messages never carry a
secret, a signature, a body or PII.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webhook_adapter.outcome import SphereResult

__all__ = [
    "AdapterError",
    "BodyTooLarge",
    "ChannelRefused",
    "CredentialsError",
    "CrmUnavailable",
    "ForbiddenSender",
    "InvalidPayload",
    "InvalidValue",
    "PermanentError",
    "PoisonMessage",
    "SecretUnavailable",
    "SignatureError",
    "SphereCallsHeld",
    "SphereRefused",
    "SphereUnavailable",
    "StaleContactState",
    "StorageUnavailable",
    "TransientError",
    "UnknownSource",
    "UnsupportedMediaType",
    "VerificationUnavailable",
]


class AdapterError(Exception):
    """Base of every error the adapter raises on purpose; ``status_code`` and ``code`` are its HTTP answer."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentError(AdapterError):
    """Retrying the same input cannot succeed: refuse it, or record it and stop."""

    status_code = 400
    code = "invalid_request"


class TransientError(AdapterError):
    """Not now: retry later, after ``retry_after`` seconds when the failing service said so."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# ------------------------------------------------------------------------ receive: the CRM's request (4xx)


class UnknownSource(PermanentError):
    """The ``{source}`` path parameter names no configured source."""

    status_code = 404
    code = "unknown_source"


class BodyTooLarge(PermanentError):
    """The request body is over the configured limit."""

    status_code = 413
    code = "body_too_large"


class UnsupportedMediaType(PermanentError):
    """The request's content type is not the one the source sends."""

    status_code = 415
    code = "unsupported_media_type"


class SignatureError(PermanentError):
    """The request is not authentic: a signature or timestamp is missing, malformed, stale or wrong."""

    status_code = 401
    code = "invalid_signature"


class CredentialsError(SignatureError):
    """The request is not authentic: a password, key or endpoint token (unsigned sources) is missing or wrong."""

    code = "invalid_credentials"


class ForbiddenSender(PermanentError):
    """The request is authentic in form but comes from an account this deployment does not serve (an allow-list)."""

    status_code = 403
    code = "forbidden_sender"


class InvalidPayload(PermanentError):
    """The body is not parseable, or does not have the shape the source promises."""

    status_code = 400
    code = "invalid_payload"


# ------------------------------------------------------------------------ deliver: values and messages


class InvalidValue(PermanentError):
    """A field's value cannot be normalized; the message says why without repeating the value."""

    code = "invalid_value"


class PoisonMessage(PermanentError):
    """A queue message that is not a contact change: no retry can deliver it (it goes to the dead-letter queue)."""

    code = "poison_message"


class SphereRefused(PermanentError):
    """Sphere refused the request for good (a 4xx other than 401 and 429)."""

    code = "sphere_refused"

    def __init__(self, result: SphereResult) -> None:
        super().__init__(f"Sphere refused the update: {result.code or result.http_status}")
        self.result = result


# ------------------------------------------------------------------------ transient, on either side


class VerificationUnavailable(TransientError):
    """The verification secret could not be read: answer 5xx so the CRM retries later."""

    code = "verification_unavailable"


class StorageUnavailable(TransientError):
    """DynamoDB or SQS could not take the call: answer 5xx (receive) or retry the change (deliver)."""

    code = "storage_unavailable"


class SecretUnavailable(TransientError):
    """A secret could not be read (missing, no permission, Secrets Manager unreachable)."""

    code = "secret_unavailable"


class StaleContactState(TransientError):
    """The contact's state changed since it was read (another writer got there first): read it again."""

    code = "stale_contact_state"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=1)


class SphereUnavailable(TransientError):
    """Sphere could not take the request now (429, 5xx, timeout, dropped connection, a 401 a fresh key did not cure)."""

    code = "sphere_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, result: SphereResult | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.result = result


class CrmUnavailable(TransientError):
    """The CRM's API could not give a record now (429, 5xx, timeout, dropped connection, a 401 a fresh token did
    not cure): the change is retried, as a call Sphere could not take is."""

    code = "crm_unavailable"


class ChannelRefused(PermanentError):
    """Zoho would neither renew nor enable the notification channel (the channel function's settings are wrong)."""

    code = "channel_refused"


class SphereCallsHeld(TransientError):
    """The container holds its calls to Sphere longer than the invocation can wait: retry after ``retry_after``.

    Its share of the rate ceiling, or a pause after Sphere's 429, left no call for this change in
    the time the invocation has; Sphere was not called.
    """

    code = "sphere_calls_held"

    def __init__(self, *, retry_after: float) -> None:
        super().__init__(
            "the adapter is holding its calls to Sphere (its rate ceiling, or Sphere answered 429)",
            retry_after=retry_after,
        )
