"""An OAuth 2.0 access token for a CRM's API, fetched from its token endpoint with credentials kept in Secrets Manager.

Salesforce (client credentials) and Zoho (a self client's refresh token) hand out short-lived access tokens
rather than taking a long-lived one: the credentials secret is JSON holding what the grant needs, the token is
kept in memory, fetched again before ``expires_in`` runs out (when the CRM says) and whenever the API refuses it
(``CrmApi`` calls with ``refresh=True`` after a 401). Nothing of the endpoint's answer but its status and an
OAuth error code reaches a message: its body holds the token.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Self

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from webhook_adapter.errors import CrmUnavailable, SecretUnavailable
from webhook_adapter.model import ReadMode
from webhook_adapter.readers.api import CrmApi
from webhook_adapter.runtime import on_reset
from webhook_adapter.secrets import read_secret

__all__ = ["EXPIRY_MARGIN_SECONDS", "OAuthGrant", "OAuthReadConfig", "OAuthToken", "none_if_empty", "oauth_api"]

EXPIRY_MARGIN_SECONDS = 60
"""A token this close to its ``expires_in`` is fetched again before use: a call may take that long."""
_OK = 200
_SERVER_ERROR = 500
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")
"""What an OAuth ``error`` value looks like (``invalid_client``): only such a value is quoted in a message."""


def none_if_empty(value: Any) -> Any:
    """An empty setting (a template parameter left blank) as unset."""
    return None if value == "" else value


class OAuthReadConfig(BaseModel):
    """The read settings of a CRM reached with an OAuth grant: reading is on when its credentials are given."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    CREDENTIALS_PARAMETER: ClassVar[str]
    """The template parameter of the credentials secret, named when a read mode lacks it."""

    read_mode: Annotated[ReadMode | None, BeforeValidator(none_if_empty)] = None
    """Unset: ``fetch-when-incomplete`` when the credentials are given, else ``payload``."""
    credentials_secret_id: str = ""

    @property
    def mode(self) -> ReadMode:
        """The read mode in effect."""
        if self.read_mode is not None:
            return self.read_mode
        return ReadMode.WHEN_INCOMPLETE if self.credentials_secret_id else ReadMode.PAYLOAD

    def missing_for_reading(self) -> list[str]:
        """The settings a read still needs (as ``name (TemplateParameter)``)."""
        return [] if self.credentials_secret_id else [f"credentials_secret_id ({self.CREDENTIALS_PARAMETER})"]

    @model_validator(mode="after")
    def _complete_when_reading(self) -> Self:
        missing = self.missing_for_reading()
        if self.mode is not ReadMode.PAYLOAD and missing:
            raise ValueError(f"read mode {self.mode} needs {' and '.join(missing)}")
        return self


class _TokenAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    access_token: Annotated[str, Field(min_length=1)]
    expires_in: Annotated[int, Field(gt=0)] | None = None


class OAuthGrant(BaseModel):
    """How one CRM's token is asked for: the credentials secret's keys and the grant they make."""

    model_config = ConfigDict(frozen=True)

    crm: str
    """The CRM's name, for messages."""
    grant_type: str
    credential_keys: tuple[str, ...]
    """The keys the credentials secret must hold (each non-empty text), sent as form fields of the same name."""


class OAuthToken:
    """The access token of one grant, fetched on first use, before it expires and again when refused (``refresh``)."""

    def __init__(
        self,
        token_url: str,
        grant: OAuthGrant,
        credentials: Callable[[bool], str],
        *,
        connect_timeout: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token_url = token_url
        self._grant = grant
        self._credentials = credentials
        """Reads the credentials secret's text; called with ``True`` to bypass its cache."""
        self._clock = clock
        self._token: str | None = None
        self._expires_at = float("inf")
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __call__(self, refresh: bool) -> str:
        """The access token; a new one when ``refresh`` (the last one was refused) or when it is about to expire.

        Raises:
            CrmUnavailable: the token endpoint refused the credentials or could not answer.
            SecretUnavailable: the credentials secret could not be read or is not the expected JSON.
        """
        with self._lock:
            if self._token is None or refresh or self._clock() >= self._expires_at:
                self._token = None
                answer = self._fetch(refresh=refresh)
                self._token = answer.access_token
                self._expires_at = (
                    self._clock() + answer.expires_in - EXPIRY_MARGIN_SECONDS
                    if answer.expires_in is not None
                    else float("inf")
                )
            return self._token

    def _fetch(self, *, refresh: bool) -> _TokenAnswer:
        crm = self._grant.crm
        form = {"grant_type": self._grant.grant_type, **self._read_credentials(refresh=refresh)}
        try:
            response = self._http.post(self._token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TimeoutException as exc:
            raise CrmUnavailable(f"{crm}'s token endpoint did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"could not reach {crm}'s token endpoint ({type(exc).__name__})") from exc
        status = response.status_code
        if status >= _SERVER_ERROR:
            raise CrmUnavailable(f"{crm}'s token endpoint failed ({status})")
        document = _json_object(response.content)
        if status != _OK or "access_token" not in document:
            # Zoho answers a refused grant with 200 and {"error": ...}; Salesforce with 400.
            error = document.get("error")
            code = f", {error}" if isinstance(error, str) and _ERROR_CODE.match(error) else ""
            raise CrmUnavailable(f"{crm}'s token endpoint refused the credentials ({status}{code})")
        try:
            return _TokenAnswer.model_validate(document)
        except ValidationError as exc:
            raise CrmUnavailable(f"{crm}'s token endpoint answered without a usable access token") from exc

    def _read_credentials(self, *, refresh: bool) -> dict[str, str]:
        keys = self._grant.credential_keys
        document = _json_object(self._credentials(refresh))
        values = {key: document.get(key) for key in keys}
        if not all(isinstance(value, str) and value.strip() for value in values.values()):
            raise SecretUnavailable(f"the credentials secret must be JSON with {', '.join(keys)} (non-empty text)")
        return {key: str(value).strip() for key, value in values.items()}


def oauth_api(
    name: str,
    base_url: str,
    *,
    token_url: str,
    grant: OAuthGrant,
    credentials_secret_id: str,
    secret_max_age: int,
    connect_timeout: float,
    timeout: float,
    connections: int,
    scheme: str = "Bearer",
) -> CrmApi:
    """A CRM's API authorized by ``grant``'s access token (``scheme`` names it); both pools close on reset."""
    token = OAuthToken(
        token_url,
        grant,
        lambda refresh: read_secret(credentials_secret_id, max_age=secret_max_age, refresh=refresh),
        connect_timeout=connect_timeout,
        timeout=timeout,
    )
    api = CrmApi(
        name,
        base_url,
        token,
        connect_timeout=connect_timeout,
        timeout=timeout,
        connections=connections,
        authorization=lambda access_token: {"Authorization": f"{scheme} {access_token}"},
    )
    on_reset(api.close)
    on_reset(token.close)
    return api


def _json_object(raw: str | bytes) -> Mapping[str, Any]:
    """``raw`` as a JSON object, or an empty mapping when it is not one."""
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
