#!/usr/bin/env python3
"""A test upstream for the proxy's rules; it is not Concourse.

It answers every request with what reached it (method, path and the
headers the proxy decides about), so the tests can see what the proxy
forwarded. /api/v1/builds/<n>/events answers as a server-sent event stream
with a pause between two events, to show the proxy does not buffer.
"""
import http.server
import json
import time


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

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
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
        body = json.dumps(self._seen()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", 8080), Probe).serve_forever()
