"""A TEST DOUBLE for the IndexTTS2 web UI, used only by the benchmark.

It is not the web UI and loads no model. It listens on loopback and answers
GET /config with HTTP 503 until a moment chosen by the caller, then with
HTTP 200 and a JSON object, which is what pipelines/indextts2/scripts/
readiness.py waits for. The moment it turns ready is recorded with
time.monotonic(), so the runner can measure how long readiness.py takes to
notice.
"""
from __future__ import annotations

import http.server
import json
import threading
import time


class ReadyLater:
    """HTTP server on 127.0.0.1 that becomes ready `delay` seconds after start()."""

    def __init__(self, delay: float):
        self.delay = delay
        self.ready_at: float | None = None
        self._ready = threading.Event()
        double = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if double._ready.is_set() and self.path == "/config":
                    body = json.dumps({"version": "stand-in", "components": []}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    body = b"loading"
                    self.send_response(503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/config"
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        serve = threading.Thread(target=self.server.serve_forever, daemon=True)
        timer = threading.Thread(target=self._turn_ready, daemon=True)
        self._threads = [serve, timer]
        serve.start()
        timer.start()

    def _turn_ready(self) -> None:
        time.sleep(self.delay)
        self.ready_at = time.monotonic()
        self._ready.set()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
