"""A CRM's REST API as the readers use it: ``GET`` a JSON record with a token, failures sorted like Sphere's.

One connection pool per reader and container. A 401 reads the token again once (it may have been rotated);
429, 5xx, timeouts, dropped connections and a token refused twice are ``CrmUnavailable`` (the change is
retried, ``Retry-After`` honoured); 404 (and Zoho's ``204 No Content``) means the record is gone. Nothing
from a CRM's answer but its status reaches an error message: its body may echo contact details.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, NoReturn, Protocol, Self

import httpx

from webhook_adapter.errors import CrmUnavailable
from webhook_adapter.model import MAX_VALUE_CHARS, UNCARRIABLE_TEXT, ContactField, FieldValue, ReadMode
from webhook_adapter.records import Reading, RecordReader
from webhook_adapter.runtime import on_reset
from webhook_adapter.secrets import read_secret
from webhook_adapter.settings import DeliverSettings
from webhook_adapter.sphere import parse_retry_after

__all__ = [
    "ApiReader",
    "CrmApi",
    "TokenReadConfig",
    "TokenSource",
    "iso_epoch_ms",
    "read_text",
    "read_values",
    "secret_token",
    "token_reading",
]

_NO_CONTENT = 204
_UNAUTHORIZED = 401
_NOT_FOUND = 404
_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500

type TokenSource = Callable[[bool], str]
"""Returns the API token; called with ``True`` to bypass the cache after a 401."""


def iso_epoch_ms(text: Any) -> int | None:
    """An ISO 8601 time with a zone as epoch milliseconds; ``None`` for anything else (no zone: no time)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp() * 1000) if moment.tzinfo is not None else None


def read_text(raw: Any) -> FieldValue:
    """A value read from a CRM as a field value (empty text: none).

    Raises:
        ValueError: not text, longer than ``MAX_VALUE_CHARS``, or text nothing downstream can store (a lone
            surrogate, U+FFFE/U+FFFF): the reader leaves the field as the events had it.
    """
    if raw is None:
        return None
    if not isinstance(raw, str) or len(text := raw.strip()) > MAX_VALUE_CHARS or UNCARRIABLE_TEXT.search(text):
        raise ValueError("not a value the adapter passes on")
    return text or None


def read_values(raw: Mapping[ContactField, Any]) -> dict[ContactField, FieldValue]:
    """The fields a CRM's record holds, each through ``read_text``; a value it refuses leaves its field out."""
    values: dict[ContactField, FieldValue] = {}
    for field, value in raw.items():
        try:
            values[field] = read_text(value)
        except ValueError:
            continue
    return values


class TokenReadConfig(Protocol):
    """What every reader's settings hold that ``token_reading`` uses."""

    @property
    def read_mode(self) -> ReadMode: ...

    @property
    def api_token_secret_id(self) -> str: ...


class ApiReader[C](RecordReader):
    """A reader over one CRM's API: its settings and its connection pool (one per reader and container).

    Subclasses name the CRM (``CRM``) and implement ``read``; a token-authenticated CRM's reader is built
    with ``with_token`` (its settings' ``api_url``), an OAuth one with the ``CrmApi`` its grant authorizes.
    """

    CRM: ClassVar[str]

    def __init__(self, config: C, api: CrmApi) -> None:
        self.config = config
        self._api = api

    @classmethod
    def with_token(
        cls, config: C, token: TokenSource, *, connect_timeout: float, timeout: float, connections: int = 1
    ) -> Self:
        """The reader of ``config.api_url`` with a bearer ``token``."""
        api_url = str(config.api_url)  # type: ignore[attr-defined]  # every token reader's settings hold it
        return cls(
            config,
            CrmApi(cls.CRM, api_url, token, connect_timeout=connect_timeout, timeout=timeout, connections=connections),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._api.close()


def token_reading[C: TokenReadConfig](settings: DeliverSettings, config: C, reader: type[ApiReader[C]]) -> Reading:
    """A token-authenticated CRM's read mode and reader (none in ``payload`` mode), as deliver builds it.

    The token comes from ``config.api_token_secret_id`` (cached like Sphere's); the reader gets deliver's
    timeouts and a connection per deliver thread, so the threads' reads wait for the CRM together.
    """
    if config.read_mode is ReadMode.PAYLOAD:
        return Reading(config.read_mode, None)
    built = reader.with_token(
        config,
        secret_token(config.api_token_secret_id, max_age=settings.secret_max_age_seconds),
        connect_timeout=settings.sphere_connect_timeout_seconds,
        timeout=settings.sphere_timeout_seconds,
        connections=settings.deliver_threads,
    )
    on_reset(built.close)
    return Reading(config.read_mode, built)


def secret_token(secret_id: str, *, max_age: int) -> TokenSource:
    """A token source over a Secrets Manager secret, cached for ``max_age`` seconds (read again on demand)."""

    def token(refresh: bool) -> str:
        return read_secret(secret_id, max_age=max_age, refresh=refresh)

    return token


class CrmApi:
    """``GET`` JSON from one CRM's API with explicit timeouts; thread-safe (one thread per contact reads)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        token: TokenSource,
        *,
        connect_timeout: float,
        timeout: float,
        connections: int = 1,
        authorization: Callable[[str], Mapping[str, str]] = lambda token: {"Authorization": f"Bearer {token}"},
    ) -> None:
        self.name = name
        self._token = token
        self._token_lock = threading.Lock()
        self._authorization = authorization
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The JSON document at ``path``, or ``None`` when the CRM has nothing there (404, 204).

        Raises:
            CrmUnavailable: 429, 5xx, another 4xx, a timeout, a transport error, a body that is not JSON, or a
                401 with a fresh token too.
            SecretUnavailable: the token could not be read.
        """
        response = self._authorized("GET", path, params=params)
        status = response.status_code
        if status in {_NOT_FOUND, _NO_CONTENT}:
            return None
        if status >= 300:
            self._unavailable(response, "a record read")
        return self._document(response, "a record read")

    def send_json(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Send ``body`` as JSON; the CRM's status and JSON answer (``None`` when empty or not JSON).

        For calls whose 4xx answer says something (Zoho's watch API names a refused channel): only what any
        call cannot get past raises.

        Raises:
            CrmUnavailable: 429, 5xx, a timeout, a transport error, or a 401 with a fresh token too.
            SecretUnavailable: the token could not be read.
        """
        response = self._authorized(method, path, json=body)
        if response.status_code == _TOO_MANY_REQUESTS or response.status_code >= _SERVER_ERROR:
            self._unavailable(response, f"a {method}")
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def _authorized(self, method: str, path: str, **request: Any) -> httpx.Response:
        """The CRM's answer, asked with the token and again once with a fresh one if it was refused (401).

        Raises:
            CrmUnavailable: a 401 with a fresh token too, a timeout, a transport error.
            SecretUnavailable: the token could not be read.
        """
        response = self._send(method, path, refresh=False, **request)
        if response.status_code == _UNAUTHORIZED:
            response = self._send(method, path, refresh=True, **request)
        if response.status_code == _UNAUTHORIZED:
            raise CrmUnavailable(f"{self.name} refused the API token, also after reading it again")
        return response

    def _unavailable(self, response: httpx.Response, what: str) -> NoReturn:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
        raise CrmUnavailable(f"{self.name} answered {response.status_code} to {what}", retry_after=retry_after)

    def _document(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise CrmUnavailable(f"{self.name} answered {what} with a body that is not JSON") from exc

    def _send(self, method: str, path: str, *, refresh: bool, **request: Any) -> httpx.Response:
        with self._token_lock:
            token = self._token(refresh)
        try:
            return self._http.request(method, path, headers=dict(self._authorization(token)), **request)
        except httpx.TimeoutException as exc:
            raise CrmUnavailable(f"{self.name} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"could not reach {self.name} ({type(exc).__name__})") from exc
