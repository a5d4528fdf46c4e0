"""A stand-in gateway for simulator tests: records the webhooks it receives, signature checked."""

from __future__ import annotations

import json
import threading
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.whatsapp.signature import SIGNATURE_HEADER, verify_signature
from tests.stack import TEST_CREDENTIALS


class WebhookReceiver:
    """Answers 200 to correctly signed webhooks (``status`` otherwise) and keeps their bodies."""

    def __init__(self, status: int = 200):
        self.status = status
        self.payloads: list[dict[str, Any]] = []
        self.unsigned = 0
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/whatsapp"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _app(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        secret = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
        if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), [secret]):
            with self._lock:
                self.unsigned += 1
            return Response("bad signature", status=401)(environ, start_response)
        with self._lock:
            self.payloads.append(json.loads(body))
        return Response("ok", status=self.status)(environ, start_response)

    def statuses(self, wamid: str | None = None) -> list[dict[str, Any]]:
        """Every ``statuses[]`` item received (for ``wamid`` only, if given), in arrival order."""
        with self._lock:
            payloads = list(self.payloads)
        items = [
            status
            for payload in payloads
            for entry in payload["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]
        return [s for s in items if wamid is None or s["id"] == wamid]

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)
