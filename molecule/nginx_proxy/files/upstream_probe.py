#!/usr/bin/env python3
"""A test upstream for the proxy's rules; it is not Concourse.

It answers every request with what reached it (method, path, the headers
the proxy decides about and how many body bytes arrived), so the tests can
see what the proxy forwarded. /api/v1/builds/<n>/events answers as a
server-sent event stream with a pause between two events, to show the
proxy does not buffer.

GET /api/v1/user stands in for Concourse's token check: it accepts one
bearer token, ACCEPTED_TOKEN (a made-up test value, not a Concourse
token), with 200 and answers 401 to anything else, as Concourse does for a
token it did not sign. GET /_probe/user-checks (straight to the probe, not
through the proxy) says how many token checks reached it.
"""
import http.server
import json
import threading
import time

ACCEPTED_TOKEN = "kit-test-accepted-token"
USER_CHECKS = {"count": 0}
LOCK = threading.Lock()


class Probe(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _seen(self):
        return {
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "upgrade": self.headers.get("Upgrade"),
            "connection": self.headers.get("Connection"),
            "forwarded_proto": self.headers.get("X-Forwarded-Proto"),
        }

    def _drain(self):
        """Read and count the body, plain or chunked, without keeping it."""
        received = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return received
                received += self._skip(size)
                self.rfile.readline()
        return self._skip(int(self.headers.get("Content-Length") or 0))

    def _skip(self, length):
        got = 0
        while got < length:
            chunk = self.rfile.read(min(length - got, 1 << 20))
            if not chunk:
                break
            got += len(chunk)
        return got

    def _json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self):
        received = self._drain()
        if self.path == "/_probe/user-checks":
            self._json(200, USER_CHECKS)
            return
        if self.path == "/api/v1/user":
            with LOCK:
                USER_CHECKS["count"] += 1
            if self.headers.get("Authorization") == f"Bearer {ACCEPTED_TOKEN}":
                self._json(200, {"user_name": "probe-user", "teams": {"main": ["member"]}})
            else:
                self._json(401, {"error": "not authorized"})
            return
        if self.path.startswith("/api/v1/builds/") and self.path.endswith("/events"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for n, pause in ((1, 3.0), (2, 0.0)):
                self.wfile.write(f"id: {n}\nevent: event\ndata: {{\"n\": {n}}}\n\n".encode())
                self.wfile.flush()
                time.sleep(pause)
            self.close_connection = True
            return
        self._json(200, dict(self._seen(), received=received))

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", 8080), Probe).serve_forever()
