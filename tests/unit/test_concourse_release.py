"""roles/concourse_release against localhost: staging, verifying, installing, the current link, the keys.

The archives here are stand-ins made by the test (a shell script named
concourse in Concourse's release layout), not Concourse: what is tested is
how the role treats an archive, not the archive.
"""
import hashlib
import io
import os
import subprocess
import sys
import tarfile

import pytest

from conftest import ROOT

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: true
  vars:
    kit_secrets_dir: "%(secrets)s"
    concourse_release_install_dir: "%(install)s"
    concourse_release_version: "%(version)s"
    concourse_release_archive: "%(archive)s"
    concourse_release_archive_sha256: "%(sha256)s"
    concourse_release_checksums: {}
  tasks:
    - ansible.builtin.include_role:
        name: concourse_release
    - ansible.builtin.copy:
        content: "{{ concourse_release_changed }}"
        dest: "%(out)s"
        mode: "0644"
      changed_when: false
    - ansible.builtin.include_role:
        name: concourse_release
        tasks_from: keypair
"""


def make_archive(path, version):
    """A stand-in archive in the release layout (concourse/bin/concourse prints the version)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data, mode in (
                ("concourse/bin/concourse", f"#!/bin/sh\necho {version}\n".encode(), 0o755),
                ("concourse/fly-assets/fly-linux-amd64.tgz", b"stand-in", 0o644),
                ("concourse/resource-types/mock/resource_metadata.json", b'{"type": "mock"}', 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return digest


def play(tmp_path, version, archive, sha256=""):
    out = tmp_path / "changed"
    if out.exists():
        out.unlink()
    (tmp_path / "play.yml").write_text(PLAY % dict(
        secrets=tmp_path / "secrets", install=tmp_path / "opt", version=version,
        archive=archive, sha256=sha256, out=out))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_BECOME="false")
    result = subprocess.run(["ansible-playbook", "-i", "localhost,", "-e",
                             f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    changed = out.read_text() if out.exists() else None
    return result, changed


@pytest.mark.skipif(os.geteuid() != 0, reason="the role installs as root (owner: root)")
def test_install_upgrade_rollback_and_keys(tmp_path):
    v1 = tmp_path / "concourse-1.0.0-linux-amd64.tgz"
    d1 = make_archive(v1, "1.0.0")
    (tmp_path / (v1.name + ".sha256")).write_text(f"{d1}  {v1.name}\n")
    result, changed = play(tmp_path, "1.0.0", v1)
    assert result.returncode == 0, result.stdout[-4000:]
    assert changed == "True"
    opt = tmp_path / "opt"
    assert os.readlink(opt / "current") == "1.0.0"
    assert subprocess.run([opt / "current" / "bin" / "concourse"], capture_output=True,
                          text=True).stdout == "1.0.0\n"
    assert (opt / "1.0.0" / "fly-assets" / "fly-linux-amd64.tgz").exists()
    assert (opt / "1.0.0" / "resource-types" / "mock" / "resource_metadata.json").exists()

    keys = tmp_path / "secrets" / "concourse"
    first = {name: (keys / name).read_bytes() for name in ("session_signing_key", "tsa_host_key")}
    assert first["session_signing_key"].startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert (keys / "tsa_host_key.pub").read_text().startswith("ssh-rsa ")
    assert oct((keys / "tsa_host_key").stat().st_mode & 0o777) == "0o600"

    # A second run changes nothing, and the keys are the same.
    result, changed = play(tmp_path, "1.0.0", v1)
    assert result.returncode == 0, result.stdout[-4000:]
    assert changed == "False"
    assert "changed=0" in result.stdout
    assert {name: (keys / name).read_bytes() for name in first} == first

    # An upgrade is a new directory and a link change; a rollback moves the link back.
    v2 = tmp_path / "concourse-2.0.0-linux-amd64.tgz"
    d2 = make_archive(v2, "2.0.0")
    result, changed = play(tmp_path, "2.0.0", v2, sha256=d2)
    assert result.returncode == 0, result.stdout[-4000:]
    assert changed == "True" and os.readlink(opt / "current") == "2.0.0"
    result, changed = play(tmp_path, "1.0.0", v1)
    assert result.returncode == 0, result.stdout[-4000:]
    assert changed == "True" and os.readlink(opt / "current") == "1.0.0"
    assert (opt / "2.0.0" / "bin" / "concourse").exists()


def test_tampered_archive_is_refused(tmp_path):
    v1 = tmp_path / "concourse-1.0.0-linux-amd64.tgz"
    make_archive(v1, "1.0.0")
    result, _ = play(tmp_path, "1.0.0", v1, sha256="0" * 64)
    assert result.returncode != 0
    assert "expected " + "0" * 64 in result.stdout
    assert not (tmp_path / "opt").exists()


def test_archive_without_checksum_is_refused(tmp_path):
    v1 = tmp_path / "concourse-1.0.0-linux-amd64.tgz"
    make_archive(v1, "1.0.0")
    result, _ = play(tmp_path, "1.0.0", v1)
    assert result.returncode != 0
    assert "has no SHA-256 to check it against" in result.stdout


def test_download_without_pinned_checksum_names_the_fix(tmp_path):
    result, _ = play(tmp_path, "1.0.0", "")
    assert result.returncode != 0
    assert "concourse_release_checksums has no SHA-256 for concourse-1.0.0-linux-" in result.stdout
