"""Builders shared by the conversation tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.conversations.context import BUSINESS, CUSTOMER, Exchange
from app.conversations.text import entities

NUMBER = "106540352242922"


def exchange(id: str, text: str, *, role: str = CUSTOMER, age: float = 0.0) -> Exchange:
    """An exchange ``age`` seconds old."""
    return Exchange(
        id=id, role=role, type="text", text=text, at=time.time() - age, entities=entities(text)
    )


def reply(id: str, text: str, *, age: float = 0.0) -> Exchange:
    return exchange(id, text, role=BUSINESS, age=age)


class FakeAIBackend:
    """An OpenAI-compatible chat-completions server (and agent webhook) on 127.0.0.1, over real
    HTTP: counts requests, keeps their bodies, and can be told to be slow or to fail."""

    def __init__(self, answer: str = "Claro, te ayudo.", delay: float = 0.0, status: int = 200):
        self.answer = answer
        self.delay = delay
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                backend.requests.append(body)
                backend.headers.append(dict(self.headers))
                time.sleep(backend.delay)
                if "messages" in body:
                    payload = {
                        "choices": [{"message": {"role": "assistant", "content": backend.answer}}]
                    }
                else:
                    payload = {"reply": backend.answer}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(backend.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as it should

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
