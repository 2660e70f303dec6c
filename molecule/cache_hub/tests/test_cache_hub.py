"""The cache_hub hook in real OCI containers started by runc.

Each test makes a busybox bundle, registers the hooks exactly as the
installed hooks directory (/etc/concourse/oci-hooks.d) says, and runs it
with runc, as Concourse's containerd runtime would (molecule/shared).
"""
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from runc_bundle import run_container  # noqa: E402

HOOKS_FILE = "/etc/concourse/oci-hooks.d/50-cache-hub.json"


def test_hook_is_registered_for_concourse(host):
    hook = json.loads(host.file(HOOKS_FILE).content_string)
    assert hook["stages"] == ["prestart"]
    assert hook["hook"]["path"] == "/usr/local/libexec/concourse-gpu-kit/cache-hub-hook"
    assert host.file(hook["hook"]["path"]).mode == 0o755
    settings = json.loads(host.file(hook["hook"]["args"][1]).content_string)
    assert settings == {"source": "/srv/cache_hub", "env": "CACHE_HUB", "default_target": "/cache_hub"}


def test_cache_directory(host):
    cache = host.file("/srv/cache_hub")
    assert cache.is_directory and cache.mode == 0o777


def test_task_that_asks_reads_and_leaves_files(host):
    token = uuid.uuid4().hex
    host.run_expect([0], f"echo {token} > /srv/cache_hub/from-host")
    out = run_container(host, f"cat /cache_hub/from-host && echo {token}-task > /cache_hub/from-task",
                        env=["CACHE_HUB=1"])
    assert out.rc == 0, out.stderr
    assert token in out.stdout
    # The next build sees what this one left: it is on the worker.
    assert host.file("/srv/cache_hub/from-task").content_string == f"{token}-task\n"
    again = run_container(host, "cat /cache_hub/from-task", env=["CACHE_HUB=1"])
    assert again.rc == 0 and f"{token}-task" in again.stdout


def test_task_chooses_the_path(host):
    token = uuid.uuid4().hex
    host.run_expect([0], f"echo {token} > /srv/cache_hub/chosen")
    out = run_container(host, "cat /opt/index-tts/cache_hub/chosen", env=["CACHE_HUB=/opt/index-tts/cache_hub"])
    assert out.rc == 0 and token in out.stdout, out.stderr


def test_other_containers_see_nothing(host):
    out = run_container(host, "ls /cache_hub")
    assert out.rc != 0 and "No such file or directory" in out.stdout + out.stderr


def test_a_claimed_team_is_not_looked_at(host):
    """A task sets its own environment: naming a team gets it nothing more or less."""
    for team in ("models", "main"):
        out = run_container(host, "test -d /cache_hub && echo has-cache",
                            env=["CACHE_HUB=1", f"BUILD_TEAM_NAME={team}"])
        assert out.rc == 0 and "has-cache" in out.stdout, out.stderr
        out = run_container(host, "test -d /cache_hub || echo no-cache", env=[f"BUILD_TEAM_NAME={team}"])
        assert out.rc == 0 and "no-cache" in out.stdout, out.stderr


def test_a_team_list_refuses_even_a_listed_claim(host):
    """Settings with a team list (an older kit) stop the container, even one that
    claims a listed team, instead of seeming to protect the cache."""
    host.run_expect([0], "python3 -c \"import json; json.dump({'source': '/srv/cache_hub', 'env': 'CACHE_HUB', "
                         "'default_target': '/cache_hub', 'teams': ['models']}, open('/tmp/teams.json', 'w'))\"")
    hook = json.loads(host.file(HOOKS_FILE).content_string)["hook"]
    out = run_container(host, "echo should-not-run", env=["CACHE_HUB=1", "BUILD_TEAM_NAME=models"],
                        replaced_args={"50-cache-hub.json": [hook["args"][0], "/tmp/teams.json"]})
    assert out.rc != 0
    assert "should-not-run" not in out.stdout
    assert "a task can claim any team" in out.stderr
