"""CRM record-read stand-in: one loopback server answering the contact-read endpoints of several CRMs.

Delivery re-reads the current record from the CRM before it writes to Sphere; our machines have no
internet, so tests and the local stack read from this server instead. Each CRM has its own token and
its own records in memory; every request is recorded (``requests``, ``records_read``), and faults
are injected as on the Sphere stand-in (``devstack.standin_server``: ``fail_next``, ``timeout_next``,
``drop_next``, ``set_latency``, ``set_failure_rate``, ``rotate_token``), also over HTTP under
``/_standin/``.

Shapes, and the vendor page each follows (looked up 2026-11-26; *unconfirmed* marks guesses):

* HubSpot, ``GET /crm/objects/{YYYY-MM}/contacts/{id}`` and ``GET /crm/v3/objects/contacts/{id}``
  with ``?properties=a,b``, ``Authorization: Bearer``: ``{"id", "properties", "createdAt",
  "updatedAt", "archived"}`` (developers.hubspot.com/docs/api-reference/2026-03/crm/objects/contacts,
  "Read"; requested properties answer ``null`` when unset, and without ``properties`` the default
  set comes back). Errors ``{"status": "error", "message", "correlationId", "category"}``
  (developers.hubspot.com/docs/api-reference/error-handling; ``category`` values
  ``OBJECT_NOT_FOUND`` / ``INVALID_AUTHENTICATION`` unconfirmed); 429 ``{"status": "error", "message",
  "errorType": "RATE_LIMIT", "correlationId", "policyName", "requestId"}`` (HubSpot's usage-details
  page as quoted on community.hubspot.com; HubSpot documents no ``Retry-After`` on 429).
* Pipedrive, ``GET /api/v2/persons/{id}`` with ``x-api-token`` (pipedrive.readme.io "Authentication";
  the ``api_token`` query parameter of v1 is accepted too): ``{"success": true, "data": {person}}``
  with ``emails``/``phones`` as ``[{"value", "primary", "label"}]`` and ``custom_fields`` keyed by the
  40-hex field key (developers.pipedrive.com v2 persons, as mirrored by kestra's Person model). The
  ``postal_address`` object with Google's components, RFC 3339 times and the error bodies
  ``{"success": false, "error", "error_info"}`` are unconfirmed.
* Attio, ``GET /v2/objects/people/records/{record_id}``, ``Authorization: Bearer``: ``{"data": {"id":
  {"workspace_id", "object_id", "record_id"}, "created_at", "web_url", "values"}}`` (docs.attio.com
  "Get a record"); values are lists of value objects with ``active_from``, ``active_until``,
  ``created_by_actor``, ``attribute_type`` (docs.attio.com attribute types: email-address, location;
  phone-number's ``original_phone_number``/``country_code``/``phone_number`` and text's ``value``
  unconfirmed). Errors ``{"status_code", "type", "code", "message"}`` (docs.attio.com, create an
  activity record: 403 ``auth_error``, 404 ``invalid_request_error``/``not_found``; the 401 and 429
  codes are unconfirmed).
* Salesforce, ``POST /services/oauth2/token`` (client credentials, form-encoded ``client_id`` and
  ``client_secret``): ``{"access_token", "signature", "scope", "instance_url", "id", "token_type",
  "issued_at"}`` (Salesforce's client-credentials example; ``signature`` is base64 HMAC-SHA256 of
  ``id + issued_at`` keyed by the client secret); refusals ``{"error", "error_description"}``
  (``invalid_client``, ``unsupported_grant_type``). ``GET /services/data/vNN.N/sobjects/Contact/{id}``
  (``?fields=`` optional), Bearer: the record with ``attributes`` (REST API Developer Guide, "sObject
  Rows"); errors ``[{"message", "errorCode"}]`` (``NOT_FOUND``, ``INVALID_SESSION_ID``; REST API
  "Status Codes and Error Responses").
* Zoho CRM, ``GET /crm/v8/Contacts/{id}`` (any ``v{N}``; ``?fields=`` optional), ``Authorization:
  Zoho-oauthtoken``: ``{"data": [{"id", "Email", "Phone", "Mobile", "Mailing_Street", ...,
  "Created_Time", "Modified_Time"}]}`` (zoho.com/crm/help/api-diff/getrecordbyID: the record by id,
  the header). Errors ``{"code", "details", "message", "status": "error"}`` with ``INVALID_TOKEN`` /
  ``invalid oauth token`` (Zoho's SDK exception codes; the message as Zoho answers it in logs
  published on pastebin). An unknown id answers ``204 No Content``, as users report: unconfirmed.
* Keap, ``GET /crm/rest/v1/contacts/{id}`` (``?optional_properties=custom_fields`` adds ``custom_fields``),
  ``Authorization: Bearer``: the contact with ``email_addresses`` (``{email, field: EMAIL1..3}``),
  ``phone_numbers`` (``{number, field: PHONE1..5, type}``), ``addresses`` (``{field: BILLING|SHIPPING|OTHER,
  line1, line2, locality, region, postal_code, country_code}``), ``custom_fields`` (``{id, content}``),
  ``last_updated`` (Keap's v1 REST reference as quoted by developers; the ``+0000`` time format and the
  error bodies are unconfirmed: a bad token gets Apigee's ``{"fault": {"faultstring", "detail"}}``, a
  missing contact ``{"message"}``).
* Zoho's accounts server, ``POST /oauth/v2/token`` with ``grant_type=refresh_token``, ``client_id``,
  ``client_secret`` and ``refresh_token``: ``{"access_token", "api_domain", "token_type": "Bearer",
  "expires_in": 3600}``; a refused grant answers ``200`` with ``{"error": "invalid_code"}`` (or
  ``invalid_client``), as Zoho's OAuth guide shows. Zoho's Notification API, ``/crm/v8/actions/watch``:
  ``POST`` enables channels and ``PUT`` replaces their details, each ``{"watch": [{"channel_id", "events",
  "channel_expiry", "token", "notify_url"}]}``, answered ``{"watch": [{"code": "SUCCESS", "details":
  {"events": [{"channel_expiry", "resource_uri", "resource_id", "resource_name", "channel_id"}]},
  "message", "status": "success"}]}`` (zoho.com/crm/developer/docs/api/v8/notifications); an expiry
  more than a day ahead, or none, becomes one hour (the v2-v8 pages say so; v6's "one week" is not
  followed). A ``PUT`` for a channel that is unknown or expired answers 400 ``INVALID_DATA``: unconfirmed.

``put_record`` takes the adapter's contact fields (``webhook_adapter.model.ContactField`` values) and
stores them under each CRM's own names (``CRM_FIELD_NAMES``); ``put_raw`` stores an exact 200 body.
The bodies are built by ``devstack.crm_shapes`` (pure functions); this module routes, authenticates,
stores and records.

Run it standalone (loopback only) until Ctrl-C::

    python -m devstack.crm_standin --port 8082
"""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import parse_qsl

from devstack.crm_shapes import (
    ATTIO_CUSTOMER_ID,
    CRM_FIELD_NAMES,
    HUBSPOT_CUSTOMER_ID,
    KEAP_CUSTOMER_ID_FIELD_ID,
    SALESFORCE_CUSTOMER_ID,
    SALESFORCE_PATH,
    SALESFORCE_TOKEN_PATH,
    UNAUTHORIZED_MESSAGES,
    ZOHO_CUSTOMER_ID,
    ZOHO_TOKEN_PATH,
    ZOHO_WATCH_PATH,
    Contact,
    Crm,
    attio_view,
    crm_of,
    from_ms,
    hubspot_view,
    json_reply,
    keap_view,
    not_found_message,
    oauth_error,
    pipedrive_view,
    read_route,
    require_crm,
    salesforce_view,
    vendor_error,
    zoho_view,
)
from devstack.sphere_faults import FaultPlan
from devstack.standin_server import (
    ApiRequest,
    BodyError,
    Exchange,
    LoopbackStandIn,
    Reply,
    control_body,
    fault_control_actions,
    format_timestamp,
    serve_until_signal,
)
from webhook_adapter.model import ContactField

__all__ = [
    "CRM_FIELD_NAMES",
    "DEFAULT_PIPEDRIVE_CUSTOMER_ID_KEY",
    "DEFAULT_PORT",
    "DEFAULT_TOKENS",
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_CLIENT_SECRET",
    "ZOHO_CLIENT_ID",
    "ZOHO_CLIENT_SECRET",
    "ZOHO_REFRESH_TOKEN",
    "Crm",
    "CrmStandIn",
    "RecordedRequest",
    "ZohoChannel",
    "main",
]

_logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------- constants

DEFAULT_PORT: Final = 8082
"""Port of the standalone server (``main``); tests pass ``port=0`` for a free one."""

DEFAULT_TOKENS: Final[Mapping[Crm, str]] = MappingProxyType(
    {
        Crm.HUBSPOT: "local-hubspot-private-app-token",
        Crm.PIPEDRIVE: "0123456789abcdef0123456789abcdef01234567",
        Crm.ATTIO: "local-attio-token",
        Crm.SALESFORCE: "00DLOCAL!local-salesforce-access-token",
        Crm.ZOHO: "1000.local-zoho-oauth-token",
        Crm.KEAP: "local-keap-personal-access-token",
    }
)
"""The token each CRM accepts until rotated (Salesforce's is the one its token endpoint issues)."""

SALESFORCE_CLIENT_ID: Final = "local-connected-app-consumer-key"
SALESFORCE_CLIENT_SECRET: Final = "local-connected-app-consumer-secret"

ZOHO_CLIENT_ID: Final = "1000.LOCALZOHOSELFCLIENT"
ZOHO_CLIENT_SECRET: Final = "local-zoho-self-client-secret"
ZOHO_REFRESH_TOKEN: Final = "1000.local-zoho-refresh-token"
"""The self client's credentials and refresh token that Zoho's token endpoint takes."""
ZOHO_TOKEN_SECONDS: Final = 3600
"""How long Zoho says an access token lasts (``expires_in``)."""
ZOHO_CHANNEL_MAX_SECONDS: Final = 24 * 3600
"""Furthest a channel's expiry may be set ahead; further, or none, means ``ZOHO_CHANNEL_DEFAULT_SECONDS``."""
ZOHO_CHANNEL_DEFAULT_SECONDS: Final = 3600

DEFAULT_PIPEDRIVE_CUSTOMER_ID_KEY: Final = "5b1c7d9e2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e"
"""The 40-hex key of the Pipedrive custom field holding the Sphere customer id."""

_SALESFORCE_ORG_ID: Final = "00DLOCAL000000000"
_SALESFORCE_USER_ID: Final = "005LOCAL000000000"

_CONTROL_RECORD_PATH: Final = re.compile(r"^/_standin/records/(?P<crm>[a-z]+)/(?P<id>[^/]+)$")
_FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"
_HTML_MEDIA_TYPE: Final = "text/html; charset=utf-8"


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the stand-in received on a CRM API (control requests are not recorded).

    Attributes:
        method: HTTP method.
        path: the path, without the query string.
        query: the query parameters (the last value of a repeated one).
        headers: request headers with lower-cased names (read-only mapping).
        status: status answered, ``None`` when the connection was dropped without an answer.
        received_at: when the request line and headers had been read (UTC).
        connection_id: sequence number of the TCP connection it came on.
        fault: the injected fault's kind, ``None`` when none.
        crm: the CRM whose endpoint the path names, ``None`` for an unknown path.
        record_id: the record id the path names (``None`` for the token endpoint or an unknown path).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    status: int | None
    received_at: datetime
    connection_id: int
    fault: str | None
    crm: Crm | None
    record_id: str | None

    def to_json(self) -> dict[str, Any]:
        """This record as ``GET /_standin/requests`` lists it."""
        return {
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "headers": dict(self.headers),
            "status": self.status,
            "receivedAt": format_timestamp(self.received_at),
            "connectionId": self.connection_id,
            "fault": self.fault,
            "crm": self.crm,
            "recordId": self.record_id,
        }


@dataclass(frozen=True, slots=True)
class _Raw:
    """A record put as the exact 200 body to answer."""

    document: Any


type _Stored = Contact | _Raw


@dataclass(frozen=True, slots=True)
class ZohoChannel:
    """A Zoho Notification API channel as enabled: where and with which token Zoho would call, until when."""

    channel_id: str
    events: tuple[str, ...]
    token: str | None
    notify_url: str
    expires_at: datetime


# ---------------------------------------------------------------------------------------------- the stand-in


class CrmStandIn(LoopbackStandIn[RecordedRequest]):
    """In-memory record-read APIs of HubSpot, Pipedrive, Attio, Salesforce, Zoho CRM and Keap on loopback.

    Use as a context manager (or ``start()`` / ``stop()``); all methods are thread-safe.

    Args:
        port: TCP port on 127.0.0.1; 0 picks a free one (read it back from ``base_url``).
        tokens: the token each CRM accepts until rotated (missing CRMs keep ``DEFAULT_TOKENS``).
        salesforce_client_id, salesforce_client_secret: the connected app's client credentials.
        pipedrive_customer_id_key: the 40-hex key of the Pipedrive custom field holding the customer id.
        hubspot_customer_id_property, salesforce_customer_id_field, attio_customer_id_slug,
            zoho_customer_id_field: where the other CRMs hold it.

    Raises:
        ValueError: port out of range, an unknown CRM, an empty token, a malformed Pipedrive key.
    """

    name = "crm-standin"
    server_version = "CrmStandIn/1.0"

    def __init__(
        self,
        port: int = 0,
        *,
        tokens: Mapping[str, str] | None = None,
        salesforce_client_id: str = SALESFORCE_CLIENT_ID,
        salesforce_client_secret: str = SALESFORCE_CLIENT_SECRET,
        pipedrive_customer_id_key: str = DEFAULT_PIPEDRIVE_CUSTOMER_ID_KEY,
        hubspot_customer_id_property: str = HUBSPOT_CUSTOMER_ID,
        salesforce_customer_id_field: str = SALESFORCE_CUSTOMER_ID,
        attio_customer_id_slug: str = ATTIO_CUSTOMER_ID,
        zoho_customer_id_field: str = ZOHO_CUSTOMER_ID,
    ) -> None:
        super().__init__(port)
        initial = dict(DEFAULT_TOKENS)
        for crm, token in (tokens or {}).items():
            if not token:
                raise ValueError("tokens must not be empty")
            initial[require_crm(crm)] = token
        if not re.fullmatch(r"[0-9a-f]{40}", pipedrive_customer_id_key):
            raise ValueError("pipedrive_customer_id_key must be 40 lower-case hex digits")
        self._initial_tokens: Mapping[Crm, str] = MappingProxyType(initial)
        self._tokens: dict[Crm, str] = dict(initial)
        self._client_id = salesforce_client_id
        self._zoho_client = (ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET)
        self._client_secret = salesforce_client_secret
        self._pipedrive_key = pipedrive_customer_id_key
        self._hubspot_property = hubspot_customer_id_property
        self._salesforce_field = salesforce_customer_id_field
        self._attio_slug = attio_customer_id_slug
        self._zoho_field = zoho_customer_id_field
        self._stored: dict[Crm, dict[str, _Stored]] = {crm: {} for crm in Crm}
        self._zoho_channels: dict[str, ZohoChannel] = {}

    # -- records --------------------------------------------------------------------------------

    def put_record(
        self,
        crm: str,
        record_id: str,
        values: Mapping[str, str | None],
        *,
        modified_at_ms: int,
        created_at_ms: int | None = None,
    ) -> None:
        """Store (or replace) ``crm``'s record ``record_id`` from contact fields, last modified at ``modified_at_ms``.

        ``values`` keys are ``ContactField`` values (``email``, ``line1``, ``customer_id``...); a field
        left out reads as unset. ``created_at_ms`` defaults to ``modified_at_ms``.

        Raises:
            ValueError: an unknown CRM or field, a line 2 for HubSpot or Zoho (no standard field), an empty id.
        """
        target = require_crm(crm)
        if not record_id:
            raise ValueError("record_id must not be empty")
        try:
            fields = {ContactField(name): value for name, value in values.items()}
        except ValueError:
            raise ValueError(f"values keys must be among {', '.join(ContactField)}") from None
        if target in {Crm.HUBSPOT, Crm.ZOHO} and fields.get(ContactField.LINE2) is not None:
            raise ValueError(f"{target} contacts have no standard address line 2 field")
        modified_at = from_ms(modified_at_ms)
        created_at = from_ms(created_at_ms) if created_at_ms is not None else modified_at
        with self._lock:
            self._stored[target][record_id] = Contact(MappingProxyType(fields), created_at, modified_at)

    def put_raw(self, crm: str, record_id: str, document: Any) -> None:
        """Answer reads of ``crm``'s record ``record_id`` with exactly ``document`` (the whole 200 body).

        Raises:
            ValueError: an unknown CRM or an empty id.
        """
        target = require_crm(crm)
        if not record_id:
            raise ValueError("record_id must not be empty")
        with self._lock:
            self._stored[target][record_id] = _Raw(copy.deepcopy(document))

    def delete_record(self, crm: str, record_id: str) -> None:
        """Forget a record: reads answer 404 again (nothing happens if there was none).

        Raises:
            ValueError: an unknown CRM.
        """
        target = require_crm(crm)
        with self._lock:
            self._stored[target].pop(record_id, None)

    def records_read(self, crm: str) -> list[RecordedRequest]:
        """The record reads of ``crm`` answered 200, oldest first.

        Raises:
            ValueError: an unknown CRM.
        """
        target = require_crm(crm)
        return [
            record
            for record in self.requests
            if record.crm is target and record.record_id is not None and record.status == HTTPStatus.OK
        ]

    def zoho_channels(self) -> dict[str, ZohoChannel]:
        """Zoho's notification channels by id, expired ones included (compare ``expires_at`` with the time)."""
        with self._lock:
            return dict(self._zoho_channels)

    def expire_zoho_channel(self, channel_id: str) -> None:
        """Let a Zoho channel lapse now (as when nothing renewed it in time).

        Raises:
            KeyError: no such channel.
        """
        with self._lock:
            channel = self._zoho_channels[channel_id]
            self._zoho_channels[channel_id] = dataclasses.replace(channel, expires_at=datetime.now(UTC))

    # -- faults ---------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: int | str | None = None,
        body: str | Mapping[str, Any] | None = None,
        *,
        crm: str | None = None,
    ) -> None:
        """Answer the next ``n`` API requests (only ``crm``'s, when given) with ``status``.

        The body is that CRM's error format unless ``body`` is given (a string is sent as
        ``text/html``, a mapping as JSON); ``retry_after`` becomes a ``Retry-After`` header. Replaces
        any pending failure instruction.

        Raises:
            ValueError: ``n`` < 0, ``status`` outside 400..599, an unknown CRM.
        """
        key = str(require_crm(crm)) if crm is not None else None
        self._set_fail(n, status, retry_after, body, key)

    def rotate_token(self, crm: str, new_token: str) -> None:
        """``crm`` accepts only ``new_token`` from now on (Salesforce's token endpoint issues it); the old one gets 401.

        Raises:
            ValueError: an unknown CRM or an empty token.
        """
        target = require_crm(crm)
        if not isinstance(new_token, str) or not new_token:
            raise ValueError("new_token must be a non-empty string")
        with self._lock:
            self._tokens[target] = new_token
        _logger.info("crm stand-in token rotated crm=%s", target)

    # -- what the shared server asks -------------------------------------------------------------

    def _reset_tokens(self) -> None:
        self._tokens = dict(self._initial_tokens)

    def _fault_key(self, path: str) -> str | None:
        crm = crm_of(path)
        return str(crm) if crm is not None else None

    def _fault_reply(self, plan: FaultPlan, path: str) -> Reply:
        headers = (("Retry-After", plan.fail_retry_after),) if plan.fail_retry_after is not None else ()
        if isinstance(plan.fail_body, str):
            return Reply(plan.fail_status, plan.fail_body.encode(), content_type=_HTML_MEDIA_TYPE, headers=headers)
        if plan.fail_body is not None:
            return json_reply(plan.fail_status, plan.fail_body, headers)
        return vendor_error(crm_of(path), plan.fail_status, f"Injected failure {plan.fail_status}", headers)

    def _body_error_reply(self, error: BodyError) -> Reply:
        return json_reply(error.status, {"error": error.detail})

    def _make_record(self, exchange: Exchange) -> RecordedRequest:
        path, _, query = exchange.target.partition("?")
        route = read_route(path)
        return RecordedRequest(
            method=exchange.method,
            path=path,
            query=MappingProxyType(dict(parse_qsl(query))),
            headers=MappingProxyType(dict(exchange.headers)),
            status=exchange.status,
            received_at=exchange.received_at,
            connection_id=exchange.connection_id,
            fault=exchange.fault,
            crm=crm_of(path),
            record_id=route[1] if route else None,
        )

    def _answer(self, request: ApiRequest) -> Reply:
        if request.path == SALESFORCE_TOKEN_PATH:
            return self._salesforce_token(request)
        if request.path == ZOHO_TOKEN_PATH:
            return self._zoho_token(request)
        if ZOHO_WATCH_PATH.match(request.path):
            return self._zoho_watch(request)
        route = read_route(request.path)
        if route is None:
            return vendor_error(None, HTTPStatus.NOT_FOUND, "Unknown path")
        crm, record_id = route
        if request.method != "GET":
            return vendor_error(crm, HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed")
        query = dict(parse_qsl(request.query))
        if not self._is_authorized(crm, request.headers, query):
            return vendor_error(crm, HTTPStatus.UNAUTHORIZED, UNAUTHORIZED_MESSAGES[crm])
        with self._lock:
            stored = self._stored[crm].get(record_id)
        if stored is None and crm is Crm.ZOHO:
            return Reply(HTTPStatus.NO_CONTENT, b"")
        if stored is None:
            return vendor_error(crm, HTTPStatus.NOT_FOUND, not_found_message(crm, record_id))
        if isinstance(stored, _Raw):
            return json_reply(HTTPStatus.OK, stored.document)
        return json_reply(HTTPStatus.OK, self._view(crm, request.path, record_id, stored, query))

    def _answer_control(self, method: str, path: str, raw_body: bytes) -> Reply:
        try:
            return self._control(method, path, raw_body)
        except (TypeError, ValueError) as error:
            return json_reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})

    # -- internals --------------------------------------------------------------------------------

    def _view(self, crm: Crm, path: str, record_id: str, contact: Contact, query: Mapping[str, str]) -> Any:
        match crm:
            case Crm.HUBSPOT:
                return hubspot_view(record_id, contact, _csv(query.get("properties")), self._hubspot_property)
            case Crm.PIPEDRIVE:
                return pipedrive_view(record_id, contact, self._pipedrive_key)
            case Crm.ATTIO:
                return attio_view(record_id, contact, self._attio_slug)
            case Crm.SALESFORCE:
                route = SALESFORCE_PATH.match(path)
                version = route["version"] if route else "0.0"
                return salesforce_view(record_id, contact, version, _csv(query.get("fields")), self._salesforce_field)
            case Crm.ZOHO:
                return zoho_view(record_id, contact, _csv(query.get("fields")), self._zoho_field)
            case Crm.KEAP:
                return keap_view(record_id, contact, KEAP_CUSTOMER_ID_FIELD_ID, _csv(query.get("optional_properties")))

    def _is_authorized(self, crm: Crm, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        if crm is Crm.PIPEDRIVE:
            presented = headers.get("x-api-token") or query.get("api_token") or ""
        else:
            scheme, _, presented = headers.get("authorization", "").partition(" ")
            if scheme.lower() != ("zoho-oauthtoken" if crm is Crm.ZOHO else "bearer"):
                return False
        with self._lock:
            token = self._tokens[crm]
        return bool(presented.strip()) and hmac.compare_digest(presented.strip().encode(), token.encode())

    def _salesforce_token(self, request: ApiRequest) -> Reply:
        """``POST /services/oauth2/token`` with the client-credentials grant."""
        if request.method != "POST":
            return json_reply(
                HTTPStatus.METHOD_NOT_ALLOWED, {"error": "invalid_request", "error_description": "must use HTTP POST"}
            )
        if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != _FORM_MEDIA_TYPE:
            return oauth_error("invalid_request", "must be application/x-www-form-urlencoded")
        form = dict(parse_qsl(request.raw_body.decode("utf-8", errors="replace")))
        if form.get("grant_type") != "client_credentials":
            return oauth_error("unsupported_grant_type", "grant type not supported")
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        valid_id = hmac.compare_digest(client_id.encode(), self._client_id.encode())
        valid_secret = hmac.compare_digest(client_secret.encode(), self._client_secret.encode())
        if not (valid_id and valid_secret):
            return oauth_error("invalid_client", "invalid client credentials")
        with self._lock:
            token = self._tokens[Crm.SALESFORCE]
        instance_url = self.base_url
        identity = f"{instance_url}/id/{_SALESFORCE_ORG_ID}/{_SALESFORCE_USER_ID}"
        issued_at = str(int(datetime.now(UTC).timestamp() * 1000))
        digest = hmac.new(self._client_secret.encode(), f"{identity}{issued_at}".encode(), hashlib.sha256).digest()
        return json_reply(
            HTTPStatus.OK,
            {
                "access_token": token,
                "signature": base64.b64encode(digest).decode(),
                "scope": "api",
                "instance_url": instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            },
        )

    def _zoho_token(self, request: ApiRequest) -> Reply:
        """``POST /oauth/v2/token`` with the refresh-token grant; Zoho answers a refused one 200 with ``error``."""
        form = dict(parse_qsl(request.raw_body.decode("utf-8", errors="replace")))
        if request.method != "POST" or form.get("grant_type") != "refresh_token":
            return json_reply(HTTPStatus.OK, {"error": "unsupported_grant_type"})
        given = (form.get("client_id", ""), form.get("client_secret", ""))
        if not all(hmac.compare_digest(a.encode(), b.encode()) for a, b in zip(given, self._zoho_client, strict=True)):
            return json_reply(HTTPStatus.OK, {"error": "invalid_client"})
        if not hmac.compare_digest(form.get("refresh_token", "").encode(), ZOHO_REFRESH_TOKEN.encode()):
            return json_reply(HTTPStatus.OK, {"error": "invalid_code"})
        with self._lock:
            token = self._tokens[Crm.ZOHO]
        answer = {"access_token": token, "api_domain": self.base_url, "token_type": "Bearer"}
        return json_reply(HTTPStatus.OK, answer | {"expires_in": ZOHO_TOKEN_SECONDS})

    def _zoho_watch(self, request: ApiRequest) -> Reply:
        """``POST`` (enable) or ``PUT`` (replace the details of) Zoho notification channels."""
        if request.method not in {"POST", "PUT"}:
            return vendor_error(Crm.ZOHO, HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed")
        if not self._is_authorized(Crm.ZOHO, request.headers, {}):
            return vendor_error(Crm.ZOHO, HTTPStatus.UNAUTHORIZED, UNAUTHORIZED_MESSAGES[Crm.ZOHO])
        try:
            channels = _zoho_watch_request(request.raw_body, now=datetime.now(UTC))
        except ValueError as error:
            return _zoho_watch_error("INVALID_DATA", str(error))
        with self._lock:
            if request.method == "PUT":
                now = datetime.now(UTC)
                known = self._zoho_channels
                missing = [
                    c.channel_id for c in channels if c.channel_id not in known or known[c.channel_id].expires_at <= now
                ]
                if missing:
                    return _zoho_watch_error("INVALID_DATA", "the channel_id given seems to be invalid")
            for channel in channels:
                self._zoho_channels[channel.channel_id] = channel
        return json_reply(
            HTTPStatus.OK, {"watch": [_zoho_watch_success(channel, self.base_url) for channel in channels]}
        )

    def _control(self, method: str, path: str, raw_body: bytes) -> Reply:
        """Raises: TypeError, ValueError: a malformed control body."""
        routes: dict[tuple[str, str], Callable[[], Reply]] = {
            ("GET", "/_standin/requests"): lambda: json_reply(
                HTTPStatus.OK, [record.to_json() for record in self.requests]
            ),
            ("DELETE", "/_standin/requests"): self._control_clear_requests,
            ("GET", "/_standin/connections"): lambda: json_reply(HTTPStatus.OK, {"count": self.connection_count}),
            ("GET", "/_standin/faults"): lambda: json_reply(HTTPStatus.OK, self.pending_faults),
            ("POST", "/_standin/faults"): lambda: self._control_set_faults(control_body(raw_body)),
            ("POST", "/_standin/records"): lambda: self._control_put_record(control_body(raw_body)),
        }
        handler = routes.get((method, path))
        if handler is not None:
            return handler()
        record_route = _CONTROL_RECORD_PATH.match(path)
        if method == "DELETE" and record_route is not None:
            self.delete_record(record_route["crm"], record_route["id"])
            return json_reply(HTTPStatus.OK, {"deleted": True})
        return json_reply(HTTPStatus.NOT_FOUND, {"error": "Unknown control endpoint"})

    def _control_clear_requests(self) -> Reply:
        self.clear_requests()
        return json_reply(HTTPStatus.OK, {"cleared": True})

    def _control_set_faults(self, spec: Mapping[str, Any]) -> Reply:
        """Raises: ValueError, TypeError: unknown key or malformed value (nothing applied then)."""
        actions = fault_control_actions(self, spec, fail=self.fail_next, rotate_token=self._rotate_token_action)
        for action in actions:
            action()
        return json_reply(HTTPStatus.OK, self.pending_faults)

    def _rotate_token_action(self, spec: Any) -> Callable[[], None]:
        """Raises: ValueError: ``spec`` is not ``{"crm", "token"}`` with a known CRM and a token."""
        if not isinstance(spec, dict) or set(spec) != {"crm", "token"}:
            raise ValueError('rotateToken must be {"crm": str, "token": str}')
        crm, token = require_crm(spec["crm"]), spec["token"]
        if not isinstance(token, str) or not token:
            raise ValueError("rotateToken.token must be a non-empty string")
        return lambda: self.rotate_token(crm, token)

    def _control_put_record(self, spec: Mapping[str, Any]) -> Reply:
        """``{"crm", "id", "values", "modifiedAtMs", "createdAtMs"?}`` or ``{"crm", "id", "raw"}``.

        Raises:
            ValueError, TypeError: any other shape.
        """
        crm, record_id = spec.get("crm"), spec.get("id")
        if not isinstance(crm, str) or not isinstance(record_id, str):
            raise TypeError("crm and id must be strings")
        if set(spec) == {"crm", "id", "raw"}:
            self.put_raw(crm, record_id, spec["raw"])
            return json_reply(HTTPStatus.CREATED, {"crm": crm, "id": record_id})
        if (
            not {"crm", "id", "values", "modifiedAtMs"}
            <= set(spec)
            <= {"crm", "id", "values", "modifiedAtMs", "createdAtMs"}
        ):
            raise ValueError(
                'records must be {"crm", "id", "values", "modifiedAtMs", "createdAtMs"?} or {"crm", "id", "raw"}'
            )
        values, modified, created = spec["values"], spec["modifiedAtMs"], spec.get("createdAtMs")
        if not isinstance(values, dict) or not all(
            value is None or isinstance(value, str) for value in values.values()
        ):
            raise TypeError("values must be an object of strings or nulls")
        if not _is_int(modified) or (created is not None and not _is_int(created)):
            raise TypeError("modifiedAtMs and createdAtMs must be integers")
        self.put_record(crm, record_id, values, modified_at_ms=modified, created_at_ms=created)
        return json_reply(HTTPStatus.CREATED, {"crm": crm, "id": record_id})


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------- standalone


def _zoho_watch_request(raw: bytes, *, now: datetime) -> list[ZohoChannel]:
    """The channels a watch request names, each expiry as Zoho sets it.

    Raises:
        ValueError: not ``{"watch": [{channel_id, events, notify_url, ...}]}``, or a token over 50 characters.
    """
    try:
        document = json.loads(raw)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    items = document.get("watch") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError("watch must be a non-empty array")
    return [_zoho_channel(item, now=now) for item in items]


def _zoho_channel(item: Any, *, now: datetime) -> ZohoChannel:
    """Raises: ValueError: a malformed channel."""
    if not isinstance(item, dict):
        raise ValueError("each watch entry must be an object")  # noqa: TRY004 - answered 400 like any bad value
    channel_id, events, url, token = (item.get(key) for key in ("channel_id", "events", "notify_url", "token"))
    if not str(channel_id or "").isdigit():
        raise ValueError("channel_id must be a number")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) and "." in e for e in events):
        raise ValueError("events must be a non-empty array of Module.operation")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ValueError("notify_url must be a URL")
    if token is not None and (not isinstance(token, str) or len(token) > 50):
        raise ValueError("token must be text of at most 50 characters")
    expires_at = now + timedelta(seconds=ZOHO_CHANNEL_DEFAULT_SECONDS)
    asked = item.get("channel_expiry")
    if isinstance(asked, str):
        try:
            moment = datetime.fromisoformat(asked)
        except ValueError:
            raise ValueError("channel_expiry must be an ISO 8601 time") from None
        if moment.tzinfo is not None and now < moment <= now + timedelta(seconds=ZOHO_CHANNEL_MAX_SECONDS):
            expires_at = moment
    return ZohoChannel(str(channel_id), tuple(events), token, url, expires_at)


def _zoho_watch_success(channel: ZohoChannel, base_url: str) -> dict[str, Any]:
    module = channel.events[0].split(".", 1)[0]
    event = {
        "channel_expiry": channel.expires_at.isoformat(timespec="seconds"),
        "resource_uri": f"{base_url}/crm/v8/{module}",
        "resource_id": "4876876000000002175",
        "resource_name": module,
        "channel_id": channel.channel_id,
    }
    message = "Successfully subscribed for actions-watch of the given module"
    return {"code": "SUCCESS", "details": {"events": [event]}, "message": message, "status": "success"}


def _zoho_watch_error(code: str, message: str) -> Reply:
    return json_reply(
        HTTPStatus.BAD_REQUEST, {"watch": [{"code": code, "details": {}, "message": message, "status": "error"}]}
    )


_DESCRIPTION: Final = "CRM record-read stand-in (HubSpot, Pipedrive, Attio, Salesforce, Zoho, Keap) on 127.0.0.1."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in on 127.0.0.1 until Ctrl-C or SIGTERM; the tokens are ``DEFAULT_TOKENS``.

    Returns:
        The process exit code (0).
    """
    parser = argparse.ArgumentParser(prog="python -m devstack.crm_standin", description=_DESCRIPTION)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve_until_signal(CrmStandIn(port=args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
