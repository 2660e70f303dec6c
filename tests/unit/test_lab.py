"""The lab's generated credentials, access file and what `make lab` prints."""
import importlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import ROOT
from labkit import lab


def test_secret_is_generated_once_and_never_rotated(tmp_path):
    first = lab.lab_secret(str(tmp_path), "concourse/admin-password")
    path = tmp_path / "concourse" / "admin-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32 and first.isalnum()
    assert lab.lab_secret(str(tmp_path), "concourse/admin-password") == first
    assert lab.lab_secret(str(tmp_path), "other") != first


def test_secret_file_is_ansible_password_lookup_format(tmp_path):
    # The password lookup stores "<value>" or "<value> salt=<salt>".
    path = tmp_path / "x"
    path.write_text("s3cret salt=abcd\n")
    assert lab.lab_secret(str(tmp_path), "x") == "s3cret"


def test_access_env_is_private_and_complete(tmp_path):
    values = lab.write_access(str(tmp_path))
    env = tmp_path / "access.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    text = env.read_text()
    for key in ("CONCOURSE_URL", "CONCOURSE_USER", "CONCOURSE_PASSWORD",
                "PROXY_USER", "PROXY_PASSWORD"):
        assert f"{key}='{values[key]}'\n" in text
    assert values["CONCOURSE_URL"].startswith("https://localhost:")
    # A second run keeps the same credentials.
    assert lab.write_access(str(tmp_path)) == values


def test_up_prints_where_the_passwords_are_not_what_they_are(tmp_path, monkeypatch, capsys):
    """`make lab`'s output lands in CI logs: no secret in it, stdout or stderr.

    Only the secrets and what is printed are real here: the containers, the
    task image, the archive search and both playbooks are test doubles.
    """
    archive = tmp_path / "concourse-test.tgz"
    archive.write_bytes(b"")
    monkeypatch.setattr(lab.concourse, "find_archive", lambda: str(archive))
    monkeypatch.setattr(lab, "up_hosts", lambda: None)
    monkeypatch.setattr(lab.taskimage, "build", lambda cache: str(tmp_path / "task-image"))
    monkeypatch.setattr(lab, "probe", lambda url: "HTTP 200")
    monkeypatch.setattr(lab.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0))
    lab.up(str(tmp_path), [])
    out = capsys.readouterr()
    values = lab.access_values(str(tmp_path / ".lab"))
    for key in ("CONCOURSE_PASSWORD", "PROXY_PASSWORD"):
        assert len(values[key]) == 32
        assert values[key] not in out.out + out.err, f"{key} printed"
        assert key in out.out, f"the output says where {key} is"
    assert str(tmp_path / ".lab" / "access.env") in out.out


def inventory_hosts():
    import yaml
    with open(os.path.join(ROOT, "inventories/lab/hosts.yml"), encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)

    def hosts(group):
        found = set((group.get("hosts") or {}).keys())
        for child in (group.get("children") or {}).values():
            found |= hosts(child)
        return found
    return hosts(inventory["all"])


def test_lab_hosts_match_the_lab_inventory():
    assert inventory_hosts() == {h.name for h in lab.HOSTS}


def test_every_published_port_is_on_loopback():
    specs = [spec for host in lab.HOSTS for spec in host.publish]
    assert specs, "the web node publishes the proxy"
    for spec in specs:
        address, host_port, container_port = spec.split(":")
        assert address == "127.0.0.1", spec
        assert 1 <= int(host_port) <= 65535 and 1 <= int(container_port) <= 65535, spec


@pytest.fixture
def lab_named(monkeypatch):
    """labkit.lab as imported with another lab name and proxy port."""
    monkeypatch.setenv("LABKIT_LAB", "unit-lab")
    monkeypatch.setenv("LABKIT_PROXY_PORT", "9448")
    yield importlib.reload(lab)
    monkeypatch.undo()
    importlib.reload(lab)


def test_lab_and_inventory_agree_on_name_and_port(lab_named):
    """labkit and inventories/lab read LABKIT_LAB and LABKIT_PROXY_PORT each:
    the containers Ansible reaches and the port in the proxy's redirects must
    be the ones labkit made and published."""
    assert {h.container for h in lab_named.HOSTS} == {f"unit-lab-{name}" for name in inventory_hosts()}
    published = {spec.split(":")[1] for host in lab_named.HOSTS for spec in host.publish if spec.endswith(":443")}
    assert published == {"9448"}
    env = dict(os.environ, LABKIT_LAB="unit-lab", LABKIT_PROXY_PORT="9448",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i", "inventories/lab/hosts.yml", "web",
         "-m", "ansible.builtin.debug", "-a", "msg={{ [ansible_host, nginx_proxy_public_https_port | int] }}",
         "-o"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    msg = json.loads(proc.stdout.split("=>", 1)[1])["msg"]
    assert msg == ["unit-lab-web", 9448]


NO_LAB = object()


def lab_inventory_archive(tmp_path, environ, recorded):
    """concourse_release_archive as the lab inventory resolves it, in a copy
    of inventories/lab whose .lab/concourse.json labkit wrote with `recorded`
    (NO_LAB: no .lab at all)."""
    checkout = tmp_path / "checkout"
    shutil.copytree(os.path.join(ROOT, "inventories", "lab"), checkout / "inventories" / "lab")
    if recorded is not NO_LAB:
        (checkout / ".lab").mkdir()
        lab.write_concourse_state(str(checkout / ".lab"), recorded, [])
    env = {k: v for k, v in os.environ.items() if k != "CONCOURSE_RELEASE_ARCHIVE"}
    env.update(environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i",
         str(checkout / "inventories" / "lab" / "hosts.yml"), "web", "-c", "local",
         "-m", "ansible.builtin.debug", "-a", "msg={{ concourse_release_archive }}", "-o"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.split("=>", 1)[1])["msg"]


@pytest.mark.parametrize("environ,recorded,expected", [
    ({}, "/srv/concourse-8.2.5-linux-amd64.tgz", "/srv/concourse-8.2.5-linux-amd64.tgz"),
    ({"CONCOURSE_RELEASE_ARCHIVE": "/srv/8.2.4.tgz"}, "/srv/concourse-8.2.5-linux-amd64.tgz", "/srv/8.2.4.tgz"),
    ({}, NO_LAB, ""),
    ({}, None, ""),       # `make lab` had no archive: the lab has no Concourse
], ids=["recorded", "environment-wins", "no-lab", "lab-without-concourse"])
def test_a_second_site_run_finds_the_archive_make_lab_installed(tmp_path, environ, recorded, expected):
    """`ansible-playbook -i inventories/lab/hosts.yml site.yml` after `make lab`
    installs the archive labkit recorded, with nothing exported."""
    assert lab_inventory_archive(tmp_path, environ, recorded) == expected
