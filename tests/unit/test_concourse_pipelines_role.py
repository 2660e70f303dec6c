"""concourse_pipelines refuses bad input before it touches anything, naming the variable.

What needs a running Concourse (fly's download, the login through the proxy,
set-pipeline, unpause, prune, idempotence) runs in tests/e2e/test_pipelines.py
against a real release; here only the role's argument specs and preflight
run, for real, with ansible-playbook on localhost.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

GOOD = {
    "concourse_pipelines_url": "https://ci.example.internal",
    "concourse_pipelines_username": "ops",
    "concourse_pipelines_password": "a-long-password-from-vault",
    "concourse_pipelines_list": [
        {"name": "indextts2", "file": "pipelines/indextts2.yml", "vars_files": ["pipelines/indextts2.vars.yml"],
         "vars": {"kit_git_uri": "https://git.example.internal/kit.git"}},
    ],
}


def preflight(tmp_path, *args, **overrides):
    variables = dict(GOOD, **overrides)
    (tmp_path / "vars.json").write_text(json.dumps({k: v for k, v in variables.items() if v is not None}))
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: true\n  gather_subset: [min]\n"
        "  roles: [concourse_pipelines]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    return subprocess.run(["ansible-playbook", "-i", "localhost,", str(tmp_path / "play.yml"),
                           "-e", f"@{tmp_path / 'vars.json'}",
                           "-e", f"ansible_python_interpreter={sys.executable}", "--tags", "concourse_pipelines_preflight",
                           *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def test_good_input_passes_preflight(tmp_path):
    result = preflight(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout


def test_nothing_listed_needs_no_url_or_user(tmp_path):
    result = preflight(tmp_path, concourse_pipelines_url=None, concourse_pipelines_username=None,
                       concourse_pipelines_password=None, concourse_pipelines_list=None)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overrides, message", [
    ({"concourse_pipelines_password": None}, "concourse_pipelines_password"),
    ({"concourse_pipelines_url": "https://ci.example.internal/concourse"}, "must be a URL without a path"),
    ({"concourse_pipelines_list": [{"name": "IndexTTS", "file": "pipelines/indextts2.yml"}]},
     "a pipeline name starts with a lower-case"),
    ({"concourse_pipelines_list": [{"name": "a", "file": "pipelines/indextts2.yml"},
                                   {"name": "a", "file": "pipelines/indextts2.yml", "team": "main"}]},
     "names a pipeline twice in one team"),
    ({"concourse_pipelines_list": [{"name": "a", "file": "pipelines/absent.yml"}]},
     "pipelines/absent.yml"),
    ({"concourse_pipelines_list": [{"name": "a", "file": "pipelines/indextts2.yml", "unpaused": "maybe"}]},
     "unpaused"),
], ids=["no-password", "url-with-path", "bad-name", "duplicate", "missing-file", "bad-bool"])
def test_bad_input_fails_naming_the_cause(tmp_path, overrides, message):
    result = preflight(tmp_path, **overrides)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert "a-long-password-from-vault" not in result.stdout + result.stderr


SECRET = {"notify_webhook_url": "https://hooks.example.internal/hooks/a-secret-token-0123"}


@pytest.mark.parametrize("entries, message", [
    ([{"name": "IndexTTS", "file": "pipelines/indextts2.yml", "secret_vars": SECRET}],
     "a pipeline name starts with a lower-case"),
    ([{"name": "a", "file": "pipelines/indextts2.yml", "team": "no team", "secret_vars": SECRET}],
     "must be a plain name"),
    ([{"name": "a", "file": "pipelines/indextts2.yml", "secret_vars": SECRET},
      {"name": "a", "file": "pipelines/indextts2.yml", "secret_vars": SECRET}],
     "names a pipeline twice in one team"),
    ([{"name": "a", "file": "pipelines/absent.yml", "secret_vars": SECRET}], "pipelines/absent.yml"),
    ([{"file": "pipelines/indextts2.yml", "secret_vars": SECRET}], "name"),
], ids=["bad-name", "bad-team", "duplicate", "missing-file", "no-name"])
def test_a_failing_entry_never_prints_its_secret_vars(tmp_path, entries, message):
    """Whatever fails in the preflight, at -vv, an entry's secret_vars stay unprinted
    (a failed loop item is printed whole: the name check once printed them)."""
    result = preflight(tmp_path, "-vv", concourse_pipelines_list=entries)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr, result.stdout[-3000:]
    output = result.stdout + result.stderr
    assert "a-secret-token-0123" not in output and "a-long-password-from-vault" not in output
