"""Signature schemes: HubSpot v3, HubSpot v1/v2 (legacy), Standard Webhooks and Attio, each failing closed."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from webhook_adapter.errors import SignatureError
from webhook_adapter.signatures import (
    SIGNATURE_TOLERANCE_SECONDS,
    sign_attio,
    sign_hubspot_v3,
    sign_standard_webhook,
    verify_attio,
    verify_hubspot_legacy,
    verify_hubspot_v3,
    verify_standard_webhook,
)

NOW = 1_700_000_000.0
"""The injected clock, epoch seconds."""
NOW_MS = "1700000000000"
SECRET = "hubspot-test-client-secret-5e1f"
OTHER_SECRET = "hubspot-other-client-secret-77aa"
METHOD = "POST"
URI = "https://hooks.example.test/webhooks/hubspot"
BODY = b'[{"eventId":1,"portalId":2,"objectId":3,"occurredAt":1700000000000}]'

STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-test-signing-key-0001").decode()
OTHER_STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-test-signing-key-0002").decode()
MSG_ID = "msg_test_0001"
STANDARD_TS = "1700000000"


def hubspot_v3(*, secret: str = SECRET, uri: str = URI, body: bytes = BODY, timestamp: str = NOW_MS) -> str:
    return sign_hubspot_v3(secret=secret, method=METHOD, uri=uri, body=body, timestamp=timestamp)


def legacy_signature(version: str, *, secret: str = SECRET, body: bytes = BODY) -> str:
    source = secret.encode() + body if version == "v1" else secret.encode() + METHOD.encode() + URI.encode() + body
    return hashlib.sha256(source).hexdigest()


def standard_signature(*, secret: str = STANDARD_SECRET, timestamp: str = STANDARD_TS, body: bytes = BODY) -> str:
    return sign_standard_webhook(secret=secret, msg_id=MSG_ID, timestamp=timestamp, body=body)


def assert_not_leaked(exc: SignatureError, *secrets: str) -> None:
    for value in secrets:
        assert value not in str(exc)
        assert value not in exc.message


# --- HubSpot v3 --------------------------------------------------------------------------------


def test_hubspot_v3_accepts_a_request_signed_with_the_client_secret() -> None:
    # Given a request signed the way HubSpot signs v3
    signature = hubspot_v3()

    # When it is verified with the same secret, Then nothing is raised
    verify_hubspot_v3(secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW)


def test_hubspot_v3_accepts_a_lower_case_method_signed_upper_case() -> None:
    # Given HubSpot signed "POST"
    signature = hubspot_v3()

    # When the adapter reads the method in lower case, Then it is still authentic
    verify_hubspot_v3(secret=SECRET, method="post", uri=URI, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW)


def test_hubspot_v3_accepts_a_percent_encoded_uri_when_hubspot_signed_the_decoded_form() -> None:
    # Given a configured URL holding %3A, and HubSpot signing the URI with that escape decoded
    encoded = URI + "?portal=test%3Aportal&next=a%2fb"
    decoded = URI + "?portal=test:portal&next=a/b"
    signature = hubspot_v3(uri=decoded)

    # When the request is verified against the URL as configured, Then it is accepted
    verify_hubspot_v3(
        secret=SECRET, method=METHOD, uri=encoded, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW
    )


def test_hubspot_v3_accepts_a_percent_encoded_uri_when_hubspot_signed_it_as_is() -> None:
    # Given HubSpot signing the URI exactly as configured (the other reading of its docs)
    encoded = URI + "?portal=test%3Aportal"
    signature = hubspot_v3(uri=encoded)

    # When verified, Then it is accepted
    verify_hubspot_v3(
        secret=SECRET, method=METHOD, uri=encoded, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW
    )


def test_hubspot_v3_refuses_a_signature_over_another_uri() -> None:
    # Given a signature over another path
    signature = hubspot_v3(uri=URI + "/other")

    # When verified against the configured URI, Then it is refused
    with pytest.raises(SignatureError, match="does not match"):
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW
        )


def test_hubspot_v3_refuses_a_request_signed_with_another_secret() -> None:
    # Given a signature made with another app's secret
    signature = hubspot_v3(secret=OTHER_SECRET)

    # When verified, Then it is refused without naming either secret or the signature
    with pytest.raises(SignatureError, match="does not match") as caught:
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW
        )
    assert_not_leaked(caught.value, SECRET, OTHER_SECRET, signature)


def test_hubspot_v3_refuses_a_tampered_body() -> None:
    # Given a valid signature, and one byte of the body changed afterwards
    signature = hubspot_v3()
    tampered = BODY.replace(b'"objectId":3', b'"objectId":4')

    # When verified, Then it is refused
    with pytest.raises(SignatureError, match="does not match") as caught:
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=tampered, signature=signature, timestamp=NOW_MS, now=NOW
        )
    assert_not_leaked(caught.value, SECRET, signature)


def test_hubspot_v3_refuses_a_replayed_signature_with_a_new_timestamp() -> None:
    # Given a signature over one timestamp, sent with another (a replay trying to look fresh)
    signature = hubspot_v3(timestamp=str(int(NOW_MS) - 60_000))

    # When verified with the fresh timestamp, Then it is refused
    with pytest.raises(SignatureError, match="does not match"):
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW
        )


@pytest.mark.parametrize("signature", [None, ""])
def test_hubspot_v3_refuses_a_missing_signature(signature: str | None) -> None:
    # Given no X-HubSpot-Signature-v3 header
    # When verified, Then the cause is named
    with pytest.raises(SignatureError, match="missing X-HubSpot-Signature-v3"):
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW
        )


@pytest.mark.parametrize("timestamp", [None, ""])
def test_hubspot_v3_refuses_a_missing_timestamp(timestamp: str | None) -> None:
    # Given a signature but no X-HubSpot-Request-Timestamp header
    signature = hubspot_v3()

    # When verified, Then the cause is named
    with pytest.raises(SignatureError, match="missing X-HubSpot-Request-Timestamp"):
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=timestamp, now=NOW
        )


@pytest.mark.parametrize(
    "timestamp", ["1.7e12", "1700000000000.0", "-1700000000000", " 1700000000000", "abc", "\u0661\u0667"]
)
def test_hubspot_v3_refuses_a_timestamp_that_is_not_an_integer(timestamp: str) -> None:
    # Given a timestamp HubSpot would never send (a float, signed, padded, not digits, non-ASCII digits),
    # even when the signature covers it
    signature = hubspot_v3(timestamp=timestamp)

    # When verified, Then it is refused as malformed
    with pytest.raises(SignatureError, match="not an integer timestamp"):
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=timestamp, now=NOW
        )


def test_hubspot_v3_refuses_a_stale_timestamp() -> None:
    # Given a correctly signed request 301 seconds old
    timestamp = str(int(NOW_MS) - (SIGNATURE_TOLERANCE_SECONDS + 1) * 1000)
    signature = hubspot_v3(timestamp=timestamp)

    # When verified now, Then it is refused as too old
    with pytest.raises(SignatureError, match="older than 300 seconds") as caught:
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=timestamp, now=NOW
        )
    assert_not_leaked(caught.value, SECRET, signature)


def test_hubspot_v3_refuses_a_timestamp_from_the_future() -> None:
    # Given a correctly signed request dated 301 seconds ahead
    timestamp = str(int(NOW_MS) + (SIGNATURE_TOLERANCE_SECONDS + 1) * 1000)
    signature = hubspot_v3(timestamp=timestamp)

    # When verified now, Then it is refused
    with pytest.raises(SignatureError, match="in the future"):
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=timestamp, now=NOW
        )


@pytest.mark.parametrize("offset_seconds", [-SIGNATURE_TOLERANCE_SECONDS, SIGNATURE_TOLERANCE_SECONDS])
def test_hubspot_v3_accepts_a_timestamp_exactly_at_the_tolerance(offset_seconds: int) -> None:
    # Given a correctly signed request exactly 300 seconds old (or ahead)
    timestamp = str(int(NOW_MS) + offset_seconds * 1000)
    signature = hubspot_v3(timestamp=timestamp)

    # When verified now, Then it is accepted
    verify_hubspot_v3(
        secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=timestamp, now=NOW
    )


def test_hubspot_v3_fails_closed_without_a_secret() -> None:
    # Given a signature computed with an empty key (what a validator that skips missing secrets would accept)
    signature = hubspot_v3(secret="")

    # When verified with no configured secret, Then it is refused
    with pytest.raises(SignatureError, match="no verification secret"):
        verify_hubspot_v3(secret="", method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW)


# --- HubSpot v1 / v2 -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2", "V2"])
def test_hubspot_legacy_accepts_a_valid_signature(version: str) -> None:
    # Given a hex SHA-256 signature of the given version
    signature = legacy_signature(version.lower())

    # When verified, Then nothing is raised
    verify_hubspot_legacy(secret=SECRET, version=version, method=METHOD, uri=URI, body=BODY, signature=signature)


def test_hubspot_legacy_accepts_upper_case_hex() -> None:
    # Given a v1 signature written in upper-case hex
    signature = legacy_signature("v1").upper()

    # When verified, Then it is accepted
    verify_hubspot_legacy(secret=SECRET, version="v1", method=METHOD, uri=URI, body=BODY, signature=signature)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_hubspot_legacy_refuses_another_secret(version: str) -> None:
    # Given a signature made with another secret
    signature = legacy_signature(version, secret=OTHER_SECRET)

    # When verified, Then it is refused without naming the secrets or the signature
    with pytest.raises(SignatureError, match="does not match") as caught:
        verify_hubspot_legacy(secret=SECRET, version=version, method=METHOD, uri=URI, body=BODY, signature=signature)
    assert_not_leaked(caught.value, SECRET, OTHER_SECRET, signature)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_hubspot_legacy_refuses_a_tampered_body(version: str) -> None:
    # Given a valid signature over the original body
    signature = legacy_signature(version)

    # When the body changed, Then it is refused
    with pytest.raises(SignatureError, match="does not match"):
        verify_hubspot_legacy(
            secret=SECRET, version=version, method=METHOD, uri=URI, body=BODY + b" ", signature=signature
        )


def test_hubspot_legacy_v2_covers_the_uri() -> None:
    # Given a v2 signature over the configured URI
    signature = legacy_signature("v2")

    # When verified against another URI, Then it is refused
    with pytest.raises(SignatureError, match="does not match"):
        verify_hubspot_legacy(
            secret=SECRET, version="v2", method=METHOD, uri=URI + "?x=1", body=BODY, signature=signature
        )


@pytest.mark.parametrize("version", [None, "", "v3", "v0"])
def test_hubspot_legacy_refuses_an_unknown_version(version: str | None) -> None:
    # Given a v1 signature announced with a missing or unknown version
    signature = legacy_signature("v1")

    # When verified, Then the version is the named cause
    with pytest.raises(SignatureError, match="must be v1 or v2"):
        verify_hubspot_legacy(secret=SECRET, version=version, method=METHOD, uri=URI, body=BODY, signature=signature)


@pytest.mark.parametrize("signature", [None, ""])
def test_hubspot_legacy_refuses_a_missing_signature(signature: str | None) -> None:
    # Given no X-HubSpot-Signature header
    # When verified, Then the cause is named
    with pytest.raises(SignatureError, match="missing X-HubSpot-Signature header"):
        verify_hubspot_legacy(secret=SECRET, version="v1", method=METHOD, uri=URI, body=BODY, signature=signature)


def test_hubspot_legacy_fails_closed_without_a_secret() -> None:
    # Given a v1 signature of the body alone (what an empty secret would produce)
    signature = legacy_signature("v1", secret="")

    # When verified with no configured secret, Then it is refused
    with pytest.raises(SignatureError, match="no verification secret"):
        verify_hubspot_legacy(secret="", version="v1", method=METHOD, uri=URI, body=BODY, signature=signature)


# --- Standard Webhooks -------------------------------------------------------------------------


def test_standard_webhook_accepts_a_valid_signature() -> None:
    # Given a message signed with the configured secret
    header = standard_signature()

    # When verified, Then nothing is raised
    verify_standard_webhook(
        secrets=[STANDARD_SECRET], msg_id=MSG_ID, timestamp=STANDARD_TS, signature_header=header, body=BODY, now=NOW
    )


def test_standard_webhook_accepts_a_secret_without_the_whsec_prefix() -> None:
    # Given a message signed with the secret, configured without its whsec_ prefix
    header = standard_signature()
    bare = STANDARD_SECRET.removeprefix("whsec_")

    # When verified, Then it is accepted
    verify_standard_webhook(
        secrets=[bare], msg_id=MSG_ID, timestamp=STANDARD_TS, signature_header=header, body=BODY, now=NOW
    )


def test_standard_webhook_accepts_one_valid_signature_among_several() -> None:
    # Given a header with an unknown scheme, a wrong v1 signature and the right one (sender rotating keys)
    wrong = standard_signature(secret=OTHER_STANDARD_SECRET)
    header = f"v1a,c29tZXRoaW5n {wrong} {standard_signature()}"

    # When verified, Then one match is enough
    verify_standard_webhook(
        secrets=[STANDARD_SECRET], msg_id=MSG_ID, timestamp=STANDARD_TS, signature_header=header, body=BODY, now=NOW
    )


def test_standard_webhook_accepts_one_matching_secret_among_several() -> None:
    # Given the adapter holds the old and the new secret while the sender switches
    header = standard_signature(secret=OTHER_STANDARD_SECRET)

    # When verified against both, Then the request is accepted
    verify_standard_webhook(
        secrets=["", STANDARD_SECRET, OTHER_STANDARD_SECRET],
        msg_id=MSG_ID,
        timestamp=STANDARD_TS,
        signature_header=header,
        body=BODY,
        now=NOW,
    )


def test_standard_webhook_refuses_a_signature_no_secret_matches() -> None:
    # Given a message signed with a secret the adapter does not hold
    header = standard_signature(secret=OTHER_STANDARD_SECRET)

    # When verified, Then it is refused without naming the secret or the signature
    with pytest.raises(SignatureError, match="does not match") as caught:
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id=MSG_ID,
            timestamp=STANDARD_TS,
            signature_header=header,
            body=BODY,
            now=NOW,
        )
    assert_not_leaked(caught.value, STANDARD_SECRET, OTHER_STANDARD_SECRET, header.removeprefix("v1,"))


def test_standard_webhook_refuses_a_tampered_body() -> None:
    # Given a valid signature over the original body
    header = standard_signature()

    # When the body changed, Then it is refused
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id=MSG_ID,
            timestamp=STANDARD_TS,
            signature_header=header,
            body=BODY + b"\n",
            now=NOW,
        )


def test_standard_webhook_signature_covers_the_message_id() -> None:
    # Given a valid signature for one message id
    header = standard_signature()

    # When it comes with another id, Then it is refused
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id="msg_test_0002",
            timestamp=STANDARD_TS,
            signature_header=header,
            body=BODY,
            now=NOW,
        )


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "signature_header", "cause"),
    [
        (None, STANDARD_TS, "v1,c2ln", "missing webhook-id"),
        ("", STANDARD_TS, "v1,c2ln", "missing webhook-id"),
        (MSG_ID, None, "v1,c2ln", "missing webhook-timestamp"),
        (MSG_ID, "", "v1,c2ln", "missing webhook-timestamp"),
        (MSG_ID, STANDARD_TS, None, "missing webhook-signature"),
        (MSG_ID, STANDARD_TS, "", "missing webhook-signature"),
    ],
)
def test_standard_webhook_refuses_a_missing_header(
    msg_id: str | None, timestamp: str | None, signature_header: str | None, cause: str
) -> None:
    # Given a request lacking one of the three headers
    # When verified, Then the missing header is named
    with pytest.raises(SignatureError, match=cause):
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id=msg_id,
            timestamp=timestamp,
            signature_header=signature_header,
            body=BODY,
            now=NOW,
        )


@pytest.mark.parametrize("header_value", ["v2,c2ln", "c2ln", "v1a,c2ln v0,c2ln"])
def test_standard_webhook_refuses_a_header_without_v1_entries(header_value: str) -> None:
    # Given a signature header with no "v1," entry
    # When verified, Then that is the named cause
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id=MSG_ID,
            timestamp=STANDARD_TS,
            signature_header=header_value,
            body=BODY,
            now=NOW,
        )


def test_standard_webhook_refuses_a_secret_that_is_not_base64() -> None:
    # Given a configured secret that is not base64
    bad_secret = "whsec_not*base64!"

    # When verified, Then the configuration is the named cause, without the secret
    with pytest.raises(SignatureError, match="not base64") as caught:
        verify_standard_webhook(
            secrets=[bad_secret],
            msg_id=MSG_ID,
            timestamp=STANDARD_TS,
            signature_header="v1,c2ln",
            body=BODY,
            now=NOW,
        )
    assert_not_leaked(caught.value, bad_secret, "not*base64!")


@pytest.mark.parametrize("secrets", [[], [""], ["", ""]])
def test_standard_webhook_fails_closed_without_a_secret(secrets: list[str]) -> None:
    # Given no usable secret
    # When verified, Then it is refused
    with pytest.raises(SignatureError, match="no verification secret"):
        verify_standard_webhook(
            secrets=secrets,
            msg_id=MSG_ID,
            timestamp=STANDARD_TS,
            signature_header=standard_signature(),
            body=BODY,
            now=NOW,
        )


@pytest.mark.parametrize(
    ("offset_seconds", "cause"),
    [
        (-(SIGNATURE_TOLERANCE_SECONDS + 1), "older than 300 seconds"),
        (SIGNATURE_TOLERANCE_SECONDS + 1, "in the future"),
    ],
)
def test_standard_webhook_refuses_a_timestamp_outside_the_tolerance(offset_seconds: int, cause: str) -> None:
    # Given a correctly signed message dated outside the 5 minute window
    timestamp = str(int(STANDARD_TS) + offset_seconds)
    header = standard_signature(timestamp=timestamp)

    # When verified now, Then it is refused
    with pytest.raises(SignatureError, match=cause) as caught:
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id=MSG_ID,
            timestamp=timestamp,
            signature_header=header,
            body=BODY,
            now=NOW,
        )
    assert_not_leaked(caught.value, STANDARD_SECRET, header.removeprefix("v1,"))


@pytest.mark.parametrize("offset_seconds", [-SIGNATURE_TOLERANCE_SECONDS, SIGNATURE_TOLERANCE_SECONDS])
def test_standard_webhook_accepts_a_timestamp_exactly_at_the_tolerance(offset_seconds: int) -> None:
    # Given a correctly signed message exactly 300 seconds old (or ahead)
    timestamp = str(int(STANDARD_TS) + offset_seconds)

    # When verified now, Then it is accepted
    verify_standard_webhook(
        secrets=[STANDARD_SECRET],
        msg_id=MSG_ID,
        timestamp=timestamp,
        signature_header=standard_signature(timestamp=timestamp),
        body=BODY,
        now=NOW,
    )


def test_standard_webhook_refuses_a_timestamp_in_milliseconds() -> None:
    # Given a timestamp in milliseconds (Standard Webhooks uses seconds)
    timestamp = NOW_MS

    # When verified, Then it is refused as being in the future
    with pytest.raises(SignatureError, match="in the future"):
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id=MSG_ID,
            timestamp=timestamp,
            signature_header=standard_signature(timestamp=timestamp),
            body=BODY,
            now=NOW,
        )


def test_signature_errors_answer_401() -> None:
    # Given any signature failure
    with pytest.raises(SignatureError) as caught:
        verify_hubspot_v3(secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=None, timestamp=None, now=NOW)

    # Then it maps to 401 invalid_signature
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_signature"


# --- header values of any length or content ------------------------------------------------------

HUGE_TIMESTAMPS = {
    "21 digits": "1" * 21,
    "310 digits (over a float)": "1" * 310,
    "4,301 digits (over int conversion)": "1" * 4301,
    "100,000 digits": "9" * 100_000,
    "zero-padded to 400 digits": "0" * 390 + NOW_MS[:10],
}


@pytest.mark.parametrize("timestamp", HUGE_TIMESTAMPS.values(), ids=HUGE_TIMESTAMPS.keys())
def test_hubspot_v3_refuses_a_timestamp_of_too_many_digits(timestamp: str) -> None:
    # Given a timestamp of more digits than any epoch time, signed with the right secret
    signature = hubspot_v3(timestamp=timestamp)

    # When verified, Then it is a SignatureError naming the header (not an OverflowError or ValueError)
    with pytest.raises(SignatureError, match="X-HubSpot-Request-Timestamp is not a timestamp"):
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=timestamp, now=NOW
        )


@pytest.mark.parametrize("timestamp", HUGE_TIMESTAMPS.values(), ids=HUGE_TIMESTAMPS.keys())
def test_standard_webhook_refuses_a_timestamp_of_too_many_digits(timestamp: str) -> None:
    # Given a webhook-timestamp of more digits than any epoch time, signed with the right secret
    header = standard_signature(timestamp=timestamp)

    # When verified, Then it is a SignatureError naming the header
    with pytest.raises(SignatureError, match="webhook-timestamp is not a timestamp"):
        verify_standard_webhook(
            secrets=[STANDARD_SECRET], msg_id=MSG_ID, timestamp=timestamp, signature_header=header, body=BODY, now=NOW
        )


UNENCODABLE = "sig\ud800nature"
"""A lone surrogate: text no byte sequence stands for (a Lambda event's JSON can still carry one)."""


@pytest.mark.parametrize(
    "signature", [UNENCODABLE, "s\u00efgn\u00e4ture", "\x00\r\n"], ids=["surrogate", "latin", "control"]
)
def test_hubspot_v3_refuses_a_signature_that_is_not_base64_text(signature: str) -> None:
    # Given a signature header that no base64 encoder produced
    # When verified, Then it is a SignatureError (not a UnicodeEncodeError)
    with pytest.raises(SignatureError, match="X-HubSpot-Signature-v3"):
        verify_hubspot_v3(
            secret=SECRET, method=METHOD, uri=URI, body=BODY, signature=signature, timestamp=NOW_MS, now=NOW
        )


@pytest.mark.parametrize("signature", [UNENCODABLE, "\u0663\u0664", "\x00\r\n"], ids=["surrogate", "digits", "control"])
def test_hubspot_legacy_refuses_a_signature_that_is_not_hex_text(signature: str) -> None:
    with pytest.raises(SignatureError, match="X-HubSpot-Signature"):
        verify_hubspot_legacy(secret=SECRET, version="v1", method=METHOD, uri=URI, body=BODY, signature=signature)


def test_standard_webhook_refuses_a_message_id_that_is_not_text() -> None:
    # Given a webhook-id holding a lone surrogate (no UTF-8 encoding exists, so nobody signed it)
    # When verified, Then it is a SignatureError naming the header
    with pytest.raises(SignatureError, match="webhook-id"):
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id=UNENCODABLE,
            timestamp=STANDARD_TS,
            signature_header=standard_signature(),
            body=BODY,
            now=NOW,
        )


def test_standard_webhook_skips_signature_entries_that_are_not_base64_text() -> None:
    # Given a header whose first entry holds a lone surrogate and whose second is the valid signature
    header = f"v1,{UNENCODABLE} {standard_signature()}"

    # When verified, Then the valid entry is found
    verify_standard_webhook(
        secrets=[STANDARD_SECRET], msg_id=MSG_ID, timestamp=STANDARD_TS, signature_header=header, body=BODY, now=NOW
    )
    # And a header holding only such entries is refused as having no signature
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify_standard_webhook(
            secrets=[STANDARD_SECRET],
            msg_id=MSG_ID,
            timestamp=STANDARD_TS,
            signature_header=f"v1,{UNENCODABLE}",
            body=BODY,
            now=NOW,
        )


def test_standard_webhook_accepts_a_message_id_in_any_language() -> None:
    # Given a webhook-id with non-ASCII letters, signed over its UTF-8 bytes
    msg_id = "msg_\u00e9t\u00e9_\u65e5\u672c"
    header = sign_standard_webhook(secret=STANDARD_SECRET, msg_id=msg_id, timestamp=STANDARD_TS, body=BODY)

    # When verified, Then it is accepted
    verify_standard_webhook(
        secrets=[STANDARD_SECRET], msg_id=msg_id, timestamp=STANDARD_TS, signature_header=header, body=BODY, now=NOW
    )


@pytest.mark.parametrize("part", ["secret", "method", "uri"])
def test_hubspot_signatures_refuse_text_that_has_no_bytes(part: str) -> None:
    # Given a lone surrogate in the secret, the method or the URI (whose query string is the caller's)
    request = {"secret": SECRET, "method": METHOD, "uri": URI, part: UNENCODABLE}

    # When verified with either scheme, Then it is a SignatureError, not a UnicodeEncodeError
    with pytest.raises(SignatureError, match="not valid text"):
        verify_hubspot_v3(**request, body=BODY, signature=hubspot_v3(), timestamp=NOW_MS, now=NOW)
    with pytest.raises(SignatureError, match="not valid text"):
        verify_hubspot_legacy(**request, version="v2", body=BODY, signature=legacy_signature("v2"))


# --- Attio -------------------------------------------------------------------------------------

ATTIO_SECRET = "attio-test-webhook-secret-0001"
OTHER_ATTIO_SECRET = "attio-test-webhook-secret-0002"
ATTIO_BODY = b'{"webhook_id":"w","events":[{"event_type":"record.updated","id":{"workspace_id":"ws"}}]}'


def test_attio_signature_is_the_hex_hmac_sha256_of_the_raw_body_keyed_with_the_secret() -> None:
    # Given Attio's documented scheme, computed independently
    expected = hmac.new(ATTIO_SECRET.encode(), ATTIO_BODY, hashlib.sha256).hexdigest()

    # Then sign_attio gives the same, and it verifies
    assert sign_attio(secret=ATTIO_SECRET, body=ATTIO_BODY) == expected
    verify_attio(secrets=[ATTIO_SECRET], signature=expected, body=ATTIO_BODY)


def test_attio_accepts_upper_case_hex_and_surrounding_spaces() -> None:
    # Given the right signature written in capitals, with a trailing space
    signature = sign_attio(secret=ATTIO_SECRET, body=ATTIO_BODY).upper() + " "

    # When verified, Then it is accepted
    verify_attio(secrets=[ATTIO_SECRET], signature=signature, body=ATTIO_BODY)


@pytest.mark.parametrize("secrets", [[OTHER_ATTIO_SECRET, ATTIO_SECRET], [ATTIO_SECRET, OTHER_ATTIO_SECRET]])
def test_attio_accepts_either_secret_during_a_rotation(secrets: list[str]) -> None:
    # Given the old and the new secret configured, in either order
    # When a request signed with one of them is verified, Then it is accepted
    verify_attio(secrets=secrets, signature=sign_attio(secret=ATTIO_SECRET, body=ATTIO_BODY), body=ATTIO_BODY)


@pytest.mark.parametrize(
    ("signature", "body", "cause"),
    [
        (sign_attio(secret=OTHER_ATTIO_SECRET, body=ATTIO_BODY), ATTIO_BODY, "does not match"),
        (sign_attio(secret=ATTIO_SECRET, body=ATTIO_BODY), ATTIO_BODY + b" ", "does not match"),
        (sign_attio(secret=ATTIO_SECRET, body=ATTIO_BODY)[:-2], ATTIO_BODY, "does not match"),
        (None, ATTIO_BODY, "missing Attio-Signature"),
        ("", ATTIO_BODY, "missing Attio-Signature"),
        (UNENCODABLE, ATTIO_BODY, "not base64 or hex"),
    ],
    ids=["another secret", "body changed", "truncated", "absent", "empty", "not ASCII"],
)
def test_attio_refuses_a_signature_that_is_wrong_missing_or_malformed(
    signature: str | None, body: bytes, cause: str
) -> None:
    # Given a request whose signature is not the secret's over these bytes
    # When verified, Then it is refused with the named cause, never the secret
    with pytest.raises(SignatureError, match=cause) as caught:
        verify_attio(secrets=[ATTIO_SECRET], signature=signature, body=body)
    assert_not_leaked(caught.value, ATTIO_SECRET)


@pytest.mark.parametrize("secrets", [[], [""], ["", ""]])
def test_attio_fails_closed_without_a_secret(secrets: list[str]) -> None:
    # Given no usable secret
    # When verified, Then it is refused
    with pytest.raises(SignatureError, match="no verification secret"):
        verify_attio(secrets=secrets, signature=sign_attio(secret=ATTIO_SECRET, body=ATTIO_BODY), body=ATTIO_BODY)


def test_attio_skips_a_secret_without_bytes_and_still_accepts_the_valid_one() -> None:
    # Given a rotation where one configured value is not text (a lone surrogate) and the other is right
    signature = sign_attio(secret=ATTIO_SECRET, body=ATTIO_BODY)

    # When verified, Then the valid secret is accepted; alone, the broken one is the named cause
    verify_attio(secrets=[UNENCODABLE, ATTIO_SECRET], signature=signature, body=ATTIO_BODY)
    with pytest.raises(SignatureError, match="not text"):
        verify_attio(secrets=[UNENCODABLE], signature=signature, body=ATTIO_BODY)
