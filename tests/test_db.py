"""The gateway over ``rediss://``: a Redis with TLS only, a CA of the test's own, and a password."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.db import get_redis
from tests.stack import (
    TEST_CREDENTIALS,
    free_port,
    gateway_env,
    signed_post,
    start_web,
    start_worker,
    text_webhook,
    wait_for,
)

PASSWORD = "tls-redis-password-0123456789"


def _certificate(subject: str, issuer: x509.Name, key, signer, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, False)
    return builder.sign(signer, hashes.SHA256())


def write_certificates(directory: Path) -> None:
    """A CA (``ca.pem``) and a certificate for 127.0.0.1 it signed (``cert.pem``, ``key.pem``)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wa-gateway test CA")])
    ca = _certificate("wa-gateway test CA", ca_name, ca_key, ca_key, ca=True)
    cert = _certificate("127.0.0.1", ca_name, key, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    (directory / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """A ``redis-server`` that speaks TLS only; yields the CA file and the port."""
    directory = tmp_path_factory.mktemp("tls-redis")
    write_certificates(directory)
    port = free_port()
    server = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            *("--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(directory / "cert.pem")),
            *("--tls-key-file", str(directory / "key.pem")),
            *("--tls-ca-cert-file", str(directory / "ca.pem")),
            *("--tls-auth-clients", "no", "--requirepass", PASSWORD),
            *("--save", "", "--appendonly", "no", "--dir", str(directory)),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield str(directory / "ca.pem"), port
    finally:
        server.terminate()
        server.wait(timeout=10)


def tls_url(ca_file: str, port: int) -> str:
    return f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={ca_file}"


def test_the_client_verifies_the_server_against_the_ca(tls_redis):
    ca_file, port = tls_redis
    client = get_redis(tls_url(ca_file, port))
    assert wait_for(client.ping, timeout=10)
    with pytest.raises(redis.ConnectionError):  # the system's CAs do not know this server
        redis.Redis.from_url(f"rediss://:{PASSWORD}@127.0.0.1:{port}/0").ping()
    with pytest.raises(redis.ConnectionError):  # nor does a plain-text client get an answer
        redis.Redis(port=port, password=PASSWORD, socket_timeout=2).ping()


def test_a_webhook_goes_through_web_and_worker_over_tls(tls_redis):
    ca_file, port = tls_redis
    url = tls_url(ca_file, port)
    env = gateway_env(url, "http://127.0.0.1:9")
    web, web_url = start_web(env)
    worker = start_worker(env, queues="inbound", concurrency=1)
    client = get_redis(url)
    try:
        response = signed_post(f"{web_url}/webhooks/whatsapp", text_webhook("573001234567", "hola"))
        assert response.status_code == 200 and response.json()["status"] == "accepted"
        # The worker took the task from the TLS broker, ran it and acknowledged it.
        wait_for(lambda: "process_webhook" in worker.output() and "succeeded" in worker.output())
        wait_for(lambda: not client.hlen("unacked"))
        for proc in (web, worker):
            assert PASSWORD not in proc.output()
            assert TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"] not in proc.output()
    finally:
        worker.stop()
        web.stop()
