"""Choosing the Graph client of a sending number: the environment's, or a registered one's."""

from __future__ import annotations

import pytest

from app.clients import client_for
from app.config import get_settings
from app.credentials import NumberRegistry, SendingNumber, load_cipher
from app.whatsapp import builders
from app.whatsapp.client import reset_clients
from app.whatsapp.errors import ConfigurationError
from tests.stack import SECOND_NUMBER, SECOND_TOKEN, TEST_CREDENTIALS

CONFIGURED = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
NEW_TOKEN = "EAAreplacement-token-fedcba9876543210"


def test_the_configured_number_uses_the_environments_token(second_number):
    _, settings = second_number
    default = client_for(settings)
    assert client_for(settings, None) is default
    assert client_for(settings, CONFIGURED) is default
    assert default.phone_number_id == CONFIGURED


def test_a_registered_number_sends_with_its_own_token_and_path(second_number):
    sim, settings = second_number
    client = client_for(settings, SECOND_NUMBER)
    assert client.phone_number_id == SECOND_NUMBER
    client.send_message(builders.text("573001234567", "Hola"))
    assert len(sim.state.received) == 1
    # The configured number's token is not the second number's: its simulator refuses it.
    with pytest.raises(ConfigurationError):
        client_for(settings).send_message(builders.text("573001234567", "Hola"))
    assert len(sim.state.received) == 1


def test_an_unregistered_number_is_a_configuration_error_naming_it(second_number):
    _, settings = second_number
    with pytest.raises(ConfigurationError) as raised:
        client_for(settings, "106540352240000")
    message = str(raised.value)
    assert "106540352240000" in message and "numbers add" in message
    assert SECOND_TOKEN not in message and TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"] not in message


def test_missing_encryption_keys_are_a_configuration_error(second_number, monkeypatch):
    _, settings = second_number
    monkeypatch.delenv("GATEWAY_ENCRYPTION_KEYS")
    get_settings.cache_clear()
    monkeypatch.setattr("app.credentials._from_keyring", lambda: "")
    with pytest.raises(ConfigurationError) as raised:
        client_for(settings, SECOND_NUMBER)
    assert SECOND_NUMBER in str(raised.value) and "GATEWAY_ENCRYPTION_KEYS" in str(raised.value)


def test_a_replaced_token_is_used_at_once_without_a_restart(second_number, redis_client):
    sim, settings = second_number
    before = client_for(settings, SECOND_NUMBER)
    assert client_for(settings, SECOND_NUMBER) is before  # cached while the token is unchanged
    NumberRegistry(redis_client, load_cipher()).add(SendingNumber(SECOND_NUMBER), NEW_TOKEN)
    after = client_for(settings, SECOND_NUMBER)
    assert after is not before
    # The simulator still wants the old token: the new client really carries the new one.
    with pytest.raises(ConfigurationError):
        after.send_message(builders.text("573001234567", "Hola"))
    assert not sim.state.received
    NumberRegistry(redis_client, load_cipher()).add(SendingNumber(SECOND_NUMBER), SECOND_TOKEN)
    client_for(settings, SECOND_NUMBER).send_message(builders.text("573001234567", "Hola"))
    assert len(sim.state.received) == 1


def test_reset_clients_opens_fresh_clients(second_number):
    _, settings = second_number
    first = client_for(settings, SECOND_NUMBER)
    reset_clients()
    assert client_for(settings, SECOND_NUMBER) is not first


def test_sessions_read_proxies_from_the_environment_once_and_keep_its_ca_bundle(monkeypatch):
    from app.whatsapp.client import new_session

    for name in ("http_proxy", "https_proxy", "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    session = new_session()
    assert session.trust_env is False and session.verify is True  # nothing to look for
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/other.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/company.pem")
    get_settings.cache_clear()  # settings are read once per process: this is a new one
    assert new_session().verify == "/etc/ssl/certs/company.pem"  # requests' own order
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert new_session().trust_env is True  # proxies (and NO_PROXY) are requests' to apply
