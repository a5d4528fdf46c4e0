"""What the responders over HTTP share: timeouts, the reply length, the session and the POST."""

from __future__ import annotations

from typing import Any

import requests

from app import __version__
from app.conversations.responders.interface import ResponderError, ResponderTimeout

CONNECT_TIMEOUT = 3.05
"""Seconds to open a connection to the AI backend; the read timeout is the responder's."""

MAX_REPLY_CHARS = 4096
"""WhatsApp's limit for a text message body; longer replies are cut."""


def backend_session() -> requests.Session:
    """A session that names the gateway in its User-Agent."""
    session = requests.Session()
    session.headers["User-Agent"] = f"wa-gateway/{__version__}"
    return session


def post_json(
    session: requests.Session,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
) -> dict[str, Any]:
    """POST ``body`` as JSON and return the JSON object answered, or raise
    :class:`ResponderTimeout` or :class:`ResponderError`."""
    # Errors are raised 'from None' and name no header: the key must never reach a log.
    try:
        response = session.post(url, json=body, headers=headers, timeout=(CONNECT_TIMEOUT, timeout))
    except requests.Timeout:
        raise ResponderTimeout(f"no answer within {timeout}s") from None
    except requests.RequestException as exc:
        raise ResponderError(f"could not reach the backend ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise ResponderError(f"backend answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise ResponderError("backend answer is not JSON") from None
    if not isinstance(answer, dict):
        raise ResponderError("backend answer is not a JSON object")
    return answer
