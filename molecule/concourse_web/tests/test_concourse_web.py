"""The web node as installed by roles/concourse_web from a Concourse release archive."""
import json
import os
import time

import pytest
import yaml

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "roles",
                       "concourse_release", "defaults", "main.yml"), encoding="utf-8") as _handle:
    VERSION = str(yaml.safe_load(_handle)["concourse_release_version"])


def info(host):
    return json.loads(host.check_output("curl -sf http://127.0.0.1:8080/api/v1/info"))


def main_pid(host):
    return int(host.check_output("systemctl show -P MainPID concourse-web"))


def wait(probe, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return True
        except Exception:  # noqa: BLE001 - retried until the deadline
            pass
        time.sleep(2)
    return False


def test_release_is_installed_with_a_current_link(host):
    assert host.file("/opt/concourse/current").linked_to == f"/opt/concourse/{VERSION}"
    assert host.file(f"/opt/concourse/{VERSION}/bin/concourse").mode & 0o111
    assert host.file(f"/opt/concourse/{VERSION}/fly-assets").is_directory
    assert host.file(f"/opt/concourse/{VERSION}/resource-types").is_directory


def test_unit_runs_as_concourse_and_answers_with_the_pinned_version(host):
    service = host.service("concourse-web")
    if not service.is_running:
        print(host.run("journalctl -u concourse-web -n 60 --no-pager").stdout)
    assert service.is_running and service.is_enabled
    assert host.check_output("systemctl show -P User concourse-web") == "concourse"
    assert info(host)["version"] == VERSION


def test_env_file_and_keys_are_private(host):
    env = host.file("/etc/concourse/web.env")
    assert (env.user, env.mode) == ("root", 0o600)
    for name in ("session_signing_key", "tsa_host_key"):
        key = host.file(f"/etc/concourse/web/{name}")
        assert (key.user, key.group, key.mode) == ("root", "concourse", 0o640)
    assert "correct-horse-battery" not in host.check_output("cat /etc/concourse/web.env")


def test_listeners(host):
    address = host.check_output("ip -4 route get 1.1.1.1 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'")
    listening = {line.split()[3] for line in host.check_output("ss -Hltn").splitlines()}
    assert "127.0.0.1:8080" in listening
    assert [a for a in listening if a.endswith(":2222")] == [f"{address}:2222"]
    assert "127.0.0.1:9391" in listening
    assert "concourse_" in host.check_output("curl -sf http://127.0.0.1:9391/metrics")


def test_local_user_logs_in_and_owns_main(host):
    token = json.loads(host.check_output(
        "curl -sf -u fly:Zmx5 -d grant_type=password -d username=admin "
        "-d password=correct-horse-battery -d 'scope=openid profile email federated:id groups' "
        "http://127.0.0.1:8080/sky/issuer/token"))["access_token"]
    user = json.loads(host.check_output(
        f"curl -sf -H 'Authorization: Bearer {token}' http://127.0.0.1:8080/api/v1/user"))
    assert user["user_id"] == "admin" and user["connector"] == "local"
    assert "owner" in user["teams"]["main"]
    refused = host.run("curl -s -o /dev/null -w '%{http_code}' -u fly:Zmx5 -d grant_type=password "
                       "-d username=admin -d password=wrong -d 'scope=openid' http://127.0.0.1:8080/sky/issuer/token")
    assert refused.stdout != "200"


def test_fly_is_served(host):
    code = host.check_output("curl -s -o /var/tmp/fly -w '%{http_code}' "
                             "'http://127.0.0.1:8080/api/v1/cli?arch=amd64&platform=linux'")
    assert code == "200"
    # The web node serves the fly binary from fly-assets/fly-linux-amd64.tgz.
    assert host.check_output("chmod +x /var/tmp/fly && /var/tmp/fly --version") == VERSION


def test_reload_rereads_worker_keys_without_a_restart(host):
    before = main_pid(host)
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    host.check_output("systemctl reload concourse-web")
    assert wait(lambda: "reloading-config" in host.check_output(
        f"journalctl -u concourse-web --since '{since}' --no-pager"), timeout=30)
    assert main_pid(host) == before
    assert info(host)["version"] == VERSION


@pytest.mark.parametrize("how", ["kill -KILL {pid}", "systemctl restart postgresql"])
def test_comes_back_by_itself(host, how):
    before = main_pid(host)
    host.check_output(how.format(pid=before))
    assert wait(lambda: info(host)["version"] == VERSION and main_pid(host) != 0, timeout=180)
    if "kill" in how:
        assert main_pid(host) != before
    assert wait(lambda: host.run("curl -sf -u fly:Zmx5 -d grant_type=password -d username=admin "
                                 "-d password=correct-horse-battery -d scope=openid "
                                 "http://127.0.0.1:8080/sky/issuer/token").rc == 0, timeout=120)
