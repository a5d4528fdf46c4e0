"""Sending numbers and their access tokens, encrypted at rest with Fernet.

Keys come from ``GATEWAY_ENCRYPTION_KEYS`` (comma-separated, newest first: the first encrypts,
all decrypt), or, when that is unset and the ``keyring`` package is installed, from the operating
system's keyring (service ``wa-gateway``, user ``encryption-keys``, same format). Rotation adds a
new key at the front and re-encrypts every stored token under it (``wa-gateway keys rotate``);
the old key can be dropped once rotation has run.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass

import redis
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app import keys
from app.config import get_settings
from app.errors import GatewayError
from app.whatsapp.ids import is_phone_number_id

ENCRYPTION_KEYS_ENV = "GATEWAY_ENCRYPTION_KEYS"
KEYRING_SERVICE = "wa-gateway"
KEYRING_USER = "encryption-keys"
_TOKEN = re.compile(r"[\x21-\x7e]{20,4096}")
# Matched whole: a trailing newline in a token would end up in the Authorization header.


# KEYS[1] a hash, ARGV[1] a field, ARGV[2] the value read, ARGV[3] the new value: 1 if replaced.
REPLACE_IF_UNCHANGED = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


class CredentialError(GatewayError):
    """Keys or credentials are missing, malformed, or cannot decrypt what is stored."""


def generate_key() -> str:
    """A new Fernet key, for ``GATEWAY_ENCRYPTION_KEYS``."""
    return Fernet.generate_key().decode()


def load_cipher(keys: str | None = None) -> MultiFernet:
    """The keys ``keys`` (default: the ``GATEWAY_ENCRYPTION_KEYS`` setting, else the OS keyring)
    lists, comma-separated; the first one encrypts."""
    raw = (get_settings().encryption_keys if keys is None else keys).strip() or _from_keyring()
    if not raw:
        raise CredentialError(
            f"{ENCRYPTION_KEYS_ENV} is not set: create a key with 'wa-gateway keys generate'"
        )
    fernets = []
    for position, value in enumerate((k.strip() for k in raw.split(",") if k.strip()), start=1):
        try:
            fernets.append(Fernet(value.encode()))
        except ValueError:
            raise CredentialError(
                f"{ENCRYPTION_KEYS_ENV}: key {position} is not a Fernet key"
            ) from None
    return MultiFernet(fernets)


def _from_keyring() -> str:
    try:
        import keyring
    except ImportError:
        return ""
    try:
        return keyring.get_password(KEYRING_SERVICE, KEYRING_USER) or ""
    except Exception:  # noqa: BLE001 - a missing keyring backend means no keys from it
        return ""


@dataclass(frozen=True)
class SendingNumber:
    """A WhatsApp business number the gateway may send from. It never holds the token."""

    phone_number_id: str
    display_phone_number: str = ""
    business_account_id: str = ""
    added_at: float = 0.0


class NumberRegistry:
    """Sending numbers in Redis, each with its access token encrypted by ``cipher``."""

    def __init__(self, redis_client: redis.Redis, cipher: MultiFernet):
        self.redis = redis_client
        self.cipher = cipher
        self._replace_if_unchanged = redis_client.register_script(REPLACE_IF_UNCHANGED)

    def add(self, number: SendingNumber, access_token: str) -> SendingNumber:
        """Store (or replace) ``number`` with ``access_token``, encrypted under the newest key."""
        if not is_phone_number_id(number.phone_number_id):
            raise CredentialError("the phone number id must be Meta's numeric id (5 to 20 digits)")
        if not isinstance(access_token, str) or not _TOKEN.fullmatch(access_token):
            raise CredentialError(
                "the access token must be 20 or more printable characters, no spaces"
            )
        stored = SendingNumber(**{**asdict(number), "added_at": number.added_at or time.time()})
        entry = {**asdict(stored), "token": self.cipher.encrypt(access_token.encode()).decode()}
        self.redis.hset(keys.SENDING_NUMBERS, stored.phone_number_id, json.dumps(entry))
        return stored

    def remove(self, phone_number_id: str) -> bool:
        """Forget a number and its token; False if it was not there."""
        return bool(self.redis.hdel(keys.SENDING_NUMBERS, phone_number_id))

    def list(self) -> list[SendingNumber]:
        """Every number, without tokens, ordered by phone number id."""
        entries = self.redis.hgetall(keys.SENDING_NUMBERS)
        return [_number(json.loads(entries[k])) for k in sorted(entries)]

    def get(self, phone_number_id: str) -> SendingNumber | None:
        raw = self.redis.hget(keys.SENDING_NUMBERS, phone_number_id)
        return _number(json.loads(raw)) if raw else None

    def access_token(self, phone_number_id: str) -> str | None:
        """The decrypted token of a number, or None if the number is not registered."""
        raw = self.redis.hget(keys.SENDING_NUMBERS, phone_number_id)
        if raw is None:
            return None
        try:
            return self.cipher.decrypt(json.loads(raw)["token"].encode()).decode()
        except InvalidToken:
            raise CredentialError(
                f"no key in {ENCRYPTION_KEYS_ENV} decrypts the token of {phone_number_id}"
            ) from None

    def rotate(self) -> int:
        """Re-encrypt every token under the newest key; returns how many were rewritten."""
        rotated = 0
        for phone_number_id, raw in self.redis.hgetall(keys.SENDING_NUMBERS).items():
            entry = json.loads(raw)
            try:
                entry["token"] = self.cipher.rotate(entry["token"].encode()).decode()
            except InvalidToken:
                raise CredentialError(
                    f"no key in {ENCRYPTION_KEYS_ENV} decrypts the token of {phone_number_id}"
                ) from None
            # Compare-and-set, so a concurrent 'add' (already under the newest key) is not undone.
            rotated += self._replace_if_unchanged(
                keys=[keys.SENDING_NUMBERS], args=[phone_number_id, raw, json.dumps(entry)]
            )
        return rotated


def is_registered(redis_client: redis.Redis, phone_number_id: str) -> bool:
    """Whether ``phone_number_id`` is a registered sending number (no key needed to ask)."""
    return bool(redis_client.hexists(keys.SENDING_NUMBERS, phone_number_id))


def _number(entry: dict) -> SendingNumber:
    return SendingNumber(
        phone_number_id=entry["phone_number_id"],
        display_phone_number=entry.get("display_phone_number", ""),
        business_account_id=entry.get("business_account_id", ""),
        added_at=entry.get("added_at", 0.0),
    )
