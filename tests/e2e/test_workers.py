"""Concourse's workers in the lab, against a real Concourse release (make e2e).

- both workers registered and running, the GPU worker tagged gpu;
- a task whose image comes from the lab's registry runs on each worker;
- cache_hub: a task that asks reads what the host put there and leaves
  what the next build sees; a task that does not ask sees nothing of it;
- `systemctl restart concourse-worker` during a build: the build ends
  (succeeded, failed or errored, not stuck), the worker runs again within
  60 s and no worker is left stalled;
- `fly execute` uploads an input larger than the proxy's general body limit
  (the artifacts endpoint has its own), and other paths keep that limit.

The lab's GPU worker has no GPU: these tests use what a GPU worker is to
Concourse (its tag, its hooks directory, cache_hub), not a GPU.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import task_file

pytestmark = pytest.mark.usefixtures("concourse_required")

GPU_WORKER = "gpu-worker-1"
WORKER = "worker-2"
WORKERS = (GPU_WORKER, WORKER)


def workers(fly) -> dict[str, dict]:
    return {w["name"]: w for w in fly.json("workers")}


def execute(fly, task: str, tags=(), timeout: float = 600) -> tuple[subprocess.CompletedProcess, int]:
    """fly execute; returns the finished process and the build's id."""
    argv = ["execute", "-c", task]
    for tag in tags:
        argv += ["--tag", tag]
    done = fly.run(*argv, check=False, timeout=timeout)
    return done, build_id(done.stdout + done.stderr)


def build_id(output: str) -> int:
    found = re.search(r"executing build (\d+)", output)
    assert found, f"no build id in fly execute's output:\n{output}"
    return int(found.group(1))


def build_worker(fly, build: int) -> set[str]:
    """The workers that held the build's containers (fly containers)."""
    containers = fly.json("containers")
    return {c["worker_name"] for c in containers if c.get("build_id") == build}


def test_both_workers_run_and_the_gpu_worker_is_tagged(fly):
    deadline = time.monotonic() + 30
    seen = {}
    while time.monotonic() < deadline:
        seen = workers(fly)
        if all(seen.get(name, {}).get("state") == "running" for name in WORKERS):
            break
        time.sleep(2)
    assert {name: seen.get(name, {}).get("state") for name in WORKERS} == \
        {GPU_WORKER: "running", WORKER: "running"}, seen
    assert "gpu" in (seen[GPU_WORKER].get("tags") or [])
    assert "gpu" not in (seen[WORKER].get("tags") or [])
    # The release's resource types are advertised by every worker.
    for name in WORKERS:
        types = {t["type"] for t in seen[name].get("resource_types") or []}
        assert {"registry-image", "git", "time", "mock"} <= types, (name, types)


@pytest.mark.parametrize("worker,tags", [(GPU_WORKER, ("gpu",)), (WORKER, ())])
def test_a_task_with_the_lab_registrys_image_runs_on_each_worker(fly, tmp_path, worker, tags):
    token = uuid.uuid4().hex
    task = task_file(tmp_path, f"""
        echo "debian $(cat /etc/debian_version)"
        echo "token {token}"
    """)
    done, build = execute(fly, task, tags=tags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"token {token}" in done.stdout
    assert re.search(r"debian 12\.", done.stdout), done.stdout
    assert build_worker(fly, build) == {worker}


def test_cache_hub_reaches_the_tasks_that_ask_and_only_them(fly, lab, tmp_path):
    token = uuid.uuid4().hex
    area = f"/srv/cache_hub/e2e-{token}"
    lab.sh(GPU_WORKER, f"mkdir -p {area} && chmod 0777 {area} && echo {token} > {area}/from-host")
    try:
        first = task_file(tmp_path, f"""
            cat /cache_hub/e2e-{token}/from-host
            echo "built {token}" > /cache_hub/e2e-{token}/from-build
        """, params={"CACHE_HUB": "1"})
        done, build = execute(fly, first, tags=("gpu",))
        assert done.returncode == 0, done.stdout + done.stderr
        assert token in done.stdout
        assert build_worker(fly, build) == {GPU_WORKER}
        # The host sees what the build left.
        assert lab.sh(GPU_WORKER, f"cat {area}/from-build").stdout.strip() == f"built {token}"

        second = task_file(tmp_path, f"cat /cache_hub/e2e-{token}/from-build",
                           params={"CACHE_HUB": "1"})
        done, _ = execute(fly, second, tags=("gpu",))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"built {token}" in done.stdout

        without = task_file(tmp_path, f"""
            if [ -e /cache_hub ]; then echo "cache visible"; ls -la /cache_hub; exit 1; fi
            if grep -q cache_hub /proc/self/mountinfo; then echo "cache mounted"; exit 1; fi
            echo "no cache {token}"
        """)
        done, _ = execute(fly, without, tags=("gpu",))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"no cache {token}" in done.stdout
    finally:
        lab.sh(GPU_WORKER, f"rm -rf {area}", check=False)


def test_a_worker_restart_during_a_build_ends_cleanly(fly, lab, tmp_path):
    token = uuid.uuid4().hex
    task = task_file(tmp_path, f"""
        echo "started {token}"
        sleep 25
        echo "finished {token}"
    """)
    runner = fly.start("execute", "-c", task)
    try:
        deadline = time.monotonic() + 300
        while f"started {token}" not in runner.output:
            assert time.monotonic() < deadline and runner.process.poll() is None, runner.output
            time.sleep(0.5)

        restarted_at = time.monotonic()
        lab.exec(WORKER, "systemctl", "restart", "concourse-worker", timeout=120)

        # The worker is running again within 60 s of the restart.
        state = None
        while time.monotonic() - restarted_at < 60:
            state = workers(fly).get(WORKER, {}).get("state")
            if state == "running":
                break
            time.sleep(1)
        assert state == "running", f"{WORKER} is {state} 60 s after the restart"

        # The build ends by itself: it finishes or fails, it is not left hanging.
        runner.wait(timeout=240)
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
    runner.reader.join(timeout=10)
    text = runner.output
    build = build_id(text)
    builds = fly.json("builds", "--count", "50")
    status = next(b["status"] for b in builds if b["id"] == build)
    assert status in ("succeeded", "failed", "errored"), (status, text)
    if status == "succeeded":
        assert f"finished {token}" in text
    print(f"build {build} across the restart: {status}")

    # No worker left stalled, and the restarted one takes work again.
    states = {name: w["state"] for name, w in workers(fly).items()}
    assert "stalled" not in states.values(), states
    again = task_file(tmp_path, f"echo again {token}")
    done, after = execute(fly, again)
    assert done.returncode == 0 and f"again {token}" in done.stdout, done.stdout + done.stderr
    assert build_worker(fly, after) == {WORKER}


# The proxy's general body limit (nginx_proxy_client_max_body_size) in bytes;
# fly execute's upload goes to the artifacts endpoint, which has its own.
PROXY_BODY_LIMIT = 100 * 1024 * 1024


def test_fly_execute_uploads_an_input_larger_than_the_proxys_general_limit(fly, lab, tmp_path):
    """150 MiB of random data (fly's gzip cannot shrink it) reaches the task intact through the proxy."""
    inputs = tmp_path / "big-input"
    inputs.mkdir()
    digest = hashlib.sha256()
    with open(inputs / "weights.bin", "wb") as handle:
        for _ in range(150):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            handle.write(chunk)
    assert (inputs / "weights.bin").stat().st_size > PROXY_BODY_LIMIT
    task = task_file(tmp_path, "sha256sum big-input/weights.bin", inputs=("big-input",))
    done = fly.run("execute", "-c", task, "-i", f"big-input={inputs}", check=False, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert f"{digest.hexdigest()}  big-input/weights.bin" in done.stdout, done.stdout[-3000:]


def test_other_paths_keep_the_proxys_general_body_limit(lab):
    """A body announced larger than the general limit is refused (413) before any of it is sent."""
    context = ssl.create_default_context(cafile=lab.ca_cert)
    port = int(lab.url.rsplit(":", 1)[1])
    credentials = base64.b64encode(
        f"{lab.access['PROXY_USER']}:{lab.access['PROXY_PASSWORD']}".encode()).decode()
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=60)
    try:
        connection.putrequest("PUT", "/api/v1/teams/main/pipelines/too-big/config")
        connection.putheader("Authorization", f"Basic {credentials}")
        connection.putheader("Content-Type", "application/x-yaml")
        connection.putheader("Content-Length", str(PROXY_BODY_LIMIT + 1))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()
