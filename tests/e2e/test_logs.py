"""Central logs in the lab: the agent on every host, VictoriaLogs on the web node.

Run against a lab made by `make lab` (LABKIT_LAB names it):

    pytest -rs tests/e2e/test_logs.py

Everything here is real: lines are written with `logger` inside the lab's
containers and read back from the lab's store with LogsQL. Traffic stays in
the lab (docker exec into its containers; the store is queried from the web
node itself). Needs no Concourse.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

LAB = os.environ.get("LABKIT_LAB", "concourse-gpu-kit-lab")
HOSTS = ("web", "gpu-worker-1", "worker-2")
STORE_HOST = "web"
STORE_PORT = 9428


def container(name: str) -> str:
    return f"{LAB}-{name}"


def lab_exec(name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", container(name), *argv],
                          capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture(scope="module", autouse=True)
def lab_is_up():
    for name in HOSTS:
        proc = subprocess.run(["docker", "container", "inspect", "--format", "{{.State.Running}}",
                               container(name)], capture_output=True, text=True, check=False)
        if proc.stdout.strip() != "true":
            pytest.fail(f"lab container {container(name)} is not running: bring the lab up first (make lab)")
    for name in HOSTS:
        assert lab_exec(name, "systemctl", "is-active", "otelcol").stdout.strip() == "active", name
    assert lab_exec(STORE_HOST, "systemctl", "is-active", "victorialogs").stdout.strip() == "active"


def store_url() -> str:
    address = lab_exec(STORE_HOST, "hostname", "-I").stdout.split()[0]
    return f"http://{address}:{STORE_PORT}"


def query(logsql: str) -> list[dict]:
    """Rows the store returns; none while it does not answer (it may be starting)."""
    proc = lab_exec(STORE_HOST, "curl", "-fsS", f"{store_url()}/select/logsql/query",
                    "--data-urlencode", f"query={logsql}", check=False)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def wait_for(logsql: str, want: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    rows = query(logsql)
    while len(rows) < want and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = query(logsql)
    return rows


def log_line(name: str, unit: str, message: str) -> None:
    """`logger` inside a transient unit, kept alive (reading stdin) after it
    sent the line, so that journald can still tell which unit sent it."""
    lab_exec(name, "systemd-run", "--quiet", "--wait", f"--unit={unit}",
             "/bin/sh", "-c", f"(echo '{message}'; sleep 2) | logger -t kit-e2e")


def test_a_logger_line_on_each_host_is_in_the_store_within_15s():
    run = uuid.uuid4().hex[:12]
    written = {}
    for name in HOSTS:
        unit = f"kit-e2e-{run}-{name}"
        log_line(name, unit, f"e2e {run} from {name}")
        written[name] = (unit, time.monotonic())
    for name, (unit, at) in written.items():
        rows = wait_for(f'_stream:{{host="{name}",unit="{unit}.service"}} "{run}"', 1,
                        timeout=max(0.0, at + 15 - time.monotonic()))
        assert len(rows) == 1, f"{name}: {rows}"
        assert rows[0]["_msg"] == f"e2e {run} from {name}"
        assert rows[0]["environment"] == "lab"


def wait_until_ready(name: str, timeout: float = 60) -> None:
    """Until the agent's current run logs that its pipelines are up, as the
    role's own restart handler waits. A collector stopped again within its
    first second of start-up, before that line, can lose the journal lines it
    had already read (seen in the lab at load 30; see README, Central logs)."""
    invocation = lab_exec(name, "systemctl", "show", "-P", "InvocationID", "otelcol").stdout.strip()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        journal = lab_exec(name, "journalctl", "--no-pager", "-o", "cat",
                           f"_SYSTEMD_INVOCATION_ID={invocation}", check=False).stdout
        if "Everything is ready" in journal:
            return
        time.sleep(0.5)
    raise AssertionError(f"otelcol on {name} did not get ready within {timeout:.0f}s")


@pytest.fixture(scope="module")
def restarted_twice():
    """Lines written on worker-2 around two agent restarts, and what the store holds of them."""
    run = uuid.uuid4().hex[:12]
    name = "worker-2"
    unit = f"kit-e2e-{run}-restart"
    messages = []
    for round_ in range(3):
        for i in range(5):
            message = f"restart {run} round {round_} line {i}"
            lab_exec(name, "logger", "-t", "kit-e2e", message)
            messages.append(message)
        if round_ < 2:
            lab_exec(name, "systemctl", "restart", "otelcol")
            wait_until_ready(name)
    log_line(name, unit, f"restart {run} last")
    messages.append(f"restart {run} last")
    wait_for(f'_stream:{{host="{name}"}} identifier:kit-e2e "{run}"', len(messages), timeout=30)
    # Whatever else was going to arrive has had time to.
    time.sleep(5)
    rows = query(f'_stream:{{host="{name}"}} "{run}"')
    # systemd's own lines about the transient unit name the run too.
    return messages, sorted(row["_msg"] for row in rows if row.get("identifier") == "kit-e2e")


def test_the_agent_restarted_twice_sends_no_duplicate(restarted_twice):
    messages, got = restarted_twice
    assert len(got) == len(set(got)), f"duplicates {sorted(m for m in set(got) if got.count(m) > 1)}"
    assert set(got) <= set(messages), f"lines nobody wrote: {set(got) - set(messages)}"
    assert f"{messages[-1]}" in got, "the line written after both restarts never arrived"


@pytest.mark.xfail(strict=False, reason=(
    "KNOWN LOSS: the journald receiver checkpoints a line when it reads it, so a line read in the "
    "moment before the agent stops can be lost (seen in the lab under load: 1 to 5 of 16 lines "
    "around two restarts); README, Central logs"))
def test_the_agent_restarted_twice_loses_nothing(restarted_twice):
    messages, got = restarted_twice
    assert sorted(set(got)) == sorted(messages), f"missing {sorted(set(messages) - set(got))}"


def test_every_line_written_while_the_store_is_down_for_60s_arrives():
    run = uuid.uuid4().hex[:12]
    messages = []
    lab_exec(STORE_HOST, "systemctl", "stop", "victorialogs")
    try:
        stopped = time.monotonic()
        step = 0
        while time.monotonic() - stopped < 60:
            for name in HOSTS:
                message = f"outage {run} {name} step {step}"
                lab_exec(name, "logger", "-t", "kit-e2e", message)
                messages.append(message)
            step += 1
            time.sleep(10)
        assert lab_exec(STORE_HOST, "systemctl", "is-active", "victorialogs",
                        check=False).stdout.strip() != "active"
    finally:
        lab_exec(STORE_HOST, "systemctl", "start", "victorialogs")
    # The agents retry with a backoff of at most 15 s.
    rows = wait_for(f'"{run}"', len(messages), timeout=60)
    time.sleep(3)
    rows = query(f'"{run}"')
    got = sorted(row["_msg"] for row in rows)
    assert got == sorted(messages), f"missing {sorted(set(messages) - set(got))}"
    for row in rows:
        assert row["host"] == row["_msg"].split()[2], row
