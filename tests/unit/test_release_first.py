"""site.yml checks every upstream release before any host is changed (issue 22).

The release play used to come 13th of 19: a missing or wrong checksum
stopped the run after the base, database and log tiers had changed the
servers. Here the lab inventory runs with a local connection (only the
controller's facts are read), in check mode, against a stand-in release site
on loopback whose archive does not match the pinned checksum: the run must
stop in the release play, and no later play may start.
"""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import LOOPBACK, ROOT, serving

pytestmark = LOOPBACK  # a stand-in release site on loopback

ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
           LABKIT_LAB="unit-lab")
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]


@pytest.fixture
def release_site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / f"concourse-9.9.9-linux-{ARCH}.tgz").write_bytes(b"not the archive that was pinned")
    with serving(root) as base:
        yield f"{base}/concourse-9.9.9-linux-{{arch}}.tgz"


def site(tmp_path, extra: dict):
    return subprocess.run(
        ["ansible-playbook", "-i", "inventories/lab/hosts.yml", "--check", "-e", "ansible_connection=local",
         "-e", json.dumps(dict(extra, release_artifact_cache_dir=str(tmp_path / "cache"))), "site.yml"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def plays_started(output: str) -> list[str]:
    return [line.split("[", 1)[1].rsplit("]", 1)[0] for line in output.splitlines() if line.startswith("PLAY [")]


def test_a_wrong_release_checksum_stops_the_run_before_any_host_is_changed(tmp_path, release_site):
    pinned = "sha1:" + hashlib.sha1(b"the archive that was pinned").hexdigest()
    result = site(tmp_path, {"concourse_release_version": "9.9.9", "concourse_release_archive": "",
                             "concourse_release_url": release_site,
                             "concourse_release_checksums": {ARCH: pinned}})
    assert result.returncode != 0
    assert plays_started(result.stdout) == ["Check the inventory", "Stage the Concourse release"], result.stdout[-4000:]
    assert "Download the release, checksum verified" in result.stdout
    assert f"did not match {pinned.split(':')[1]}" in " ".join(result.stdout.split())
    assert not (tmp_path / "cache" / "concourse" / "9.9.9" / f"linux-{ARCH}" / f"concourse-9.9.9-linux-{ARCH}.tgz").exists()


def test_site_yml_stages_every_release_first():
    listed = subprocess.run(["ansible-playbook", "-i", "inventories/example", "--list-tasks", "site.yml"],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, check=True).stdout
    plays = [line.split(": ", 1)[1].split("\t")[0] for line in listed.splitlines() if line.strip().startswith("play #")]
    assert plays[:4] == ["Check the inventory", "Stage the Concourse release", "Stage the log store's release",
                         "Stage the log agent's release"], plays
    assert plays[4:6] == ["Check the inventory", "Prepare every host"], plays
