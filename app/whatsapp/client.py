"""A thin HTTP layer over Meta's Graph API: one method per endpoint, errors as :mod:`.errors`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from app import __version__
from app.config import Settings
from app.whatsapp.errors import GraphAPIError, GraphConnectionError, GraphTimeoutError

CONNECT_TIMEOUT = 3.05
"""Seconds to open a connection to the Graph API (just over a TCP retransmit window)."""

READ_TIMEOUT = float(os.environ.get("GRAPH_READ_TIMEOUT", 20.0))
"""Seconds to wait for Meta's answer; a send that hangs longer is retried as transient."""

POOL_SIZE = 32
"""Keep-alive connections per host, per process: enough for a threaded send pool."""

USER_AGENT = f"wa-gateway/{__version__} (+https://github.com/wa-gateway)"


def new_session(pool_size: int = POOL_SIZE) -> requests.Session:
    """A session with a connection pool sized for one worker process."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass(frozen=True)
class SendResult:
    """What Meta answered to an accepted message."""

    wamid: str
    wa_id: str | None
    message_status: str | None
    raw: dict[str, Any]


class GraphClient:
    """The Cloud API for one sending number.

    ``base_url`` is Meta's origin (or the simulator's), ``version`` like ``v23.0``. The session is
    shared and kept per process so that connections are reused.
    """

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        phone_number_id: str,
        access_token: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    ):
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.phone_number_id = phone_number_id
        self._access_token = access_token
        self.session = session or new_session()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GraphClient({self.base_url}/{self.version}/{self.phone_number_id})"

    def url(self, path: str) -> str:
        """The full URL of a Graph ``path`` under this client's version."""
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def send_message(self, message: dict[str, Any]) -> SendResult:
        """POST a message object to ``/{phone_number_id}/messages``; raise a GraphAPIError if refused."""
        body = self.request("POST", f"{self.phone_number_id}/messages", json=message)
        messages = body.get("messages") or [{}]
        contacts = body.get("contacts") or [{}]
        wamid = messages[0].get("id")
        if not wamid:
            raise GraphAPIError.from_response(
                502, {"error": {"message": "no message id in answer"}}
            )
        return SendResult(
            wamid=wamid,
            wa_id=contacts[0].get("wa_id"),
            message_status=messages[0].get("message_status"),
            raw=body,
        )

    def mark_read(self, message_id: str, typing_indicator: bool = True) -> None:
        """Mark an inbound message read and, optionally, show the customer a typing indicator."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing_indicator:
            body["typing_indicator"] = {"type": "text"}
        self.request("POST", f"{self.phone_number_id}/messages", json=body)

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One authenticated Graph call; returns the JSON body or raises a GraphAPIError."""
        headers = {"Authorization": f"Bearer {self._access_token}", **kwargs.pop("headers", {})}
        # Raised 'from None': a requests exception can hold the prepared request and its token.
        try:
            response = self.session.request(
                method, self.url(path), headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.Timeout:
            raise GraphTimeoutError(f"no answer within {self.timeout[1]}s") from None
        except requests.ConnectionError:
            raise GraphConnectionError("could not reach the Graph API") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            raise GraphAPIError.from_response(
                response.status_code if response.status_code >= 400 else 502,
                body,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return body


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header, in either of its two forms; None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


_clients: dict[tuple[str, str, str], GraphClient] = {}


def client_for(settings: Settings) -> GraphClient:
    """This process's client for the configured number, created once and then reused."""
    key = (settings.api_base_url, settings.api_version, settings.phone_number_id)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = GraphClient(
            base_url=settings.api_base_url,
            version=settings.api_version,
            phone_number_id=settings.phone_number_id,
            access_token=settings.access_token,
        )
    return client


def reset_clients() -> None:
    """Forget every client, so the next call opens fresh connections (after a fork)."""
    for client in _clients.values():
        client.session.close()
    _clients.clear()
