"""roles/concourse_worker/files/concourse-worker-drain, the worker unit's ExecStop.

A small Python process stands in for Concourse's worker here: it records
which drain signal it got and exits (or not) as the worker does once
landed. The real worker's reaction is tested in tests/e2e/test_workers.py.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from conftest import ROOT

DRAIN = os.path.join(ROOT, "roles", "concourse_worker", "files", "concourse-worker-drain")

STANDIN = r"""
import signal, sys, time
record, linger = sys.argv[1], float(sys.argv[2])
def on(sig, _):
    with open(record, "w") as out:
        out.write(signal.Signals(sig).name)
    if linger >= 0:
        time.sleep(linger)
        sys.exit(0)
signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGUSR2, on)
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""


def start_standin(tmp_path, linger):
    record = tmp_path / "signal"
    proc = subprocess.Popen([sys.executable, "-c", STANDIN, str(record), str(linger)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    # Reap it as systemd reaps the worker: a zombie still answers kill -0.
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc, record


def drain(pid, timeout, tmp_path, retire=False):
    env = dict(os.environ, CONCOURSE_WORKER_RETIRE_FLAG=str(tmp_path / "retire"))
    if retire:
        (tmp_path / "retire").write_text("retire\n")
    started = time.monotonic()
    done = subprocess.run(["sh", DRAIN, str(pid), str(timeout)], env=env,
                          capture_output=True, text=True, timeout=30)
    return done, time.monotonic() - started


def test_lands_and_waits_for_the_worker_to_exit(tmp_path):
    proc, record = start_standin(tmp_path, linger=1.5)
    done, took = drain(proc.pid, 20, tmp_path)
    assert done.returncode == 0, done.stderr
    assert record.read_text() == "SIGUSR1"
    assert proc.wait(timeout=5) == 0
    assert 1.0 < took < 10, took
    assert "drained after" in done.stdout


def test_retires_when_the_role_asked_for_it(tmp_path):
    proc, record = start_standin(tmp_path, linger=0.2)
    done, _ = drain(proc.pid, 20, tmp_path, retire=True)
    assert done.returncode == 0, done.stderr
    assert record.read_text() == "SIGUSR2"
    assert "retiring" in done.stdout
    proc.wait(timeout=5)


def test_gives_up_after_the_timeout_and_leaves_the_rest_to_systemd(tmp_path):
    proc, record = start_standin(tmp_path, linger=-1)  # never exits on its own
    try:
        done, took = drain(proc.pid, 2, tmp_path)
        assert done.returncode == 0
        assert record.read_text() == "SIGUSR1"
        assert 2 <= took < 8, took
        assert "stopping it now" in done.stdout
        assert proc.poll() is None, "the drain script must not kill the worker itself"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_worker_that_is_gone_needs_nothing(tmp_path):
    done, took = drain(2 ** 22 + 12345, 5, tmp_path)
    assert done.returncode == 0 and took < 2
    done, _ = drain("", 5, tmp_path)
    assert done.returncode == 0
