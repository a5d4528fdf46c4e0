"""Baseline web apps for the ingestion benchmarks, served under the same gunicorn settings.

- ``pywa_app``: pywa's own Flask webhook server (a popular library that handles updates inline)
  with a handler that does nothing, or sleeps ``BENCH_HANDLER_DELAY`` seconds to play a slow AI.
- ``floor_app``: the least any durable receiver must do: verify the signature, push the raw body
  onto a Redis list, answer.
"""

from __future__ import annotations

import os
import time

from flask import Flask, request

from app.db import get_redis
from app.whatsapp.signature import SIGNATURE_HEADER, verify_signature

FLOOR_LIST = "bench:floor"


def pywa_app() -> Flask:
    from pywa import WhatsApp

    server = Flask(__name__)
    delay = float(os.environ.get("BENCH_HANDLER_DELAY", "0"))
    wa = WhatsApp(
        phone_id=os.environ["WHATSAPP_PHONE_NUMBER_ID"],
        token=os.environ["WHATSAPP_ACCESS_TOKEN"],
        server=server,
        webhook_endpoint="/webhooks/whatsapp",
        verify_token=os.environ["WHATSAPP_WEBHOOK_VERIFY_TOKEN"],
        app_secret=os.environ["WHATSAPP_WEBHOOK_SECRET"],
    )

    @wa.on_message()
    def handle(_client, _message):
        if delay:
            time.sleep(delay)

    return server


def floor_app() -> Flask:
    server = Flask(__name__)
    secret = os.environ["WHATSAPP_WEBHOOK_SECRET"]
    redis_client = get_redis(os.environ["REDIS_URL"])

    @server.post("/webhooks/whatsapp")
    def receive():
        body = request.get_data()
        if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), [secret]):
            return "invalid signature", 401
        redis_client.lpush(FLOOR_LIST, body)
        return "ok", 200

    return server
