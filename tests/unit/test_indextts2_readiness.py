"""readiness.py against stand-ins of the web UI's start-up (tests/unit/standins/slow_webui.py).

The promises under test: readiness is reported within one second of the
port answering, a dead process within two seconds of its death, and a port
that accepts but never answers cannot hold the script past its deadline.
"""
import os
import subprocess
import sys
import time

import pytest

from conftest import LOOPBACK, PIPELINE_SCRIPTS, STANDINS, free_port, load_script

pytestmark = LOOPBACK  # stand-in web UIs on loopback


readiness = load_script("readiness")


@pytest.fixture
def webui(tmp_path):
    """Start the stand-in with the given options; yield (process, port, paths)."""
    started = []

    def start(*options):
        port = free_port()
        log = open(tmp_path / "webui.log", "w")
        process = subprocess.Popen(
            [sys.executable, os.path.join(STANDINS, "slow_webui.py"), "--port", str(port),
             "--ready-file", str(tmp_path / "ready"), "--died-file", str(tmp_path / "died"), *options],
            stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process, port
    yield start
    for process in started:
        process.kill()
        process.wait()


def stamp(tmp_path, name):
    return float((tmp_path / name).read_text())


def test_slow_start_is_reported_within_a_second(webui, tmp_path):
    process, port = webui("--load", "3")
    status, message = readiness.wait(f"http://127.0.0.1:{port}/config", process.pid, deadline=30,
                                     interval=0.25, request_timeout=1.0)
    reported = time.time()
    assert status == readiness.READY, message
    lag = reported - stamp(tmp_path, "ready")
    assert 0 <= lag <= 1.0, f"readiness reported {lag:.2f}s after the port answered"


def test_503_before_ready_is_not_ready(webui, tmp_path):
    process, port = webui("--unavailable-for", "2")
    status, message = readiness.wait(f"http://127.0.0.1:{port}/config", process.pid, deadline=30,
                                     interval=0.25, request_timeout=1.0)
    reported = time.time()
    assert status == readiness.READY, message
    assert reported - stamp(tmp_path, "ready") <= 1.0


def test_death_is_reported_within_two_seconds(webui, tmp_path):
    process, port = webui("--load", "60", "--die-after", "2")
    status, message = readiness.wait(f"http://127.0.0.1:{port}/config", process.pid, deadline=60,
                                     interval=0.25, request_timeout=1.0)
    reported = time.time()
    assert status == readiness.DIED, message
    # The stand-in is this test's child and stays a zombie until reaped:
    # readiness.py must see through that.
    assert process.poll() == 1
    lag = reported - stamp(tmp_path, "died")
    assert 0 <= lag <= 2.0, f"death reported {lag:.2f}s after it happened"
    assert f"pid {process.pid}" in message and "died" in message


def test_death_behind_a_hung_port_is_reported_within_two_seconds(webui, tmp_path):
    process, port = webui("--hang", "--die-after", "3")
    status, message = readiness.wait(f"http://127.0.0.1:{port}/config", process.pid, deadline=60,
                                     interval=0.25, request_timeout=1.0)
    reported = time.time()
    assert status == readiness.DIED, message
    assert reported - stamp(tmp_path, "died") <= 2.0


def test_a_hung_port_cannot_hold_it_past_the_deadline(webui):
    process, port = webui("--hang")
    began = time.monotonic()
    status, message = readiness.wait(f"http://127.0.0.1:{port}/config", process.pid, deadline=3,
                                     interval=0.25, request_timeout=1.0)
    took = time.monotonic() - began
    assert status == readiness.DEADLINE, message
    assert 3.0 <= took <= 3.6, f"gave up after {took:.2f}s for a 3s deadline"
    assert "timed out" in message and process.poll() is None


def test_command_line_prints_the_log_tail_on_death(webui, tmp_path):
    process, port = webui("--load", "60", "--die-after", "1")
    result = subprocess.run(
        [sys.executable, os.path.join(PIPELINE_SCRIPTS, "readiness.py"), "--url", f"http://127.0.0.1:{port}/config",
         "--pid", str(process.pid), "--log", str(tmp_path / "webui.log"), "--deadline", "30", "--tail", "5"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "FAILED" in result.stderr and "died" in result.stderr
    assert "CUDA error: out of memory" in result.stderr
    assert "GPT weights restored" in result.stderr


def test_command_line_ready_exits_zero(webui):
    process, port = webui("--load", "1")
    result = subprocess.run(
        [sys.executable, os.path.join(PIPELINE_SCRIPTS, "readiness.py"), "--url", f"http://127.0.0.1:{port}/config",
         "--pid", str(process.pid), "--deadline", "30"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ready after" in result.stdout


def test_deadline_without_a_process_reports_the_last_reason(tmp_path):
    port = free_port()     # nothing listens
    (tmp_path / "log").write_text("".join(f"line {n}\n" for n in range(200)))
    result = subprocess.run(
        [sys.executable, os.path.join(PIPELINE_SCRIPTS, "readiness.py"), "--url", f"http://127.0.0.1:{port}/config",
         "--deadline", "1", "--log", str(tmp_path / "log"), "--tail", "3"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3
    assert "Connection refused" in result.stderr or "ConnectionRefusedError" in result.stderr
    assert "line 199" in result.stderr and "line 196" not in result.stderr


def test_non_json_answers_are_not_ready():
    from http.server import BaseHTTPRequestHandler, HTTPServer
    import threading

    class Html(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>loading</html>")

        def log_message(self, *_):
            pass
    server = HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert readiness.probe(f"http://127.0.0.1:{server.server_port}/config", 1.0) == \
            "HTTP 200 but the body is not JSON"
    finally:
        server.shutdown()


@pytest.mark.parametrize("option", ["--deadline=0", "--interval=-1", "--request-timeout=0"])
def test_bad_numbers_are_usage_errors(option):
    with pytest.raises(SystemExit) as exit_info:
        readiness.main([option])
    assert exit_info.value.code == 2
