"""Which Graph client for which sending number: the environment's number with the environment's
token, any other with its token from the registry of sending numbers (:mod:`app.credentials`)."""

from __future__ import annotations

from app.config import Settings
from app.credentials import CredentialError, NumberRegistry, load_cipher
from app.db import get_redis
from app.whatsapp.client import GraphClient, shared_client
from app.whatsapp.errors import ConfigurationError


def client_for(settings: Settings, phone_number_id: str | None = None) -> GraphClient:
    """This process's client for a sending number, created once per token and then reused.

    ``None`` or the configured ``WHATSAPP_PHONE_NUMBER_ID`` uses the environment's token; any
    other number uses its token from the registry (``wa-gateway numbers add``), read on every
    call so that a replaced token is used from the next call on, without a restart. A number
    that is not registered raises :class:`ConfigurationError` (naming the number, never a token).
    """
    number = phone_number_id or settings.phone_number_id
    if number == settings.phone_number_id:
        token = settings.access_token
    else:
        token = _registered_token(settings, number)
    return shared_client(settings.api_base_url, settings.api_version, number, token)


def _registered_token(settings: Settings, phone_number_id: str) -> str:
    try:
        token = NumberRegistry(get_redis(settings.redis_url), load_cipher()).access_token(
            phone_number_id
        )
    except CredentialError as exc:
        raise ConfigurationError(f"sending number {phone_number_id}: {exc}") from None
    if token is None:
        raise ConfigurationError(
            f"sending number {phone_number_id} is not registered: "
            "add it with 'wa-gateway numbers add'"
        )
    return token
