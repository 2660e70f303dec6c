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

from conftest import LOOPBACK, ROOT, serving

pytestmark = LOOPBACK  # a stand-in release site on loopback

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
    concourse_release_checksums: %(pins)s
    concourse_release_url: "%(url)s"
    concourse_release_checksum_url: "%(checksum_url)s"
    release_artifact_cache_dir: "%(cache)s"
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


def play(tmp_path, version, archive, sha256="", url="", pins="{}", checksum_url=None):
    out = tmp_path / "changed"
    if out.exists():
        out.unlink()
    (tmp_path / "play.yml").write_text(PLAY % dict(
        secrets=tmp_path / "secrets", install=tmp_path / "opt", version=version,
        archive=archive, sha256=sha256, out=out, url=url or "http://127.0.0.1:9/concourse-{arch}.tgz", pins=pins,
        checksum_url="sha1:{{ concourse_release_url }}.sha1" if checksum_url is None else checksum_url,
        cache=tmp_path / "cache"))
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
    assert "expected sha256:" + "0" * 64 in result.stdout
    assert not (tmp_path / "opt").exists()


def test_archive_without_checksum_is_refused(tmp_path):
    v1 = tmp_path / "concourse-1.0.0-linux-amd64.tgz"
    make_archive(v1, "1.0.0")
    result, _ = play(tmp_path, "1.0.0", v1)
    assert result.returncode != 0
    assert "has no checksum to check it against" in result.stdout


def test_a_given_archive_is_checked_against_upstreams_sha1_beside_it(tmp_path):
    """Issue 22: an operator copies the official archive with the .sha1 that upstream publishes beside it."""
    v1 = tmp_path / "concourse-1.0.0-linux-amd64.tgz"
    make_archive(v1, "1.0.0")
    (tmp_path / (v1.name + ".sha1")).write_text("0" * 40 + f"  {v1.name}\n")
    result, _ = play(tmp_path, "1.0.0", v1)
    assert result.returncode != 0
    assert f"expected sha1:{'0' * 40}" in result.stdout
    (tmp_path / (v1.name + ".sha1")).write_text(hashlib.sha1(v1.read_bytes()).hexdigest() + f"  {v1.name}\n")
    result, _ = play(tmp_path, "1.0.0", v1)
    assert "concourse_release : Assert the given archive exists and matches its checksum" in result.stdout
    assert "has no checksum" not in result.stdout and "expected sha1" not in result.stdout, result.stdout[-3000:]


def test_download_without_a_way_to_check_it_names_the_fix(tmp_path):
    result, _ = play(tmp_path, "1.0.0", "", checksum_url="")
    assert result.returncode != 0
    assert "concourse_release_checksums has nothing for concourse-1.0.0-linux-" in result.stdout
    assert "pin the checksum" in result.stdout


def test_a_malformed_pin_is_named(tmp_path):
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    result, _ = play(tmp_path, "1.0.0", "", pins="{%s: 'sha1:%s'}" % (arch, "a" * 64))
    assert result.returncode != 0
    assert f"concourse_release_checksums.{arch} 'sha1:{'a' * 64}' is not <algorithm>:<hex>" in result.stdout


@pytest.fixture
def release_site(tmp_path):
    """A stand-in release page on loopback: the archive and the .sha1 beside it, as upstream publishes them."""
    root = tmp_path / "site"
    root.mkdir()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    archive = root / f"concourse-1.0.0-linux-{arch}.tgz"
    make_archive(archive, "1.0.0")
    (root / (archive.name + ".sha1")).write_text(hashlib.sha1(archive.read_bytes()).hexdigest() + f"  {archive.name}\n")
    with serving(root) as base:
        yield f"{base}/concourse-1.0.0-linux-{{arch}}.tgz", archive


@pytest.mark.skipif(os.geteuid() != 0, reason="the role installs as root (owner: root)")
def test_a_download_without_a_pin_is_checked_against_the_published_sha1(tmp_path, release_site):
    """Issue 22: with nothing pinned, the .sha1 published beside the archive is fetched and checked, and said."""
    url, archive = release_site
    result, changed = play(tmp_path, "1.0.0", "", url=url)
    assert result.returncode == 0, result.stdout[-4000:]
    assert changed == "True"
    said = " ".join(result.stdout.split())
    assert f"the sha1 that upstream publishes at {url.replace('{arch}', archive.name.split('-')[-1][:-4])}.sha1 (nothing pinned)" in said
    # A .sha1 that does not match refuses the archive before anything is installed.
    (archive.parent / (archive.name + ".sha1")).write_text("0" * 40 + f"  {archive.name}\n")
    other = tmp_path / "other"
    other.mkdir()
    result, _ = play(other, "1.0.0", "", url=url)
    assert result.returncode != 0
    assert not (other / "opt" / "1.0.0").exists()
