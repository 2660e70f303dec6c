"""Bad input is refused before anything changes, and the refusal names the variable.

Every role runs for real against this machine, once per role, with only its
preflight tag (argument_specs validation always runs) and in check mode. Each
case is an inventory host of its own (a local connection) holding one bad
value; a `good` host beside the cases holds the role's valid baseline and must
pass the whole preflight, so a case fails because of its value and nothing
else. For each case the test asserts: the host failed, it failed in the
argument_specs validation or in tasks/preflight.yml (no later task ran for it),
no task reported a change on it, and the failure message names the variable.

Test doubles (tests/unit/standins): `kit_test_facts` sets facts the way a
fact-gathering module would, so that an unsupported operating system can be
shown; `bin/systemctl` and `bin/ss` answer concourse_worker's host probes as a
host without a system containerd would (this machine has no systemd, and its
Docker engine holds containerd's socket); `release.tgz` is a stand-in archive
whose only use is its checksum. A release archive whose checksum does not
match is a concourse_release (and concourse_web) case.

The inventory-level refusals (playbooks/inventory-check.yml, run through
site.yml so that no host is contacted) are further below.
"""
import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
import yaml

from conftest import ROOT, STANDINS

BASELINE = {
    "common": {},
    "loki": {"loki_listen_address": "127.0.0.1"},
    "postgresql": {"postgresql_concourse_password": "a-test-password-of-32-characters",
                   "postgresql_client_addresses": ["127.0.0.1/32"]},
    "nginx_proxy": {"nginx_proxy_users": [{"name": "admin", "password": "a-long-test-password"}]},
    "cache_hub": {},
    "nvidia_container_toolkit": {"nvidia_container_toolkit_require_gpu": False},
    # @TMP@ is the run's directory; RELEASE the stand-in archive written there.
    "concourse_release": {"concourse_release_archive": "@TMP@/release.tgz",
                          "concourse_release_archive_sha256": "@RELEASE_SHA256@"},
    "concourse_web": {"concourse_release_archive": "@TMP@/release.tgz",
                      "concourse_release_archive_sha256": "@RELEASE_SHA256@",
                      "concourse_web_local_users": [{"name": "admin", "password": "a-long-test-password"}],
                      "concourse_web_main_team_local_users": ["admin"],
                      "concourse_web_postgres_password": "a-test-password-of-32-characters",
                      "concourse_web_encryption_key": "a-test-key-of-32-characters-long"},
    "concourse_worker": {"concourse_release_archive": "@TMP@/release.tgz",
                         "concourse_release_archive_sha256": "@RELEASE_SHA256@",
                         "concourse_worker_tsa_hosts": ["10.0.0.2:2222"], "concourse_worker_dns_servers": ["10.0.0.1"],
                         # A non-GPU worker in a play that also runs cache_hub on its GPU
                         # workers sees that role's defaults: it loads no hooks, so it passes.
                         "cache_hub_hooks_dir": "/etc/concourse/oci-hooks.d"},
}

# Extra inventory groups per role (host names are filled in).
GROUPS = {"postgresql": ["concourse_web"], "concourse_web": ["postgresql"]}

# (case id, host variables, the name the message must contain, a fragment of the message or None)
CASES = {
    "common": [
        ("unsupported-os", {"fake_facts": {"distribution": "Fedora", "distribution_major_version": "40",
                                           "distribution_version": "40"}}, "Fedora 40", "is not supported"),
        ("old-debian", {"fake_facts": {"distribution": "Debian", "distribution_major_version": "11",
                                       "distribution_version": "11.9"}}, "Debian 11.9", "is not supported"),
        ("timezone", {"common_timezone": "Mars Standard Time!"}, "common_timezone", "IANA zone name"),
        ("journald-size", {"common_journald_system_max_use": "lots"}, "common_journald_system_max_use", "size"),
        ("journald-span", {"common_journald_max_retention": "forever"}, "common_journald_max_retention",
         "time span"),
        ("ntp-missing", {"common_ntp_servers": []}, "common_ntp_servers", "is empty"),
        ("timesync-type", {"common_timesync_enabled": "perhaps"}, "common_timesync_enabled", None),
        ("storage-choice", {"common_journald_storage": "cloud"}, "common_journald_storage", None),
        ("burst-type", {"common_journald_rate_limit_burst": "many"}, "common_journald_rate_limit_burst", None),
        ("packages-type", {"common_packages": {"curl": True}}, "common_packages", None),
    ],
    "loki": [
        ("wildcard", {"loki_listen_address": "0.0.0.0"}, "loki_listen_address", "not on every interface"),
        ("port-range", {"loki_http_port": 70000}, "loki_http_port", "between 1 and 65535"),
        ("port-type", {"loki_grpc_port": "grpc"}, "loki_grpc_port", None),
        ("retention", {"loki_retention_period": "a month"}, "loki_retention_period", "duration"),
        ("relative-dir", {"loki_data_dir": "var/lib/loki"}, "loki_data_dir", "absolute path"),
        ("log-level", {"loki_log_level": "chatty"}, "loki_log_level", None),
        ("checksums-type", {"loki_checksums": ["abc"]}, "loki_checksums", None),
    ],
    "postgresql": [
        ("version", {"postgresql_version": "fifteen"}, "postgresql_version", "major version"),
        ("port", {"postgresql_port": 0}, "postgresql_port", "between 1 and 65535"),
        ("database-name", {"postgresql_concourse_database": "Concourse DB"}, "postgresql_concourse_database",
         None),
        ("user-name", {"postgresql_concourse_user": "concourse;drop"}, "postgresql_concourse_user", None),
        ("short-password", {"postgresql_concourse_password": "short"}, "postgresql_concourse_password",
         "shorter than 16"),
        ("client-cidr", {"postgresql_client_addresses": ["10.0.0.5"]}, "postgresql_client_addresses",
         "CIDR"),
        ("unknown-os", {"fake_facts": {"distribution": "Fedora", "distribution_major_version": "40"}},
         "postgresql_version", "no default PostgreSQL version"),
        ("settings-type", {"postgresql_settings": ["max_connections", 100]}, "postgresql_settings", None),
        ("backup-schedule", {"postgresql_backup_schedule": "every tuesday-ish"}, "postgresql_backup_schedule",
         "not a systemd calendar expression"),
        ("backup-keep", {"postgresql_backup_keep": 0}, "postgresql_backup_keep", "must be 1 or more"),
    ],
    "nginx_proxy": [
        ("no-users", {"nginx_proxy_users": []}, "nginx_proxy_users", "is empty"),
        ("user-without-password", {"nginx_proxy_users": [{"name": "alice"}]}, "alice", "password"),
        ("short-password", {"nginx_proxy_users": [{"name": "bob", "password": "short"}]}, "bob",
         "12 characters"),
        ("bad-hash", {"nginx_proxy_users": [{"name": "carol", "password_hash": "$1$md5$notbcrypt"}]}, "carol",
         "bcrypt"),
        ("user-without-name", {"nginx_proxy_users": [{"password": "a-long-test-password"}]}, "name", None),
        ("key-without-cert", {"nginx_proxy_tls_key": "-----BEGIN PRIVATE KEY-----"},
         "nginx_proxy_tls_certificate", "or neither"),
        ("same-ports", {"nginx_proxy_http_port": 443}, "nginx_proxy ports", "distinct"),
        ("upstream", {"nginx_proxy_upstream": "127.0.0.1:8080/x"}, "127.0.0.1:8080/x", "upstream URL"),
        ("port-type", {"nginx_proxy_https_port": "https"}, "nginx_proxy_https_port", None),
    ],
    "cache_hub": [
        ("relative-path", {"cache_hub_path": "srv/cache_hub"}, "cache_hub_path", "absolute path"),
        ("root-path", {"cache_hub_path": "/"}, "cache_hub_path", "other than /"),
        ("dotted-path", {"cache_hub_path": "/srv/../cache_hub"}, "cache_hub_path", "plain absolute path"),
        ("target-in-proc", {"cache_hub_default_target": "/proc/cache"}, "cache_hub_default_target", "/proc"),
        ("env-name", {"cache_hub_env": "cache-hub"}, "cache_hub_env", "environment variable name"),
        ("mode", {"cache_hub_mode": "777"}, "cache_hub_mode", "octal mode"),
        ("device", {"cache_hub_device": "sdb1"}, "cache_hub_device", "/dev path"),
    ],
    "nvidia_container_toolkit": [
        ("no-driver", {"nvidia_container_toolkit_require_gpu": True,
                       "_nvidia_container_toolkit_smi": "/nonexistent/nvidia-smi"},
         "nvidia_container_toolkit_require_gpu", "the NVIDIA driver is not installed"),
        ("version", {"nvidia_container_toolkit_version": "latest"}, "nvidia_container_toolkit_version",
         "package version"),
        ("split-packages", {"nvidia_container_toolkit_packages": ["nvidia-container-toolkit"]},
         "nvidia_container_toolkit_packages", "must be exactly"),
        ("relative-hooks-dir", {"nvidia_container_toolkit_hooks_dir": "oci-hooks.d"},
         "nvidia_container_toolkit_hooks_dir", "absolute path"),
        ("hook-file", {"nvidia_container_toolkit_hook_file": "nvidia.yaml"}, "nvidia_container_toolkit_hook_file",
         ".json"),
        ("require-type", {"nvidia_container_toolkit_require_gpu": "perhaps"},
         "nvidia_container_toolkit_require_gpu", None),
    ],
    "concourse_release": [
        ("checksum-mismatch", {"concourse_release_archive_sha256": "0" * 64}, "concourse_release_archive",
         "expected sha256:" + "0" * 64),
        ("archive-missing", {"concourse_release_archive": "@TMP@/no-such-release.tgz"}, "concourse_release_archive",
         "does not exist on the controller"),
        ("no-way-to-check", {"concourse_release_archive": "", "concourse_release_checksums": {},
                             "concourse_release_checksum_url": ""},
         "concourse_release_checksums", "has nothing for"),
        ("malformed-pin", {"concourse_release_archive": "", "concourse_release_checksums": {"amd64": "sha1:xyz", "arm64": "sha1:xyz"}},
         "concourse_release_checksums.", "is not <algorithm>:<hex>"),
        ("version", {"concourse_release_version": "latest"}, "concourse_release_version", "such as 8.2.5"),
        ("install-dir", {"concourse_release_install_dir": "opt/concourse"}, "concourse_release_install_dir",
         "absolute path"),
    ],
    "concourse_web": [
        ("bind-ip", {"concourse_web_bind_ip": "0.0.0.0"}, "concourse_web_bind_ip", "not a loopback address"),
        ("tsa-wildcard", {"concourse_web_tsa_bind_ip": "0.0.0.0"}, "concourse_web_tsa_bind_ip",
         "not on every interface"),
        ("same-ports", {"concourse_web_tsa_bind_port": 8080}, "concourse_web_tsa_bind_port", "distinct"),
        ("external-url", {"concourse_web_external_url": "http://ci.example/"}, "concourse_web_external_url",
         "https URL"),
        ("no-users", {"concourse_web_local_users": [], "concourse_web_main_team_local_users": []},
         "concourse_web_local_users", "at least one user"),
        ("user-without-password", {"concourse_web_local_users": [{"name": "alice"}],
                                   "concourse_web_main_team_local_users": ["alice"]}, "alice", "password"),
        ("team-member-unknown", {"concourse_web_main_team_local_users": ["mallory"]}, "mallory",
         "are not local users"),
        ("short-db-password", {"concourse_web_postgres_password": "short"}, "concourse_web_postgres_password",
         "shorter than 16"),
        ("env-name", {"concourse_web_env": {"LOG_LEVEL": "debug"}}, "concourse_web_env", "CONCOURSE_*"),
        ("release-checksum", {"concourse_release_archive_sha256": "f" * 64}, "concourse_release_archive",
         "expected sha256:" + "f" * 64),
    ],
    "concourse_worker": [
        ("cache-hub-in-work-dir", {"concourse_worker_work_dir": "/var/lib/concourse-worker",
                                   "concourse_worker_cache_hub_path": "/var/lib/concourse-worker/cache_hub"},
         "concourse_worker_work_dir", "overlap"),
        ("work-dir-in-cache-hub", {"concourse_worker_work_dir": "/srv/cache_hub/work"},
         "concourse_worker_work_dir", "overlap"),
        ("relative-work-dir", {"concourse_worker_work_dir": "var/lib/worker"}, "concourse_worker_work_dir",
         "absolute path"),
        ("name-with-comma", {"concourse_worker_name": "gpu,1"}, "concourse_worker_name", "plain words"),
        ("tsa-host", {"concourse_worker_tsa_hosts": ["web"]}, "TSA hosts", "host:port"),
        ("hooks-dir-mismatch", {"cache_hub_hooks_dir": "/etc/other-hooks",
                                "concourse_worker_oci_hooks_dir": "/etc/concourse/oci-hooks.d"},
         "cache_hub_hooks_dir", "would never load that hook"),
        ("extra-env", {"concourse_worker_env": {"GARDEN_LOG": "1"}}, "concourse_worker_env",
         "CONCOURSE_*"),
        ("state", {"concourse_worker_state": "gone"}, "concourse_worker_state", None),
    ],
}

PLAY = """
- name: Preflight of {role}
  hosts: {role}_cases
  gather_facts: false
  pre_tasks:
    - name: Gather this machine's facts once for every case
      ansible.builtin.setup:
        gather_subset: [min, network]
      run_once: true
      tags: [always]
    - name: Fake the facts a case asks for
      kit_test_facts:
        facts: "{{{{ fake_facts | default({{}}) }}}}"
      tags: [always]
  roles:
    - role: {role}
"""


def write_release(tmp_path):
    """A stand-in release archive (it is not Concourse; the preflight only checks its checksum); its SHA-256."""
    with tarfile.open(tmp_path / "release.tgz", "w:gz") as tar:
        data = b"#!/bin/sh\necho stand-in\n"
        member = tarfile.TarInfo("concourse/bin/concourse")
        member.size, member.mode = len(data), 0o755
        tar.addfile(member, io.BytesIO(data))
    return hashlib.sha256((tmp_path / "release.tgz").read_bytes()).hexdigest()


def ansible_env(tmp_path):
    """ansible-playbook with a JSON report, no fact cache and this venv's tools."""
    # An empty configuration: the kit's enables profile_tasks (it would write into the JSON) and a fact cache.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    return dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_STDOUT_CALLBACK="json",
                ANSIBLE_FORKS="10", ANSIBLE_CACHE_PLUGIN="memory",
                ANSIBLE_ACTION_PLUGINS=os.path.join(STANDINS, "action_plugins"),
                PATH=os.path.join(STANDINS, "bin") + ":" + os.path.dirname(sys.executable) + ":"
                + os.environ.get("PATH", "/usr/bin:/bin"))


def run_roles(tmp_path, roles):
    """One ansible-playbook run: a play per role, a host per case. Returns {host: [(task, path, result)]}."""
    hosts = {}
    for role in roles:
        members = {"good": dict(BASELINE[role])}
        for case_id, values, _, _ in CASES[role]:
            members[case_id] = dict(BASELINE[role], **values)
        group = {f"{role}--{name}": values for name, values in members.items()}
        hosts[f"{role}_cases"] = {"hosts": group}
        for extra in GROUPS.get(role, []):
            hosts.setdefault(extra, {"hosts": {}})["hosts"].update({name: None for name in group})
    inventory = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                  "kit_secrets_dir": str(tmp_path / "secrets")},
                         "children": hosts}}
    release = write_release(tmp_path)
    text = yaml.safe_dump(inventory).replace("@TMP@", str(tmp_path)).replace("@RELEASE_SHA256@", release)
    (tmp_path / "hosts.yml").write_text(text)
    (tmp_path / "play.yml").write_text("".join(PLAY.format(role=role) for role in roles))
    env = ansible_env(tmp_path)
    tags = ",".join(f"{role}_preflight" for role in roles)
    result = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), "--check", "--tags", tags,
                             str(tmp_path / "play.yml")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"ansible-playbook gave no JSON report:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    per_host = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, outcome in task["hosts"].items():
                per_host.setdefault(host, []).append((task["task"]["name"], task["task"]["path"], outcome))
    return per_host, report["stats"]


def messages(outcome):
    """The failure messages of one task result, loop items included."""
    found = [str(outcome.get("msg", ""))]
    found += [str(item.get("msg", "")) for item in outcome.get("results", []) if item.get("failed")]
    return "\n".join(found)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return run_roles(tmp_path_factory.mktemp("bad-input"), list(CASES))


def refusal(outcome, host):
    """The task that refused the host; asserts it was a preflight one and that nothing changed before it."""
    per_host, stats = outcome
    assert host in stats, f"{host} never ran"
    tasks = per_host[host]
    failed = [(name, path, result) for name, path, result in tasks if result.get("failed")]
    assert failed, f"{host} was not refused; it ran {[name for name, _, _ in tasks]}"
    name, path, result = failed[0]
    assert "Validating arguments against arg spec" in name or path.split(":")[0].endswith("/tasks/preflight.yml"), \
        f"{host} was refused by {name} ({path}), not by the argument specs or the preflight"
    assert stats[host]["changed"] == 0 and not any(r.get("changed") for _, _, r in tasks), f"{host} changed something"
    return messages(result)


@pytest.mark.parametrize("role", list(CASES))
def test_the_baseline_passes_the_preflight(outcome, role):
    per_host, stats = outcome
    host = f"{role}--good"
    failures = [(name, messages(r)) for name, _, r in per_host.get(host, []) if r.get("failed")]
    assert stats.get(host, {}).get("failures", 1) == 0 and not failures, failures
    assert any(path.split(":")[0].endswith(f"roles/{role}/tasks/preflight.yml") for _, path, _ in per_host[host]), \
        f"{role}'s preflight did not run"


@pytest.mark.parametrize("role,case_id,values,name,fragment",
                         [(role, *case) for role, cases in CASES.items() for case in cases],
                         ids=[f"{role}-{case[0]}" for role, cases in CASES.items() for case in cases])
def test_bad_input_is_refused_naming_the_variable(outcome, role, case_id, values, name, fragment):
    text = refusal(outcome, f"{role}--{case_id}")
    assert name in text, f"the refusal does not name {name}:\n{text}"
    if fragment:
        assert fragment in text, f"the refusal does not say '{fragment}':\n{text}"


# ---- The inventory: playbooks/inventory-check.yml, imported first by every tier ----

GOOD_INVENTORY = {
    "concourse_web": {"hosts": {"web": None}},
    "postgresql": {"hosts": {"web": None}},
    "loki": {"hosts": {"web": None}},
    "log_store": {"hosts": {"web": None}},
    "concourse_workers": {"hosts": {"worker-2": None}, "children": {"gpu_workers": {"hosts": {"gpu-worker-1": None}}}},
}

INVENTORY_CASES = [
    ("web-node-in-workers",
     {"concourse_workers": {"hosts": {"worker-2": None, "web": None},
                            "children": {"gpu_workers": {"hosts": {"gpu-worker-1": None}}}}},
     "are both web node and worker"),
    ("two-workers-one-name",
     {"concourse_workers": {"hosts": {"worker-2": {"concourse_worker_name": "gpu-worker-1"}},
                            "children": {"gpu_workers": {"hosts": {"gpu-worker-1": None}}}}},
     "two workers share a name"),
    ("gpu-worker-not-a-worker",
     {"concourse_workers": {"hosts": {"worker-2": None}}, "gpu_workers": {"hosts": {"gpu-worker-1": None}}},
     "are in gpu_workers but not in concourse_workers"),
    ("no-database-group", {"postgresql": {"hosts": {}}}, "inventory group 'postgresql' is missing or empty"),
    ("no-secrets-dir", {"_no_secrets": True}, "kit_secrets_dir is not set"),
]


def write_inventory(path, changes):
    groups = dict(GOOD_INVENTORY)
    no_secrets = changes.pop("_no_secrets", False) if changes else False
    groups.update(changes or {})
    all_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    if not no_secrets:
        all_vars["kit_secrets_dir"] = str(path.parent / "secrets")
    path.write_text(yaml.safe_dump({"all": {"vars": all_vars, "children": groups}}))


def run_playbook(tmp_path, playbook, changes):
    write_inventory(tmp_path / "hosts.yml", dict(changes) if changes else None)
    result = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), "--check",
                             os.path.join(ROOT, playbook)], cwd=tmp_path, env=ansible_env(tmp_path), capture_output=True, text=True,
                            timeout=300)
    return result, json.loads(result.stdout)


@pytest.mark.parametrize("case_id,changes,fragment", INVENTORY_CASES, ids=[c[0] for c in INVENTORY_CASES])
def test_a_bad_inventory_is_refused_before_any_host_is_touched(tmp_path, case_id, changes, fragment):
    """The first case runs site.yml itself (check mode): the check on the controller stops it, no host is contacted.

    Every tier playbook imports the same check first; the other cases run it alone, which is quicker.
    """
    playbook = "site.yml" if case_id == INVENTORY_CASES[0][0] else "playbooks/inventory-check.yml"
    result, report = run_playbook(tmp_path, playbook, changes)
    assert result.returncode == 2, result.stdout[-2000:]
    plays = [play["play"]["name"] for play in report["plays"]]
    assert plays == ["Check the inventory"], f"the run went on past the inventory check: {plays}"
    assert all(task["task"]["name"].startswith(("Assert", "Check")) for task in report["plays"][0]["tasks"])
    text = "\n".join(messages(outcome) for play in report["plays"] for task in play["tasks"]
                     for outcome in task["hosts"].values() if outcome.get("failed"))
    assert fragment in text, text


def test_the_good_inventory_passes_the_check(tmp_path):
    result, report = run_playbook(tmp_path, "playbooks/inventory-check.yml", None)
    assert result.returncode == 0 and not any(s["failures"] for s in report["stats"].values()), result.stdout[-2000:]


def test_the_inventory_check_runs_under_limit(tmp_path):
    """--limit must not leave the check out (a play on the implicit localhost would be)."""
    write_inventory(tmp_path / "hosts.yml", {"concourse_workers": {
        "hosts": {"worker-2": None, "web": None}, "children": {"gpu_workers": {"hosts": {"gpu-worker-1": None}}}}})
    result = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), "--check", "--limit", "worker-2",
                             os.path.join(ROOT, "playbooks", "inventory-check.yml")], cwd=tmp_path,
                            env=ansible_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "are both web node and worker" in result.stdout, result.stdout[-2000:]


OPERATOR_PLAYBOOKS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))
                            if not p.endswith("/inventory-check.yml"))


@pytest.mark.parametrize("playbook", OPERATOR_PLAYBOOKS)
def test_every_playbook_an_operator_runs_checks_the_inventory_first(tmp_path, playbook):
    """A tier, a backup, an upgrade or a re-provisioning: a bad inventory stops each at the check."""
    _, changes, _ = INVENTORY_CASES[0]
    result, report = run_playbook(tmp_path, playbook, changes)
    assert result.returncode == 2, result.stdout[-2000:]
    assert [play["play"]["name"] for play in report["plays"]] == ["Check the inventory"], result.stdout[-2000:]
