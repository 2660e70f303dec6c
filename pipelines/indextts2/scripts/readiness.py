#!/usr/bin/env python3
"""Wait until the IndexTTS2 web UI is really ready, or say at once why not.

The signal is Gradio's own: webui.py loads every model before it calls
demo.launch(), so GET /config answers (HTTP 200, a JSON object) only once
the model is loaded. Upstream has no /ready endpoint.

    readiness.py --url http://127.0.0.1:7860/config --pid "$WEBUI_PID" \
                 --log webui.log --deadline 900

Every probe is bounded by --request-timeout, so a port that accepts and never
answers cannot hold the script past its deadline, and the process is checked
between probes, so a dead web UI is reported within about
request-timeout + interval seconds instead of at the deadline.

Exit status: 0 ready, 1 the process died, 3 the deadline passed
(2 is argparse's usage error). On failure the log's tail is printed.
Standard library only: it runs in the task image before any venv exists.
"""
import argparse
import collections
import json
import os
import sys
import time
import urllib.error
import urllib.request

READY, DIED, DEADLINE = 0, 1, 3


def process_alive(pid: int) -> bool:
    """True while pid runs; a zombie (exited, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses.
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def probe(url: str, timeout: float) -> str | None:
    """None when the URL is ready, else a one-line reason."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
    try:
        document = json.loads(body)
    except ValueError:
        return "HTTP 200 but the body is not JSON"
    if not isinstance(document, dict):
        return "HTTP 200 but the body is not a JSON object"
    return None


def log_tail(path: str | None, lines: int) -> str:
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            tail = collections.deque(log, maxlen=lines)
    except OSError as error:
        return f"(log {path} unreadable: {error})\n"
    return "".join(tail)


def wait(url: str, pid: int | None, deadline: float, interval: float,
         request_timeout: float) -> tuple[int, str]:
    """Poll until ready, dead or out of time; return (status, message)."""
    started = time.monotonic()
    end = started + deadline
    reason = "no answer yet"
    attempts = 0
    while True:
        if pid is not None and not process_alive(pid):
            return DIED, (f"the web UI (pid {pid}) died after {time.monotonic() - started:.1f}s "
                          f"without becoming ready; last probe: {reason}")
        remaining = end - time.monotonic()
        if remaining <= 0:
            return DEADLINE, (f"not ready after {deadline:.0f}s ({attempts} probes); "
                              f"last probe: {reason}")
        attempts += 1
        reason = probe(url, min(request_timeout, remaining)) or ""
        if not reason:
            return READY, f"ready after {time.monotonic() - started:.1f}s ({attempts} probes): {url}"
        if attempts == 1 or attempts % max(1, round(30 / interval)) == 0:
            print(f"readiness: waiting for {url} ({reason}, {time.monotonic() - started:.0f}s)", flush=True)
        time.sleep(max(0.0, min(interval, end - time.monotonic())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/config",
                        help="what answers HTTP 200 with a JSON object once ready")
    parser.add_argument("--pid", type=int, help="the web UI's process; its death ends the wait at once")
    parser.add_argument("--log", help="the web UI's log; its tail is printed on failure")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds before giving up")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between probes")
    parser.add_argument("--request-timeout", type=float, default=1.0,
                        help="seconds one probe may take (a hung port costs no more)")
    parser.add_argument("--tail", type=int, default=80, help="log lines printed on failure")
    args = parser.parse_args(argv)
    for name in ("deadline", "interval", "request_timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")

    status, message = wait(args.url, args.pid, args.deadline, args.interval, args.request_timeout)
    if status == READY:
        print(f"readiness: {message}", flush=True)
        return READY
    print(f"readiness: FAILED: {message}", file=sys.stderr, flush=True)
    tail = log_tail(args.log, args.tail)
    if tail:
        print(f"--- last {args.tail} lines of {args.log} ---", file=sys.stderr)
        print(tail, end="" if tail.endswith("\n") else "\n", file=sys.stderr)
        print(f"--- end of {args.log} ---", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
