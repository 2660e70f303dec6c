"""notify.py posts to a loopback webhook, treats an empty URL as 'nobody told', never prints the URL."""
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import LOOPBACK, PIPELINE_SCRIPTS, free_port

pytestmark = LOOPBACK  # a webhook on loopback


@pytest.fixture
def webhook():
    received = []

    class Hook(BaseHTTPRequestHandler):
        status = 200

        def do_POST(self):
            received.append((self.path, self.headers["Content-Type"],
                             json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(Hook.status)
            self.end_headers()

        def log_message(self, *_):
            pass
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, Hook, received
    server.shutdown()


def notify(url, text="health check failed"):
    env = dict(os.environ, NOTIFY_WEBHOOK_URL=url, NOTIFY_STATUS="failed", NOTIFY_TEXT=text)
    return subprocess.run([sys.executable, os.path.join(PIPELINE_SCRIPTS, "notify.py")],
                          capture_output=True, text=True, env=env, timeout=60)


def test_delivers_json(webhook):
    server, _hook, received = webhook
    url = f"http://127.0.0.1:{server.server_port}/hooks/s3cr3t-token"
    result = notify(url)
    assert result.returncode == 0, result.stderr
    assert received == [("/hooks/s3cr3t-token", "application/json",
                         {"text": "health check failed", "status": "failed"})]
    assert "s3cr3t-token" not in result.stdout + result.stderr


def test_a_refusing_webhook_fails_without_printing_its_url(webhook):
    server, hook, _received = webhook
    hook.status = 500
    result = notify(f"http://127.0.0.1:{server.server_port}/hooks/s3cr3t-token")
    assert result.returncode == 1 and "HTTP 500" in result.stderr
    assert "s3cr3t-token" not in result.stdout + result.stderr


def test_an_unreachable_webhook_fails():
    result = notify(f"http://127.0.0.1:{free_port()}/hook")
    assert result.returncode == 1 and "refused" in result.stderr


def test_no_webhook_is_not_an_error():
    result = notify("")
    assert result.returncode == 0 and "nobody was told" in result.stdout
