"""The Concourse workers of molecule/concourse_worker and the web node they register with.

The web node is there for the workers: its own tests are
molecule/concourse_web's. What needs builds (tasks, cache_hub inside tasks,
a restart during a build) is tested against the lab in tests/e2e/test_workers.py.
"""
import json
import os
import subprocess
import time

import pytest
import yaml

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_FILE = "/etc/concourse/worker/worker.env"
UNIT = "concourse-worker.service"
WEB = "molecule-concourse_worker-web"

testinfra_hosts = ["ansible://concourse_workers"]

with open(os.path.join(SCENARIO, "..", "..", "roles", "concourse_release", "defaults", "main.yml"),
          encoding="utf-8") as _handle:
    VERSION = str(yaml.safe_load(_handle)["concourse_release_version"])


def web_host(host):
    return host.get_host(f"ansible://{WEB}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def registered(host):
    """This worker as the web node's API lists it (None when it is not listed)."""
    web = web_host(host)
    token = json.loads(web.check_output(
        "curl -sf -u fly:Zmx5 -d grant_type=password -d username=admin "
        "-d password=correct-horse-battery -d scope=openid http://127.0.0.1:8080/sky/issuer/token"))["access_token"]
    workers = json.loads(web.check_output(
        f"curl -sf -H 'Authorization: Bearer {token}' http://127.0.0.1:8080/api/v1/workers"))
    name = host.backend.get_hostname()
    return next((worker for worker in workers if worker["name"] == name), None)


def wait_state(host, state, timeout=120):
    """Wait until the web node lists this worker in `state`; return what it last listed."""
    deadline = time.monotonic() + timeout
    worker = None
    while time.monotonic() < deadline:
        worker = registered(host)
        if worker and worker["state"] == state:
            break
        time.sleep(2)
    return worker


def unit_property(host, name):
    return host.check_output(f"systemctl show --property={name} --value {UNIT}")


def journal_since(host, cursor_time):
    return host.check_output(f"journalctl --unit {UNIT} --since '@{cursor_time}' --no-pager --output cat")


def wait_healthy(host, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.run("curl -fsS -o /dev/null http://127.0.0.1:8888/").rc == 0:
            return True
        time.sleep(2)
    return False


def run_playbook(host, playbook):
    """Run a playbook of this scenario against this instance only."""
    name = host.backend.get_hostname()
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(SCENARIO, "..", "..", "roles"),
               ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--limit", name,
         os.path.join(SCENARIO, playbook)],
        capture_output=True, text=True, timeout=900, env=env)


def test_release_is_installed_and_runs_its_version(host):
    out = host.check_output("/opt/concourse/current/bin/concourse --version")
    assert out.strip() == VERSION
    for tool in ("containerd", "containerd-shim-runc-v2", "runc", "init", "bridge", "host-local", "loopback"):
        assert host.file(f"/opt/concourse/current/bin/{tool}").mode & 0o111, tool
    for resource_type in ("registry-image", "git", "time", "mock"):
        assert host.file(f"/opt/concourse/current/resource-types/{resource_type}/rootfs.tgz").exists


def test_unit_delegates_cgroups_and_stops_only_the_worker(host):
    assert unit_property(host, "Delegate") == "yes"
    assert unit_property(host, "KillMode") == "process"
    assert unit_property(host, "TasksMax") == "infinity"
    assert "concourse-worker-drain" in unit_property(host, "ExecStop")
    assert unit_property(host, "UnitFileState") == "enabled"
    assert host.service("concourse-worker").is_running


def test_settings_are_private_and_complete(host):
    env = host.file(ENV_FILE)
    assert env.user == "root" and env.mode == 0o600
    text = env.content_string
    name = host.backend.get_hostname()
    # One quoted value a line (systemd's EnvironmentFile takes the quotes off).
    for line in (f'CONCOURSE_NAME="{name}"', 'CONCOURSE_TAG="gpu"', 'CONCOURSE_RUNTIME="containerd"',
                 'CONCOURSE_WORK_DIR="/var/lib/concourse-worker"',
                 f'CONCOURSE_TSA_HOST="{WEB}:2222"',
                 'CONCOURSE_CONTAINERD_DNS_SERVER="192.0.2.53"',
                 'CONCOURSE_CONTAINERD_OCI_HOOKS_DIR="/etc/concourse/oci-hooks.d"',
                 'CONCOURSE_HEALTHCHECK_BIND_IP="127.0.0.1"'):
        assert line in text.splitlines(), line
    # Production keeps Concourse's default privileged mode.
    assert "CONCOURSE_CONTAINERD_PRIVILEGED_MODE" not in text
    key = host.file("/etc/concourse/worker/worker_key")
    assert key.mode == 0o600 and "PRIVATE KEY" in host.check_output("head -1 /etc/concourse/worker/worker_key")


def test_the_worker_runs_its_own_containerd_and_answers_its_health_check(host):
    assert wait_healthy(host), host.run(f"journalctl -u {UNIT} -n 40 --no-pager").stdout
    main_pid = unit_property(host, "MainPID")
    listeners = host.check_output("ss --unix --listening --processes --no-header")
    line = next(li for li in listeners.splitlines() if "/run/containerd/containerd.sock " in li)
    pid = line.split("pid=")[1].split(",")[0]
    assert host.check_output(f"ps -o ppid= -p {pid}").strip() == main_pid
    # The release's containerd, not one from the host's packages.
    assert host.check_output(f"readlink /proc/{pid}/exe") == f"/opt/concourse/{VERSION}/bin/containerd"
    assert host.file("/var/lib/concourse-worker/containerd").is_directory


def test_the_worker_registers_with_the_web_node_and_runs(host):
    worker = wait_state(host, "running")
    assert worker is not None, f"{host.backend.get_hostname()} is not registered with {WEB}"
    assert worker["state"] == "running", worker
    assert worker["tags"] == ["gpu"]
    assert worker["platform"] == "linux"
    assert not worker.get("team")


def test_the_worker_loaded_cache_hubs_hook(host):
    logs = host.check_output(f"journalctl --unit {UNIT} --no-pager --output cat")
    assert "Parsing hooks file /etc/concourse/oci-hooks.d/50-cache-hub.json" in logs


def test_stopping_the_unit_lands_the_worker(host):
    since = int(host.check_output("date +%s"))
    assert wait_state(host, "running")["state"] == "running"
    host.run_expect([0], f"systemctl stop {UNIT}")
    try:
        logs = journal_since(host, since)
        assert "concourse-worker-drain: landing the worker" in logs
        # The worker took SIGUSR1 as a landing, the web node landed it and
        # let it go, and it exited before the drain's timeout.
        assert "landing-worker" in logs
        assert "concourse-worker-drain: drained after" in logs, logs[-3000:]
        assert registered(host)["state"] == "landed"
    finally:
        host.run_expect([0], f"systemctl start {UNIT}")
    assert wait_healthy(host)
    assert wait_state(host, "running")["state"] == "running"


def test_a_changed_hook_restarts_the_worker(host):
    before = unit_property(host, "ExecMainStartTimestampMonotonic")
    time.sleep(1.1)
    host.run_expect([0], "touch /etc/concourse/oci-hooks.d/50-cache-hub.json")
    result = run_playbook(host, "converge.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Compare the hooks with the running worker's start" in result.stdout
    assert unit_property(host, "ExecMainStartTimestampMonotonic") != before
    assert wait_healthy(host)


def test_preflight_refuses_overlaps_and_a_system_containerd(host):
    result = run_playbook(host, "refusals.yml")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "failed=0" in result.stdout
    assert wait_healthy(host)
    assert wait_state(host, "running")["state"] == "running"


@pytest.mark.parametrize("path", ["/etc/concourse/worker", "/var/lib/concourse-worker"])
def test_directories(host, path):
    assert host.file(path).is_directory and host.file(path).user == "root"
