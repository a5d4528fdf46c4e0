"""A thin HTTP layer over Meta's Graph API: one method per endpoint, errors as :mod:`.errors`."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from app import __version__
from app.config import get_settings
from app.whatsapp import ids
from app.whatsapp.builders import read_receipt
from app.whatsapp.errors import (
    GraphAPIError,
    GraphConnectionError,
    GraphTimeoutError,
    InvalidIdentifierError,
    MediaIntegrityError,
    MediaTooLargeError,
)
from app.whatsapp.media import (
    MediaDownload,
    MediaInfo,
    check_media,
    guess_mime_type,
    read_media_file,
    sha256_matches,
)

__all__ = [
    "GraphClient",
    "MediaDownload",
    "MediaInfo",
    "SendResult",
    "new_pool",
    "new_session",
    "shared_client",
]

CONNECT_TIMEOUT = 3.05
"""Seconds to open a connection to the Graph API (just over a TCP retransmit window)."""

READ_TIMEOUT = get_settings().graph_read_timeout
"""Seconds to wait for Meta's answer (``GRAPH_READ_TIMEOUT``); a send that hangs longer is retried
as transient."""

POOL_SIZE = 32
"""Keep-alive connections per host, per process: enough for a threaded send pool."""

USER_AGENT = f"wa-gateway/{__version__} (+https://github.com/wa-gateway)"

DOWNLOAD_CHUNK_BYTES = 64 * 1024
"""Bytes read at a time from a media download, so the size cap holds while streaming."""


def new_session(pool_size: int = POOL_SIZE) -> requests.Session:
    """A session with a connection pool sized for one worker process."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    if not urllib.request.getproxies():
        # No proxy to take from the environment: do not look for one on every request (requests
        # walks the whole environment each time). A CA bundle it names is still used.
        session.trust_env = False
        session.verify = get_settings().ca_bundle
    return session


def new_pool(pool_size: int = POOL_SIZE) -> urllib3.PoolManager | None:
    """A urllib3 pool for the JSON calls (every message sent), sized like :func:`new_session`;
    None when the environment names a proxy, which only requests knows how to reach.

    The JSON calls skip requests: settling a request there (hooks, cookies, adapters, merged
    settings) cost a fifth of a send worker's CPU, and they need none of it. Media uploads and
    downloads keep the session (multipart bodies, streamed reads).
    """
    if urllib.request.getproxies():
        return None
    bundle = get_settings().ca_bundle
    if not isinstance(bundle, str):
        bundle = requests.certs.where()  # requests' own default, so both paths trust the same CAs
    where = {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
    return urllib3.PoolManager(
        num_pools=4, maxsize=pool_size, retries=False, cert_reqs="CERT_REQUIRED", **where
    )


@dataclass(frozen=True)
class SendResult:
    """What Meta answered to an accepted message."""

    wamid: str
    wa_id: str | None
    message_status: str | None
    raw: dict[str, Any]
    user_id: str | None = None
    """The customer's business-scoped user id, when Meta's answer names it."""


class GraphClient:
    """The Cloud API for one sending number.

    ``base_url`` is Meta's origin (or the simulator's), ``version`` like ``v23.0``. The session is
    shared and kept per process so that connections are reused. The JSON calls go through a
    urllib3 pool of the client's own (:func:`new_pool`), unless a ``session`` is given: then
    everything goes through it.
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
        self.pool = new_pool() if session is None else None
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GraphClient({self.base_url}/{self.version}/{self.phone_number_id})"

    def url(self, path: str) -> str:
        """The full URL of a Graph ``path`` under this client's version."""
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def send_message(self, message: dict[str, Any]) -> SendResult:
        """POST a message object to ``/{phone_number_id}/messages``; raise a GraphAPIError if refused.

        The message names the customer by ``to`` (phone), ``recipient`` (business-scoped user id)
        or both, as the builders make it."""
        body = self.request("POST", f"{self._number()}/messages", json=message)
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
            user_id=contacts[0].get("user_id"),
        )

    def mark_read(self, message_id: str, typing_indicator: bool = True) -> None:
        """Mark an inbound message read and, optionally, show the customer a typing indicator."""
        _checked("message id", message_id, ids.is_wamid)
        body = read_receipt(message_id, typing_indicator=typing_indicator)
        self.request("POST", f"{self._number()}/messages", json=body)

    def upload_media(
        self,
        file: str | os.PathLike[str] | bytes,
        *,
        mime_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        """Upload a file (a path, or its bytes) to ``/{phone_number_id}/media``; return its id.

        The file is checked first (see :mod:`app.whatsapp.media`): a missing file, an unsupported
        type, bytes that do not match it, or a size over the type's limit each raise their own
        :class:`~app.whatsapp.errors.MediaError` and nothing is sent.
        """
        number = self._number()
        if isinstance(file, bytes):
            mime_type = mime_type or (guess_mime_type(filename) if filename else None)
            content, checked = file, check_media(file, mime_type)
            filename = filename or f"upload.{checked.mime_type.rsplit('/', 1)[-1]}"
        else:
            content, checked = read_media_file(file, mime_type)
            filename = filename or os.path.basename(os.fspath(file))
        body = self.request(
            "POST",
            f"{number}/media",
            data={"messaging_product": "whatsapp", "type": checked.mime_type},
            files={"file": (filename, content, checked.mime_type)},
        )
        media_id = body.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise GraphAPIError.from_response(502, {"error": {"message": "no media id in answer"}})
        return media_id

    def get_media(self, media_id: str) -> MediaInfo:
        """The download URL (valid for minutes) and the facts of media ``media_id``."""
        path = _checked("media id", media_id, ids.is_media_id)
        body = self.request("GET", path, params={"phone_number_id": self._number()})
        try:
            return MediaInfo(
                id=str(body["id"]),
                url=str(body["url"]),
                mime_type=str(body["mime_type"]),
                sha256=str(body.get("sha256") or ""),
                file_size=int(body.get("file_size") or 0),
            )
        except (KeyError, TypeError, ValueError):
            raise GraphAPIError.from_response(
                502, {"error": {"message": "media answer lacks id, url or mime_type"}}
            ) from None

    def download_media(
        self, media_id: str, *, max_bytes: int, expected_sha256: str | None = None
    ) -> MediaDownload:
        """Download media ``media_id``: its URL from :meth:`get_media`, then the bytes.

        At most ``max_bytes`` are read (:class:`MediaTooLargeError` beyond, checked while
        streaming); the content must hash to Meta's ``sha256`` and to ``expected_sha256`` (hex or
        the base64 form webhooks carry), else :class:`MediaIntegrityError`.
        """
        info = self.get_media(media_id)
        if info.file_size > max_bytes:
            raise MediaTooLargeError(
                f"media {media_id} is {info.file_size} bytes, over the {max_bytes}-byte cap",
                size=info.file_size,
                limit=max_bytes,
            )
        self._check_download_url(info.url)
        headers = {"Authorization": f"Bearer {self._access_token}"}
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        received = 0
        try:
            with self.session.get(
                info.url, headers=headers, timeout=self.timeout, stream=True
            ) as response:
                if response.status_code >= 400:
                    raise GraphAPIError.from_response(response.status_code, _json_or_none(response))
                for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                    received += len(chunk)
                    if received > max_bytes:
                        raise MediaTooLargeError(
                            f"media {media_id} is over the {max_bytes}-byte cap",
                            size=received,
                            limit=max_bytes,
                        )
                    digest.update(chunk)
                    chunks.append(chunk)
        except requests.Timeout:
            raise GraphTimeoutError(f"media download stalled past {self.timeout[1]}s") from None
        except requests.RequestException:
            raise GraphConnectionError("could not download the media") from None
        for expected in (info.sha256, expected_sha256):
            if expected and not sha256_matches(expected, digest.digest()):
                raise MediaIntegrityError(
                    f"media {media_id} does not match its sha256 (got {digest.hexdigest()})"
                )
        return MediaDownload(
            content=b"".join(chunks), mime_type=info.mime_type, sha256=digest.hexdigest()
        )

    def delete_media(self, media_id: str) -> None:
        """Delete uploaded media ``media_id`` from Meta's servers."""
        path = _checked("media id", media_id, ids.is_media_id)
        body = self.request("DELETE", path, params={"phone_number_id": self._number()})
        if body.get("success") is not True:
            raise GraphAPIError.from_response(502, {"error": {"message": "media not deleted"}})

    def list_templates(
        self, business_account_id: str, after: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """One page of the account's ``message_templates`` (``data`` and ``paging``)."""
        waba = _checked("business account id", business_account_id, ids.is_business_account_id)
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        return self.request("GET", f"{waba}/message_templates", params=params)

    def _number(self) -> str:
        """This client's phone number id, as a URL path segment, once checked."""
        return _checked("phone number id", self.phone_number_id, ids.is_phone_number_id)

    def _check_download_url(self, url: str) -> None:
        # The bearer token goes only over TLS, or to the origin the client already talks to.
        parts, base = urlsplit(url), urlsplit(self.base_url)
        same_origin = (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
        if parts.scheme != "https" and not same_origin:
            raise GraphAPIError.from_response(
                502, {"error": {"message": "media URL is neither https nor the API's origin"}}
            )

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One authenticated Graph call; returns the JSON body or raises a GraphAPIError."""
        headers = {"Authorization": f"Bearer {self._access_token}", **kwargs.pop("headers", {})}
        # Raised 'from None': a requests exception can hold the prepared request and its token.
        try:
            if self.pool is not None and kwargs.keys() <= {"json", "params"}:
                status, body, retry_after = self._pooled(method, self.url(path), headers, kwargs)
            else:
                response = self.session.request(
                    method, self.url(path), headers=headers, timeout=self.timeout, **kwargs
                )
                status, body = response.status_code, _json_or_none(response)
                retry_after = response.headers.get("Retry-After")
        except urllib3.exceptions.NewConnectionError:  # refused: urllib3 files it under timeouts
            raise GraphConnectionError("could not reach the Graph API") from None
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise GraphTimeoutError(f"no answer within {self.timeout[1]}s") from None
        except (requests.ConnectionError, urllib3.exceptions.HTTPError):
            raise GraphConnectionError("could not reach the Graph API") from None
        if status >= 400 or not isinstance(body, dict):
            raise GraphAPIError.from_response(
                status if status >= 400 else 502, body, retry_after=parse_retry_after(retry_after)
            )
        return body

    def _pooled(
        self, method: str, url: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> tuple[int, Any, str | None]:
        """A JSON call (``kwargs``: its ``json`` and ``params``) through the pool: the answer's
        status, JSON body (None if it has none) and ``Retry-After``."""
        response = self.pool.request(
            method,
            url,
            json=kwargs.get("json"),
            fields=kwargs.get("params"),
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=urllib3.Timeout(connect=self.timeout[0], read=self.timeout[1]),
        )
        try:
            body = json.loads(response.data)
        except ValueError:
            body = None
        return response.status, body, response.headers.get("Retry-After")


def _checked(kind: str, value: str, is_valid: Callable[[Any], bool]) -> str:
    """``value`` quoted as one URL path segment, if it is a ``kind`` of the documented shape;
    else :class:`InvalidIdentifierError`, naming the kind but never the value."""
    if not is_valid(value):
        raise InvalidIdentifierError(f"the {kind} is not of the shape Meta documents")
    # Quoted although already safe, so no later change to a pattern can reopen the path.
    return quote(value, safe="")


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


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


_clients: dict[tuple[str, str, str, str], GraphClient] = {}


def shared_client(
    base_url: str, version: str, phone_number_id: str, access_token: str
) -> GraphClient:
    """This process's client for a number and its token, created once and then reused, so each
    number keeps one connection pool; a replaced token gets a client of its own."""
    # Keyed by the token's hash, not the token.
    fingerprint = hashlib.sha256(access_token.encode()).hexdigest()
    key = (base_url, version, phone_number_id, fingerprint)
    client = _clients.get(key)
    if client is None:
        _forget_replaced(key)
        client = _clients[key] = GraphClient(
            base_url=base_url,
            version=version,
            phone_number_id=phone_number_id,
            access_token=access_token,
        )
    return client


def _forget_replaced(key: tuple[str, str, str, str]) -> None:
    """Drop the clients of a number whose token has since been replaced."""
    # Not closed: another thread may still be mid-request on it; its pool goes with the object.
    for stale in [k for k in _clients if k[:3] == key[:3] and k != key]:
        del _clients[stale]


def reset_clients() -> None:
    """Forget every client, so the next call opens fresh connections (after a fork)."""
    for client in _clients.values():
        client.session.close()
        if client.pool is not None:
            client.pool.clear()
    _clients.clear()
