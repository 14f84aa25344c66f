"""Signature schemes, one small pure ``verify_*`` per scheme, over the request's raw bytes.

Each function fails closed: it returns ``None`` only for an authentic request and otherwise raises
``SignatureError`` with a message naming the cause (never the signature or the secret). Time is
passed in as ``now`` (epoch seconds) so callers and tests control the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence

from webhook_adapter.errors import CredentialsError, SignatureError

__all__ = [
    "HUBSPOT_URI_ESCAPES",
    "SIGNATURE_TOLERANCE_SECONDS",
    "sign_attio",
    "sign_close",
    "sign_hubspot_v3",
    "sign_standard_webhook",
    "verify_attio",
    "verify_close",
    "verify_credential",
    "verify_hubspot_legacy",
    "verify_hubspot_v3",
    "verify_standard_webhook",
    "verify_with_any",
]

SIGNATURE_TOLERANCE_SECONDS = 300
"""How far a signed timestamp may be from now, either way (HubSpot and Standard Webhooks: 5 minutes)."""

HUBSPOT_URI_ESCAPES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
"""Escapes HubSpot's docs say it decodes in the URI before signing v3 (unconfirmed: both readings are accepted)."""

_STANDARD_SECRET_PREFIX = "whsec_"  # nosec B105 # the prefix of the Standard Webhooks secret format, not a secret
_MAX_TIMESTAMP_DIGITS = 20
"""No epoch time (seconds or milliseconds) this side of the year 3 billion has more digits.

Checked before the text becomes a number: longer digit strings overflow a float (310+ digits) or
exceed Python's int conversion limit (4,300+), and a zero-padded one is not what a CRM sends.
"""


def _checked_timestamp(timestamp: str | None, *, now: float, divisor: int, header: str) -> str:
    if not timestamp:
        raise SignatureError(f"missing {header} header")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError(f"{header} is not an integer timestamp")
    if len(timestamp) > _MAX_TIMESTAMP_DIGITS or (len(timestamp) > 1 and timestamp.startswith("0")):
        raise SignatureError(f"{header} is not a timestamp: over {_MAX_TIMESTAMP_DIGITS} digits or zero-padded")
    age = now - int(timestamp) / divisor
    if age > SIGNATURE_TOLERANCE_SECONDS:
        raise SignatureError(f"{header} is older than {SIGNATURE_TOLERANCE_SECONDS} seconds")
    if age < -SIGNATURE_TOLERANCE_SECONDS:
        raise SignatureError(f"{header} is more than {SIGNATURE_TOLERANCE_SECONDS} seconds in the future")
    return timestamp


def _ascii(value: str, header: str) -> bytes:
    """A signature's bytes; base64 and hex are ASCII, so anything else cannot match (and may not encode)."""
    if not value.isascii():
        raise SignatureError(f"{header} is not base64 or hex text")
    return value.encode("ascii")


def _utf8(value: str, what: str) -> bytes:
    """Signed text's bytes as the sender signed them (UTF-8); a lone surrogate has none, so nobody signed it."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SignatureError(f"{what} is not valid text") from exc


def _matches_any(expected: Iterable[bytes], given: Iterable[bytes]) -> bool:
    candidates = list(given)
    # Compare every pair (no early exit on a hit) so timing says nothing about which one matched.
    found = False
    for mac in expected:
        for signature in candidates:
            found |= hmac.compare_digest(mac, signature)
    return found


def verify_with_any(secrets: Sequence[str], check: Callable[[str], None]) -> None:
    """Pass when ``check`` passes for one of the secrets (a rotation holds two); else raise the last refusal.

    For schemes whose verifier takes one secret at a time.

    Raises:
        SignatureError: no secret is configured, or ``check`` refused every one.
    """
    last_error = SignatureError("no verification secret is configured")
    for secret in secrets or [""]:
        try:
            check(secret)
        except SignatureError as exc:
            last_error = exc
        else:
            return
    raise last_error


def _hubspot_decoded_uri(uri: str) -> str:
    for escape, char in HUBSPOT_URI_ESCAPES.items():
        uri = uri.replace(escape, char).replace(escape.lower(), char)
    return uri


def sign_hubspot_v3(*, secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The ``X-HubSpot-Signature-v3`` value HubSpot sends for this request (also used by tests and tools).

    Raises:
        SignatureError: the secret, method, URI or timestamp is not text (a lone surrogate has no bytes).
    """
    message = _utf8(method.upper() + uri, "the request method or URL") + body + _utf8(timestamp, "the timestamp")
    key = _utf8(secret, "the configured secret")
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def verify_hubspot_v3(
    *, secret: str, method: str, uri: str, body: bytes, signature: str | None, timestamp: str | None, now: float
) -> None:
    """Verify HubSpot's v3 signature: base64 HMAC-SHA256 of method + URI + body + timestamp.

    ``uri`` is the public URL HubSpot was configured with; the timestamp is used exactly as received.

    Raises:
        SignatureError: the signature or timestamp is missing, malformed, stale, or does not match; or the
            secret, method or URI is not text.
    """
    if not secret:
        raise SignatureError("no verification secret is configured")
    if not signature:
        raise SignatureError("missing X-HubSpot-Signature-v3 header")
    timestamp = _checked_timestamp(timestamp, now=now, divisor=1000, header="X-HubSpot-Request-Timestamp")
    expected = {
        sign_hubspot_v3(secret=secret, method=method, uri=candidate, body=body, timestamp=timestamp).encode()
        for candidate in (uri, _hubspot_decoded_uri(uri))
    }
    given = _ascii(signature.strip(), "X-HubSpot-Signature-v3")
    if not _matches_any(expected, [given]):
        raise SignatureError("X-HubSpot-Signature-v3 does not match the request")


def verify_hubspot_legacy(
    *, secret: str, version: str | None, method: str, uri: str, body: bytes, signature: str | None
) -> None:
    """Verify HubSpot's v1 (secret + body) or v2 (secret + method + URI + body) hex SHA-256 signature.

    These carry no timestamp, so they cannot stop a replay: callers accept them only when configured.

    Raises:
        SignatureError: the signature is missing, of an unknown version, or does not match; or the
            secret, method or URI is not text.
    """
    if not secret:
        raise SignatureError("no verification secret is configured")
    if not signature:
        raise SignatureError("missing X-HubSpot-Signature header")
    match (version or "").lower():
        case "v1":
            source = _utf8(secret, "the configured secret") + body
        case "v2":
            source = _utf8(secret + method.upper() + uri, "the configured secret, method or URL") + body
        case _:
            raise SignatureError("X-HubSpot-Signature-Version must be v1 or v2")
    expected = hashlib.sha256(source).hexdigest().encode()
    given = _ascii(signature.strip().lower(), "X-HubSpot-Signature")
    if not _matches_any([expected], [given]):
        raise SignatureError("X-HubSpot-Signature does not match the request")


def _standard_key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(_STANDARD_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("the configured signing secret is not base64 (whsec_...)") from exc


def sign_standard_webhook(*, secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """One ``webhook-signature`` entry (``v1,<base64>``) for this message (also used by tests and tools).

    Raises:
        SignatureError: the secret is not a base64 ``whsec_`` secret, or the id is not text (a lone surrogate).
    """
    message = _utf8(f"{msg_id}.{timestamp}.", "webhook-id") + body
    mac = hmac.new(_standard_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_standard_webhook(
    *,
    secrets: Iterable[str],
    msg_id: str | None,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
) -> None:
    """Verify a Standard Webhooks request: HMAC-SHA256 over ``id.timestamp.body``, base64, ``v1,`` entries.

    The header may carry several space-separated signatures and ``secrets`` several keys, so either
    side can rotate keys without downtime: one match is enough.

    Raises:
        SignatureError: a header is missing or malformed, the timestamp is stale, or nothing matches.
    """
    keys = [secret for secret in secrets if secret]
    if not keys:
        raise SignatureError("no verification secret is configured")
    if not msg_id:
        raise SignatureError("missing webhook-id header")
    if not signature_header:
        raise SignatureError("missing webhook-signature header")
    _utf8(msg_id, "webhook-id")  # here, not in the loop below: there a signing error means a malformed secret
    timestamp = _checked_timestamp(timestamp, now=now, divisor=1, header="webhook-timestamp")
    given = [
        entry.removeprefix("v1,").encode("ascii")
        for entry in signature_header.split()
        if entry.startswith("v1,") and entry.isascii()  # base64 is ASCII: another entry cannot match
    ]
    if not given:
        raise SignatureError("webhook-signature has no v1 signature")
    expected = []
    for key in keys:
        try:
            mac = sign_standard_webhook(secret=key, msg_id=msg_id, timestamp=timestamp, body=body)
        except SignatureError:
            continue  # one malformed secret during a rotation must not lock out the valid one
        expected.append(mac.removeprefix("v1,").encode())
    if not expected:
        raise SignatureError("the configured signing secrets are not base64 (whsec_...)")
    if not _matches_any(expected, given):
        raise SignatureError("webhook-signature does not match the request")


def sign_close(*, key: str, timestamp: str, body: bytes) -> str:
    """Close's ``close-sig-hash`` for this request: hex HMAC-SHA256 keyed with the hex-decoded signature key.

    Raises:
        SignatureError: the key is not hex.
    """
    try:
        secret = bytes.fromhex(key)
    except ValueError as exc:
        raise SignatureError("the configured Close signature key is not hex") from exc
    return hmac.new(secret, _utf8(timestamp, "close-sig-timestamp") + body, hashlib.sha256).hexdigest()


def verify_close(*, keys: Iterable[str], timestamp: str | None, signature: str | None, body: bytes, now: float) -> None:
    """Verify a Close webhook: ``close-sig-hash`` over ``close-sig-timestamp`` + raw body, timestamp in seconds.

    Raises:
        SignatureError: a header is missing or malformed, the timestamp is stale, or no key matches.
    """
    configured = [key for key in keys if key]
    if not configured:
        raise SignatureError("no verification secret is configured")
    if not signature:
        raise SignatureError("missing close-sig-hash header")
    stamp = _checked_timestamp(timestamp, now=now, divisor=1, header="close-sig-timestamp")
    given = _ascii(signature.strip().lower(), "close-sig-hash")
    expected = []
    for key in configured:
        try:
            expected.append(sign_close(key=key, timestamp=stamp, body=body).encode())
        except SignatureError:
            continue  # one malformed key during a rotation must not lock out the valid one
    if not expected:
        raise SignatureError("the configured Close signature keys are not hex")
    if not _matches_any(expected, [given]):
        raise SignatureError("close-sig-hash does not match the request")


def sign_attio(*, secret: str, body: bytes) -> str:
    """Attio's ``Attio-Signature`` for this body: hex HMAC-SHA256 keyed with the webhook's secret as text (UTF-8).

    Raises:
        SignatureError: the secret is not text (a lone surrogate has no bytes).
    """
    return hmac.new(_utf8(secret, "the configured secret"), body, hashlib.sha256).hexdigest()


def verify_attio(*, secrets: Iterable[str], signature: str | None, body: bytes) -> None:
    """Verify an Attio webhook: ``Attio-Signature`` is the hex HMAC-SHA256 of the raw body, with no timestamp.

    Nothing in the signature dates the request, so it cannot stop a replay: the ``Idempotency-Key`` dedup does
    (a replayed request is a duplicate). Several secrets allow a rotation; one match is enough.

    Raises:
        SignatureError: no secret is configured, the header is missing or not hex text, or no secret matches.
    """
    configured = [secret for secret in secrets if secret]
    if not configured:
        raise SignatureError("no verification secret is configured")
    if not signature:
        raise SignatureError("missing Attio-Signature header")
    given = _ascii(signature.strip().lower(), "Attio-Signature")
    expected = []
    for secret in configured:
        try:
            expected.append(sign_attio(secret=secret, body=body).encode())
        except SignatureError:
            continue  # one malformed secret during a rotation must not lock out the valid one
    if not expected:
        raise SignatureError("the configured Attio secrets are not text")
    if not _matches_any(expected, [given]):
        raise SignatureError("Attio-Signature does not match the request")


def verify_credential(*, given: str | None, secrets: Iterable[str], what: str) -> None:
    """Check a shared credential sent as is (a password, an API key, an endpoint token) against each configured one.

    Both sides are hashed before the constant-time comparison, so neither the length nor the content of a
    configured value shows in the timing.

    Raises:
        CredentialsError: none is configured, none was sent, or nothing matches (``what`` names it in the message).
    """
    configured = [secret for secret in secrets if secret]
    if not configured:
        raise CredentialsError("no credential is configured for this source")
    if not given:
        raise CredentialsError(f"missing {what}")
    digest = hashlib.sha256(_utf8(given, what)).digest()
    if not _matches_any((hashlib.sha256(secret.encode()).digest() for secret in configured), [digest]):
        raise CredentialsError(f"{what} does not match")
