"""The days ops live through, against the lab and a real Concourse (make e2e).

- playbooks/reprovision-worker.yml re-provisions the GPU worker while the
  other worker keeps taking builds, and a build started on it before the run
  completes;
- a worker whose container was wiped (a fresh container, same name, same
  cache_hub volume) rejoins with its old key, and cache_hub is intact;
- faults: the web node's concourse killed, PostgreSQL restarted, a worker
  container stopped and started, a converge killed half-way: each recovers
  without a person, and the interrupted converge rotates no secret;
- playbooks/upgrade.yml rolls a web node that does not come up back to the
  previous release and the database dump, and says so.

Untagged steps run only on untagged workers (worker-2) and `tags: [gpu]`
steps only on the GPU worker, which is how the tests choose a worker.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import signal
import subprocess
import tarfile
import threading
import uuid

import pytest
import yaml

from conftest import LAB_DIR, ROOT, task_file, wait_for

pytestmark = pytest.mark.usefixtures("concourse_required")

GPU_WORKER, WORKER = "gpu-worker-1", "worker-2"
OLD_ARCHIVE_NAME = "concourse-8.2.4-linux-amd64.tgz"
# The version the kit pins.
with open(os.path.join(ROOT, "roles", "concourse_release", "defaults", "main.yml"), encoding="utf-8") as _defaults:
    PINNED_VERSION = str(yaml.safe_load(_defaults)["concourse_release_version"])


def execute(fly, tmp_path, script: str, tags=(), timeout: float = 600) -> subprocess.CompletedProcess:
    argv = ["execute", "-c", task_file(tmp_path, script)]
    for tag in tags:
        argv += ["--tag", tag]
    return fly.run(*argv, check=False, timeout=timeout)


def worker_states(fly) -> dict[str, str]:
    return {w["name"]: w["state"] for w in fly.json("workers")}


def all_running(fly, names=(GPU_WORKER, WORKER)) -> bool:
    states = worker_states(fly)
    return all(states.get(name) == "running" for name in names) and "stalled" not in states.values()


def playbook(lab, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(["ansible-playbook", "-i", "inventories/lab/hosts.yml", *args, *lab.playbook_args()],
                          cwd=ROOT, env=lab.playbook_env(), capture_output=True, text=True, timeout=timeout)


def secrets_digest() -> dict[str, str]:
    digest = {}
    for path in sorted(glob.glob(os.path.join(LAB_DIR, "secrets", "**", "*"), recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                digest[os.path.relpath(path, LAB_DIR)] = hashlib.sha256(handle.read()).hexdigest()
    return digest


def test_reprovision_a_worker_while_the_other_takes_builds(lab, fly, tmp_path):
    assert wait_for(lambda: all_running(fly), 120, what="both workers running")
    # A build on the GPU worker whose task is running when the re-provisioning
    # starts. Its script must have started: a build still fetching its image
    # has no container on the worker yet, and a landing worker takes none
    # (Concourse then errors the step: "no workers satisfying ... tag 'gpu'").
    before = {}
    build = fly.start("execute", "--tag", "gpu", "-c",
                      task_file(tmp_path, "echo started-before-reprovision; sleep 45; "
                                          "echo finished-before-reprovision"))
    wait_for(lambda: "started-before-reprovision" in build.output or build.process.poll() is not None, 600,
             interval=0.5, what="the GPU build's script to start")
    assert "started-before-reprovision" in build.output, build.output[-2000:]

    run = {}

    def reprovision():
        try:
            run["done"] = playbook(lab, "playbooks/reprovision-worker.yml", "--limit", GPU_WORKER)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            run["error"] = error

    runner = threading.Thread(target=reprovision)
    runner.start()
    others = []
    while runner.is_alive():
        others.append(execute(fly, tmp_path, "echo taken-by-the-other-worker"))
    runner.join()
    before["returncode"] = build.wait(timeout=600)
    before["stdout"] = build.output

    assert "done" in run, f"the playbook did not run: {run.get('error')!r}"
    done = run["done"]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert f"{GPU_WORKER} is running" in done.stdout, done.stdout[-3000:]
    assert before["returncode"] == 0 and "finished-before-reprovision" in before["stdout"], before["stdout"][-2000:]
    assert others, "no build ran on the other worker during the re-provisioning"
    failed = [o.stdout[-500:] + o.stderr[-500:] for o in others if o.returncode != 0]
    assert not failed, f"builds on {WORKER} failed during the re-provisioning: {failed}"
    assert all(o.returncode == 0 and "taken-by-the-other-worker" in o.stdout for o in others)
    assert worker_states(fly).get(GPU_WORKER) == "running"


def test_a_wiped_worker_rejoins_with_its_key_and_cache(lab, fly, tmp_path):
    from labkit import lab as labkit_lab  # the lab's own container settings (scripts/labkit)

    marker = f"kept-{uuid.uuid4().hex}"
    lab.sh(GPU_WORKER, f"echo {marker} > /srv/cache_hub/.ops-test-marker && sync")
    before = lab.sh(GPU_WORKER, "stat -c '%i %Y %s' /srv/cache_hub/.ops-test-marker; "
                                "du -sb /srv/cache_hub | cut -f1").stdout
    key_before = lab.sh(GPU_WORKER, "sha256sum /etc/concourse/worker/worker_key").stdout.split()[0]

    # The root disk is wiped: a fresh container with the same name and the same cache_hub volume.
    subprocess.run(["docker", "rm", "-f", lab.container(GPU_WORKER)], check=True, capture_output=True)
    host = next(h for h in labkit_lab.HOSTS if h.name == GPU_WORKER)
    labkit_lab._start_host(host)
    labkit_lab.wait_for_systemd(host.container)
    assert lab.sh(GPU_WORKER, "test -e /etc/concourse/worker/worker_key", check=False).returncode != 0, \
        "the container was not fresh"

    done = playbook(lab, "playbooks/reprovision-worker.yml", "--limit", GPU_WORKER)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert wait_for(lambda: worker_states(fly).get(GPU_WORKER) == "running", 60, what="the wiped worker running")
    assert lab.sh(GPU_WORKER, "sha256sum /etc/concourse/worker/worker_key").stdout.split()[0] == key_before
    assert lab.sh(GPU_WORKER, "cat /srv/cache_hub/.ops-test-marker").stdout.strip() == marker
    after = lab.sh(GPU_WORKER, "stat -c '%i %Y %s' /srv/cache_hub/.ops-test-marker; "
                               "du -sb /srv/cache_hub | cut -f1").stdout
    assert after == before, f"cache_hub changed: {before!r} -> {after!r} (0 bytes were to be re-downloaded)"
    ran = execute(fly, tmp_path, "echo on-the-rejoined-worker", tags=["gpu"])
    assert ran.returncode == 0 and "on-the-rejoined-worker" in ran.stdout, ran.stdout[-2000:] + ran.stderr[-2000:]


def test_a_killed_web_node_is_restarted_and_workers_reconnect(lab, fly, tmp_path):
    restarts = int(lab.exec("web", "systemctl", "show", "-P", "NRestarts", "concourse-web").stdout.strip() or 0)
    lab.exec("web", "systemctl", "kill", "--signal=SIGKILL", "concourse-web")
    wait_for(lambda: int(lab.exec("web", "systemctl", "show", "-P", "NRestarts", "concourse-web")
                         .stdout.strip() or 0) > restarts, 60, what="systemd restarting concourse-web")
    wait_for(lambda: lab.exec("web", "curl", "-fsS", "http://127.0.0.1:8080/api/v1/info", check=False)
             .returncode == 0, 180, what="the web node answering again")
    assert wait_for(lambda: all_running(fly), 120, what="both workers running again")
    ran = execute(fly, tmp_path, "echo after-the-kill")
    assert ran.returncode == 0 and "after-the-kill" in ran.stdout, ran.stdout[-2000:] + ran.stderr[-2000:]


def test_postgresql_restart_under_a_running_web_node(lab, fly, tmp_path):
    lab.sh("web", "systemctl restart 'postgresql@*-main'")
    wait_for(lambda: lab.exec("web", "curl", "-fsS", "http://127.0.0.1:8080/api/v1/info", check=False)
             .returncode == 0, 120, what="the web node answering")
    ran = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
        execute(fly, tmp_path, "echo after-the-database-restart")), 300, interval=5,
        what="a build after the database restart")
    assert "after-the-database-restart" in ran.stdout
    assert lab.exec("web", "systemctl", "is-active", "concourse-web").stdout.strip() == "active"


def test_a_stopped_and_started_worker_rejoins_with_none_stalled(lab, fly, tmp_path):
    subprocess.run(["docker", "stop", lab.container(WORKER)], check=True, capture_output=True, timeout=600)
    subprocess.run(["docker", "start", lab.container(WORKER)], check=True, capture_output=True, timeout=120)
    assert wait_for(lambda: all_running(fly), 180, what="every worker running, none stalled")
    ran = execute(fly, tmp_path, "echo after-the-worker-restart")
    assert ran.returncode == 0 and "after-the-worker-restart" in ran.stdout, ran.stdout[-2000:] + ran.stderr[-2000:]


def test_an_interrupted_converge_is_completed_by_the_next_without_rotating_secrets(lab, fly, tmp_path):
    secrets_before = secrets_digest()
    keys_before = {h: lab.sh(h, "sha256sum /etc/concourse/worker/worker_key").stdout.split()[0]
                   for h in (GPU_WORKER, WORKER)}
    teams_before = lab.sh("web", "runuser -u postgres -- psql -d concourse -Atc "
                                 "'select id, name from teams order by id'").stdout
    proc = subprocess.Popen(["ansible-playbook", "-i", "inventories/lab/hosts.yml", "site.yml",
                             *lab.playbook_args()], cwd=ROOT, env=lab.playbook_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    for line in proc.stdout:  # kill it half-way: once it has reached the Concourse plays
        seen.append(line)
        if line.startswith("PLAY [Concourse"):
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(line.startswith("PLAY [Concourse") for line in seen), "".join(seen[-40:])

    done = playbook(lab, "site.yml")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert secrets_digest() == secrets_before, "a secret on the controller was rotated"
    assert {h: lab.sh(h, "sha256sum /etc/concourse/worker/worker_key").stdout.split()[0]
            for h in (GPU_WORKER, WORKER)} == keys_before
    assert lab.sh("web", "runuser -u postgres -- psql -d concourse -Atc "
                         "'select id, name from teams order by id'").stdout == teams_before
    assert wait_for(lambda: all_running(fly), 120, what="both workers running")
    ran = execute(fly, tmp_path, "echo after-the-interrupted-converge")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]


def broken_release(tmp_path, version: str) -> tuple[str, str]:
    """A stand-in release archive whose concourse binary exits at once: a web node that never comes up.

    It is not Concourse; it exists to make the upgrade fail the way a bad release would.
    """
    root = tmp_path / "broken" / "concourse"
    (root / "bin").mkdir(parents=True)
    binary = root / "bin" / "concourse"
    binary.write_text("#!/bin/sh\necho 'stand-in release: this concourse never starts' >&2\nexit 1\n")
    binary.chmod(0o755)
    archive = tmp_path / f"concourse-{version}-linux-amd64.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="concourse")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (tmp_path / f"{archive.name}.sha256").write_text(f"{digest}  {archive.name}\n")
    return str(archive), digest


def test_a_failed_upgrade_is_rolled_back_and_says_so(lab, fly, tmp_path):
    version_before = lab.exec("web", "curl", "-fsS", "http://127.0.0.1:8080/api/v1/info").stdout
    teams_before = lab.sh("web", "runuser -u postgres -- psql -d concourse -Atc "
                                 "'select id, name from teams order by id'").stdout
    archive, digest = broken_release(tmp_path, "99.0.0")
    done = playbook(lab, "playbooks/upgrade.yml", "--limit", "concourse_web,postgresql",
                    "-e", "concourse_release_version=99.0.0", "-e", f"concourse_release_archive={archive}",
                    "-e", f"concourse_release_archive_sha256={digest}", "-e", "concourse_web_start_timeout=30")
    assert done.returncode != 0, done.stdout[-4000:]
    assert "ROLLED BACK to Concourse" in done.stdout, done.stdout[-5000:]
    assert lab.exec("web", "readlink", "/opt/concourse/current").stdout.strip() != "99.0.0"
    info = lab.exec("web", "curl", "-fsS", "http://127.0.0.1:8080/api/v1/info").stdout
    assert json.loads(info)["version"] == json.loads(version_before)["version"]
    assert lab.sh("web", "runuser -u postgres -- psql -d concourse -Atc "
                         "'select id, name from teams order by id'").stdout == teams_before
    assert wait_for(lambda: all_running(fly), 180, what="both workers running after the rollback")


def test_upgrade_from_8_2_4_to_the_pinned_release(lab, fly, tmp_path):
    # The older release: CONCOURSE_OLD_RELEASE_ARCHIVE, else beside the pinned one.
    pinned = lab.playbook_env().get("CONCOURSE_RELEASE_ARCHIVE", "")
    old = os.environ.get("CONCOURSE_OLD_RELEASE_ARCHIVE") or os.path.join(os.path.dirname(pinned), OLD_ARCHIVE_NAME)
    if not os.path.exists(old):
        print(f"\nSKIPPED: no Concourse 8.2.4 release archive ({OLD_ARCHIVE_NAME}; "
              "set CONCOURSE_OLD_RELEASE_ARCHIVE)")
        pytest.skip(f"no Concourse 8.2.4 release archive ({OLD_ARCHIVE_NAME}; set CONCOURSE_OLD_RELEASE_ARCHIVE)")
    down = playbook(lab, "site.yml", "-e", "concourse_release_version=8.2.4",
                    "-e", f"concourse_release_archive={old}")
    assert down.returncode == 0, down.stdout[-4000:]
    assert json.loads(lab.exec("web", "curl", "-fsS", "http://127.0.0.1:8080/api/v1/info").stdout)["version"] == "8.2.4"
    up = playbook(lab, "playbooks/upgrade.yml", "-e", f"concourse_release_archive={pinned}")
    assert up.returncode == 0, up.stdout[-5000:]
    info = json.loads(lab.exec("web", "curl", "-fsS", "http://127.0.0.1:8080/api/v1/info").stdout)
    assert info["version"] == PINNED_VERSION, info
    # The fly the kit keeps on the web node came from the new server.
    assert lab.exec("web", "/usr/local/bin/fly", "--version").stdout.strip() == PINNED_VERSION
    assert wait_for(lambda: all_running(fly), 180, what="both workers running after the upgrade")
    ran = execute(fly, tmp_path, "echo after-the-upgrade")
    assert ran.returncode == 0, ran.stdout[-2000:]
