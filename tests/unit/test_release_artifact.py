"""roles/release_artifact on the controller: download, verify, unpack.

A stand-in release site on loopback serves a zip; the role runs against
localhost exactly as it does for a real play.
"""
import hashlib
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import LOOPBACK, ROOT, serving

pytestmark = LOOPBACK  # a release site on loopback


PLAY = """
- hosts: localhost
  connection: local
  gather_facts: true
  tasks:
    - ansible.builtin.include_role:
        name: release_artifact
      vars:
        release_artifact_name: demo
        release_artifact_version: "1.0.0"
        release_artifact_asset: demo-linux-{arch}.zip
        release_artifact_member: "%(member)s"
        release_artifact_url: "%(url)s"
        release_artifact_checksums: %(checksums)s
        release_artifact_checksum_url: "%(checksum_url)s"
        release_artifact_local_dir: "%(local_dir)s"
        release_artifact_cache_dir: "%(cache)s"
    - ansible.builtin.copy:
        content: "{{ release_artifact_path }}"
        dest: "%(out)s"
        mode: "0644"
"""

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    with zipfile.ZipFile(root / f"demo-linux-{ARCH}.zip", "w") as archive:
        archive.writestr(f"demo-linux-{ARCH}", b"#!/bin/sh\necho demo 1.0.0\n")
    digest = hashlib.sha256((root / f"demo-linux-{ARCH}.zip").read_bytes()).hexdigest()
    with serving(root) as base:
        yield root, f"{base}/demo-linux-{{arch}}.zip", digest


def play(tmp_path, url="", checksums="{}", local_dir="", member="demo-linux-{arch}", checksum_url=""):
    out = tmp_path / "staged"
    (tmp_path / "play.yml").write_text(PLAY % dict(url=url, checksums=checksums, local_dir=local_dir, member=member,
                                                   cache=tmp_path / "cache", out=out, checksum_url=checksum_url))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run(["ansible-playbook", "-i", "localhost,", "-e",
                             f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    return result, out


def test_download_with_pinned_checksum(tmp_path, site):
    _, url, digest = site
    result, out = play(tmp_path, url=url, checksums="{%s: %s}" % (ARCH, digest))
    assert result.returncode == 0, result.stdout[-3000:]
    staged = out.read_text()
    assert staged.startswith(str(tmp_path / "cache" / "demo" / "1.0.0" / f"linux-{ARCH}"))
    with open(staged, "rb") as handle:
        assert handle.read() == b"#!/bin/sh\necho demo 1.0.0\n"


def test_without_member_the_verified_asset_is_staged(tmp_path, site):
    root, url, digest = site
    result, out = play(tmp_path, url=url, checksums="{%s: %s}" % (ARCH, digest), member="")
    assert result.returncode == 0, result.stdout[-3000:]
    staged = out.read_text()
    assert staged == str(tmp_path / "cache" / "demo" / "1.0.0" / f"linux-{ARCH}" / f"demo-linux-{ARCH}.zip")
    assert hashlib.sha256(open(staged, "rb").read()).hexdigest() == digest
    assert not os.listdir(os.path.dirname(staged) + f"/unpacked-{digest[:16]}")


def test_download_with_wrong_checksum_fails(tmp_path, site):
    _, url, _ = site
    result, out = play(tmp_path, url=url, checksums="{%s: %s}" % (ARCH, "0" * 64))
    assert result.returncode != 0
    assert "checksum" in result.stdout.lower()
    assert not out.exists()


def test_missing_checksum_names_the_fix(tmp_path, site):
    _, url, _ = site
    result, _ = play(tmp_path, url=url, checksums="{}")
    assert result.returncode != 0
    assert f"no checksum for demo 1.0.0 linux-{ARCH}: pin it" in result.stdout


def test_a_pin_in_algorithm_form_is_checked(tmp_path, site):
    """Issue 22: upstream publishes a SHA-1; get_url's <algorithm>:<hex> form takes it as pinned."""
    root, url, _ = site
    sha1 = hashlib.sha1((root / f"demo-linux-{ARCH}.zip").read_bytes()).hexdigest()
    result, out = play(tmp_path, url=url, checksums="{%s: 'sha1:%s'}" % (ARCH, sha1))
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"linux-{ARCH}: pinned sha1:{sha1}" in result.stdout
    (tmp_path / "wrong").mkdir()
    result, _ = play(tmp_path / "wrong", url=url, checksums="{%s: 'sha1:%s'}" % (ARCH, "0" * 40))
    assert result.returncode != 0 and "checksum" in result.stdout.lower()


@pytest.mark.parametrize("pin", ["md5:" + "0" * 32, "sha1:" + "0" * 64, "sha256:xyz", "0" * 40])
def test_a_malformed_pin_is_named(tmp_path, site, pin):
    _, url, _ = site
    result, _ = play(tmp_path, url=url, checksums="{%s: '%s'}" % (ARCH, pin))
    assert result.returncode != 0
    assert f"checksum '{pin}' is not <algorithm>:<hex digest>" in result.stdout.replace("\n", " ")


def publish(root, text):
    (root / f"demo-linux-{ARCH}.zip.sha1").write_text(text)


def test_without_a_pin_the_published_checksum_file_is_checked(tmp_path, site):
    """Issue 22: with nothing pinned, the checksum file published beside the asset is fetched and checked."""
    root, url, digest = site
    sha1 = hashlib.sha1((root / f"demo-linux-{ARCH}.zip").read_bytes()).hexdigest()
    publish(root, f"{sha1}  demo-linux-{ARCH}.zip\n")
    result, out = play(tmp_path, url=url, checksum_url=f"sha1:{url}.sha1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert out.read_text().endswith(f"linux-{ARCH}/unpacked-{digest[:16]}/demo-linux-{ARCH}")
    said = " ".join(result.stdout.split())
    assert (f"demo 1.0.0 linux-{ARCH}: the sha1 that upstream publishes at {url.replace('{arch}', ARCH)}.sha1 "
            f"(nothing pinned); SHA-256 {digest}.") in said, said[-3000:]


def test_a_published_checksum_that_differs_is_refused(tmp_path, site):
    root, url, _ = site
    publish(root, f"{'0' * 40}  demo-linux-{ARCH}.zip\n")
    result, out = play(tmp_path, url=url, checksum_url=f"sha1:{url}.sha1")
    assert result.returncode != 0 and "checksum" in result.stdout.lower()
    assert not out.exists()
    assert not (tmp_path / "cache" / "demo" / "1.0.0" / f"linux-{ARCH}" / f"demo-linux-{ARCH}.zip").exists()


def test_a_pin_wins_over_the_published_file(tmp_path, site):
    root, url, digest = site
    publish(root, f"{'0' * 40}  demo-linux-{ARCH}.zip\n")
    result, _ = play(tmp_path, url=url, checksums="{%s: 'sha256:%s'}" % (ARCH, digest), checksum_url=f"sha1:{url}.sha1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"pinned sha256:{digest}" in result.stdout


def test_local_dir_is_verified_against_its_sums(tmp_path, site):
    """release_artifact_local_dir is given with {arch}, as the lab's inventory
    gives it: the role must expand it to find the asset."""
    root, _, digest = site
    mirror = tmp_path / "mirror" / f"linux-{ARCH}"
    mirror.mkdir(parents=True)
    (mirror / f"demo-linux-{ARCH}.zip").write_bytes((root / f"demo-linux-{ARCH}.zip").read_bytes())
    (mirror / "SHA256SUMS").write_text(f"{digest}  demo-linux-{ARCH}.zip\n")
    local_dir = str(tmp_path / "mirror" / "linux-{arch}")
    assert "{arch}" in local_dir and not os.path.exists(local_dir)
    result, out = play(tmp_path, local_dir=local_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    assert out.read_text().endswith(f"linux-{ARCH}/unpacked-{digest[:16]}/demo-linux-{ARCH}")
    # A tampered asset is refused.
    with open(mirror / f"demo-linux-{ARCH}.zip", "ab") as handle:
        handle.write(b"x")
    result, _ = play(tmp_path, local_dir=local_dir)
    assert result.returncode != 0
    assert "differs from its SHA256SUMS" in result.stdout
