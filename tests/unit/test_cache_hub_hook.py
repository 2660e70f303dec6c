"""The cache_hub OCI hook's decisions, without a container runtime.

The real bind mount is tested with runc in molecule/cache_hub.
"""
import importlib.util
import io
import json
import os
import subprocess

import pytest

from conftest import ROOT

SPEC = importlib.util.spec_from_file_location(
    "cache_hub_hook", os.path.join(ROOT, "roles/cache_hub/files/cache_hub_hook.py"))
hook = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(hook)

SETTINGS = {"source": "/srv/cache_hub", "env": "CACHE_HUB", "default_target": "/cache_hub"}


@pytest.mark.parametrize("value, target", [
    ("1", "/cache_hub"), ("true", "/cache_hub"), ("rw", "/cache_hub"),
    ("/opt/index-tts/cache_hub", "/opt/index-tts/cache_hub"),
    ("/opt/index-tts/cache_hub/", "/opt/index-tts/cache_hub"),
])
def test_asked(value, target):
    assert hook.wanted_target({"CACHE_HUB": value}, SETTINGS) == target


@pytest.mark.parametrize("env", [{}, {"CACHE_HUB": ""}, {"CACHE_HUB": "0"}, {"CACHE_HUB": "false"},
                                 {"OTHER": "1"}])
def test_not_asked(env):
    assert hook.wanted_target(env, SETTINGS) is None


@pytest.mark.parametrize("value", ["relative/path", "/", "/a/../etc", "/proc/self", "/sys", "/dev/shm/x",
                                   "/a//b", "/a/./b"])
def test_bad_targets_are_refused(value):
    with pytest.raises(hook.Refused):
        hook.wanted_target({"CACHE_HUB": value}, SETTINGS)


@pytest.mark.parametrize("claim", [{}, {"BUILD_TEAM_NAME": "models"}, {"BUILD_TEAM_NAME": "main"},
                                   {"BUILD_TEAM_NAME": "models", "BUILD_TEAM_ID": "1"}])
def test_a_claimed_team_changes_nothing(claim):
    """The environment is the task's own: what it says about its team is not looked at."""
    assert hook.wanted_target(dict(claim, CACHE_HUB="1"), SETTINGS) == "/cache_hub"
    assert hook.wanted_target(claim, SETTINGS) is None


@pytest.mark.parametrize("team", ["models", "main", ""])
def test_a_team_list_cannot_be_satisfied_by_a_claim(team):
    """Settings with a team allow-list (an older kit) refuse every request, even
    from a task that names a listed team: nobody relies on a list that cannot hold."""
    settings = dict(SETTINGS, teams=["models"])
    with pytest.raises(hook.Refused, match="a task can claim any team"):
        hook.wanted_target({"CACHE_HUB": "1", "BUILD_TEAM_NAME": team}, settings)
    assert hook.wanted_target({"BUILD_TEAM_NAME": team}, settings) is None


def test_env_parsing_keeps_values_with_equals():
    config = {"process": {"env": ["A=b=c", "CACHE_HUB=1", "NOEQUALS"]}}
    assert hook.container_env(config) == {"A": "b=c", "CACHE_HUB": "1"}


def test_rootfs_relative_to_bundle():
    assert hook.rootfs_of({"bundle": "/b"}, {"root": {"path": "rootfs"}}) == "/b/rootfs"
    assert hook.rootfs_of({"bundle": "/b"}, {"root": {"path": "/vol/x"}}) == "/vol/x"


def test_mountpoint_is_made_inside_the_root(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    assert hook.make_mountpoint(str(root), "/opt/app/cache_hub") == str(root / "opt/app/cache_hub")
    assert (root / "opt/app/cache_hub").is_dir()
    # A second time is fine.
    hook.make_mountpoint(str(root), "/opt/app/cache_hub")


def test_symlink_in_the_image_is_refused(tmp_path):
    outside = tmp_path / "host-etc"
    outside.mkdir()
    root = tmp_path / "rootfs"
    root.mkdir()
    os.symlink(str(outside), root / "opt")
    with pytest.raises(hook.Refused, match="'opt' in the image is not a directory"):
        hook.make_mountpoint(str(root), "/opt/cache_hub")
    assert not (outside / "cache_hub").exists()


def write_bundle(tmp_path, env):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({"root": {"path": "rootfs"}, "process": {"env": env}}))
    return {"ociVersion": "1.0.2", "id": "c1", "status": "created", "pid": 4242, "bundle": str(bundle)}


def test_run_binds_in_the_containers_namespace(tmp_path):
    source = tmp_path / "cache"
    source.mkdir()
    state = write_bundle(tmp_path, ["PATH=/bin", "CACHE_HUB=1"])
    calls = []

    def runner(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    assert hook.run(state, dict(SETTINGS, source=str(source)), runner) == "/cache_hub"
    assert calls == [["nsenter", "--mount=/proc/4242/ns/mnt", "--", "mount", "--bind",
                      str(source), state["bundle"] + "/rootfs/cache_hub"]]


def test_run_does_nothing_for_other_containers(tmp_path):
    state = write_bundle(tmp_path, ["PATH=/bin"])
    assert hook.run(state, SETTINGS, runner=None) is None
    assert os.listdir(os.path.join(state["bundle"], "rootfs")) == []


def test_run_reports_a_missing_source(tmp_path):
    state = write_bundle(tmp_path, ["CACHE_HUB=1"])
    with pytest.raises(hook.Refused, match="missing on this worker"):
        hook.run(state, dict(SETTINGS, source=str(tmp_path / "nope")), runner=None)


def test_main_fails_with_a_message(tmp_path, monkeypatch, capsys):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(dict(SETTINGS, teams=["models"])))
    state = write_bundle(tmp_path, ["CACHE_HUB=1", "BUILD_TEAM_NAME=models"])
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(state)))
    assert hook.main(["hook", str(settings)]) == 1
    assert "a task can claim any team" in capsys.readouterr().err


def test_the_role_refuses_a_team_list(tmp_path):
    """cache_hub_teams would be a list a task satisfies by setting BUILD_TEAM_NAME:
    the role's preflight stops on it, saying why and what to do instead."""
    import sys
    (tmp_path / "play.yml").write_text("- hosts: all\n  gather_facts: false\n  roles: [cache_hub]\n")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_NOCOLOR="1",
               PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin")

    def preflight(*extra):
        return subprocess.run(
            ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
             "--tags", "cache_hub_preflight", *extra, str(tmp_path / "play.yml")],
            capture_output=True, text=True, env=env, timeout=300)

    refused = preflight("-e", '{"cache_hub_teams": ["models"]}')
    assert refused.returncode == 2, refused.stdout
    assert "a task can claim any team" in refused.stdout and "concourse worker --team" in refused.stdout
    assert preflight().returncode == 0
