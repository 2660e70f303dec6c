"""Every CONCOURSE_* variable the Concourse roles write is one the pinned version reads.

The pinned version's interface is its `--help` output (`concourse web`,
`concourse worker`: one flag a line with its `[$CONCOURSE_...]` variable),
taken, in this order, from:

1. the `concourse` binary in CONCOURSE_RELEASE_ARCHIVE, run here with a
   400-column terminal so that each flag is one line;
2. CONCOURSE_HELP_DIR, a folder holding that output as `web.help.txt` and
   `worker.help.txt` (printed the same way);
3. neither: the checks against the version are SKIPPED, in a line of their
   own (`pytest -rs`), and everything else here still runs.

Each role's environment-file templates (`roles/concourse_*/templates/*.env.j2`)
are rendered by Ansible with representative variables, and every name and
value is checked: the name must be read by that subcommand, a value must be
among the flag's choices where the help lists them, a switch must be true or
false. The parser itself is tested on every commit against a small help
text written for these tests (tests/unit/fixtures/concourse-help/).
"""
import fcntl
import glob
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import termios

import pytest
import yaml

from conftest import ROOT

RELEASE_DEFAULTS = os.path.join(ROOT, "roles", "concourse_release", "defaults", "main.yml")
with open(RELEASE_DEFAULTS, encoding="utf-8") as _handle:
    VERSION = str(yaml.safe_load(_handle)["concourse_release_version"])

# Which subcommand's flags a role's environment files feed.
SUBCOMMAND = {"concourse_web": "web", "concourse_worker": "worker"}

# Representative variables per role: every optional part of the templates
# switched on at least once. A role not named here is rendered with its
# defaults and the common values below.
COMMON = {
    "concourse_web_local_users": [
        {"name": "admin", "password": "correct-horse-battery"},
        {"name": "viewer", "password_hash": "$2b$10$CG/6FkCJ2sNsyjHpQlFVZ.xHm5NnntyKtfd09ci9B8S1gYytt3u86"}],
    "concourse_web_main_team_local_users": ["admin"],
}
VARIANTS = {
    "concourse_worker": [
        {},
        {"concourse_worker_tags": ["gpu", "big"], "concourse_worker_team": "main",
         "concourse_worker_dns_servers": ["10.0.0.53", "10.0.1.53"], "concourse_worker_dns_proxy": True,
         "concourse_worker_additional_hosts": ["10.0.0.5 registry", "10.0.0.6 git"],
         "concourse_worker_oci_hooks_dir": "/etc/concourse/oci-hooks.d",
         "concourse_worker_privileged_mode": "fuse-only", "concourse_worker_ephemeral": True,
         "concourse_worker_log_level": "debug", "concourse_worker_baggageclaim_driver": "overlay",
         "concourse_worker_env": {"CONCOURSE_CONTAINERD_MAX_CONTAINERS": "100",
                                  "CONCOURSE_CONTAINERD_ALLOWED_DEVICE": "c 10:200 rwm"}},
    ],
    "concourse_web": [
        {},
        {"concourse_web_prometheus_enabled": True, "concourse_web_cluster_name": "ci",
         "concourse_web_log_level": "debug", "concourse_web_postgres_sslmode": "verify-full",
         "concourse_web_external_url": "https://ci.example.test",
         "concourse_web_env": {"CONCOURSE_GC_INTERVAL": "1m",
                               "CONCOURSE_CONTAINER_PLACEMENT_STRATEGY": "volume-locality,fewest-build-containers",
                               "CONCOURSE_ENABLE_GLOBAL_RESOURCES": "true"}},
    ],
}

ENV_LINE = re.compile(r'^(CONCOURSE_[A-Z0-9_]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))$')


FIXTURE_HELP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "concourse-help")
SKIP_REASON = ("no Concourse interface to check against (set CONCOURSE_RELEASE_ARCHIVE, or CONCOURSE_HELP_DIR "
               "to a folder of `concourse web --help` and `concourse worker --help` output)")


def run_on_a_wide_terminal(argv):
    """stdout of argv with a 400-column terminal on its standard input.

    Concourse's flag parser wraps its help to the width of the terminal on
    file descriptor 0 (80 columns without one): at 400 each flag, its
    default and its [$VARIABLE] fit on one line.
    """
    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
        proc = subprocess.run(argv, stdin=follower, capture_output=True, text=True, timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    return proc


def help_from_archive(archive, workdir):
    """{"web": text, "worker": text} from the release archive's bin/concourse, and its version."""
    member = "concourse/bin/concourse"
    binary = os.path.join(workdir, "concourse")
    with tarfile.open(archive, "r:gz") as tar:
        try:
            source = tar.extractfile(member)
        except KeyError:
            source = None
        if source is None:
            pytest.fail(f"CONCOURSE_RELEASE_ARCHIVE={archive} has no {member}: not a Concourse release archive")
        with source, open(binary, "wb") as out:
            shutil.copyfileobj(source, out)
    os.chmod(binary, 0o755)
    version = run_on_a_wide_terminal([binary, "--version"]).stdout.strip()
    texts = {}
    for subcommand in SUBCOMMAND.values():
        proc = run_on_a_wide_terminal([binary, subcommand, "--help"])
        texts[subcommand] = proc.stdout
        assert "[$CONCOURSE_" in proc.stdout, \
            f"{binary} {subcommand} --help printed no variables (exit {proc.returncode}): {proc.stderr[-500:]}"
    return texts, version


@pytest.fixture(scope="session")
def concourse_help(tmp_path_factory):
    """The pinned version's help texts by subcommand, from where the module docstring says; else skip."""
    archive = os.environ.get("CONCOURSE_RELEASE_ARCHIVE", "")
    folder = os.environ.get("CONCOURSE_HELP_DIR", "")
    if archive:
        texts, version = help_from_archive(archive, str(tmp_path_factory.mktemp("concourse")))
        assert version == VERSION, \
            f"CONCOURSE_RELEASE_ARCHIVE={archive} is Concourse {version!r}; the kit pins {VERSION}"
        return texts
    if folder:
        texts = {}
        for subcommand in SUBCOMMAND.values():
            path = os.path.join(folder, f"{subcommand}.help.txt")
            if not os.path.isfile(path):
                pytest.fail(f"CONCOURSE_HELP_DIR={folder} has no {subcommand}.help.txt")
            with open(path, encoding="utf-8") as handle:
                texts[subcommand] = handle.read()
        return texts
    pytest.skip(SKIP_REASON)


def parse_help(text):
    """{VARIABLE: {"flag", "choices" (list or None), "switch" (bool)}} from one subcommand's --help."""
    flags = {}
    current = None
    for line in text.splitlines():
        option = re.match(r"^\s+(?:-\w, )?--([a-z0-9-]+)(=\S*)?", line)
        if option:
            argument = option.group(2) or ""
            choices = re.fullmatch(r"=\[([a-z0-9-]+(?:\|[a-z0-9-]+)+)\]", argument)
            current = {"flag": option.group(1), "switch": not argument,
                       "choices": choices.group(1).split("|") if choices else None}
        for name in re.findall(r"\[\$(CONCOURSE_[A-Z0-9_]+)\]", line):
            if current is not None:
                flags[name] = current
    return flags


def parse_env(text):
    """{NAME: value} from a rendered environment file (systemd EnvironmentFile syntax)."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = ENV_LINE.match(line)
        assert match, f"line {number} is not NAME=\"value\": {line!r}"
        name, quoted, bare = match.groups()
        assert name not in values, f"{name} is set twice"
        values[name] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return values


def problems(values, flags):
    found = []
    for name, value in sorted(values.items()):
        flag = flags.get(name)
        if flag is None:
            found.append(f"{name} is not read by this Concourse version")
        elif flag["switch"] and value not in ("true", "false"):
            found.append(f"{name} is a switch; '{value}' is not true or false")
        elif flag["choices"] and not all(part in flag["choices"] for part in value.split(",")):
            found.append(f"{name}='{value}' is not among {flag['choices']}")
    return found


def roles_with_env_templates():
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "roles", "concourse_*", "templates", "*.env.j2"))):
        role = path.split(os.sep)[-3]
        found.setdefault(role, []).append(path)
    return found


def render(tmp_path, role, templates):
    """Render the role's env templates with Ansible, once per variant; [(variant, template, text)]."""
    groups = ["concourse_web", "postgresql", "log_store", "concourse_workers", "gpu_workers"]
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {g: {"hosts": {"localhost": None}} for g in groups}}}))
    # Role defaults first, then the representative values, then the roles' private vars.
    layers = {}
    for kind in ("defaults", "vars"):
        layers[kind] = {}
        for path in sorted(glob.glob(os.path.join(ROOT, "roles", "concourse_*", kind, "main.yml"))):
            with open(path, encoding="utf-8") as handle:
                layers[kind].update(yaml.safe_load(handle) or {})
    plays, outputs = [], []
    for index, variant in enumerate(VARIANTS.get(role, [{}])):
        tasks = []
        for template in templates:
            out = tmp_path / f"{index}-{os.path.basename(template)}"
            outputs.append((variant, template, out))
            tasks.append({"name": f"render {os.path.basename(template)}",
                          "ansible.builtin.template": {"src": template, "dest": str(out), "mode": "0600"}})
        plays.append({"hosts": "localhost", "connection": "local", "gather_facts": index == 0,
                      "vars": {**layers["defaults"], **COMMON, **variant, **layers["vars"],
                               "kit_secrets_dir": str(tmp_path / "secrets")},
                      "tasks": tasks})
    (tmp_path / "render.yml").write_text(yaml.safe_dump(plays))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_CACHE_PLUGIN="memory")
    result = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), "-e",
                             f"ansible_python_interpreter={sys.executable}", str(tmp_path / "render.yml")],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return [(variant, template, out.read_text()) for variant, template, out in outputs]


def fixture_help(subcommand):
    with open(os.path.join(FIXTURE_HELP, f"{subcommand}.help.txt"), encoding="utf-8") as handle:
        return handle.read()


def test_the_help_is_parsed():
    flags = parse_help(fixture_help("web"))
    assert flags["CONCOURSE_LOG_LEVEL"] == {"flag": "log-level", "switch": False,
                                            "choices": ["debug", "info", "error", "fatal"]}
    assert flags["CONCOURSE_COOKIE_SECURE"]["switch"]
    assert not flags["CONCOURSE_EXTERNAL_URL"]["switch"] and flags["CONCOURSE_EXTERNAL_URL"]["choices"] is None
    # A variable printed on a line after its flag (a wrapped description).
    assert flags["CONCOURSE_MAX_CHECKS_PER_SECOND"]["flag"] == "max-checks-per-second"
    assert flags["CONCOURSE_CONTAINER_PLACEMENT_STRATEGY"]["choices"] == [
        "volume-locality", "random", "fewest-build-containers"]
    assert "CONCOURSE_NAME" not in flags and parse_help(fixture_help("worker"))["CONCOURSE_NAME"]


def test_the_check_catches_what_the_version_does_not_read():
    flags = parse_help(fixture_help("web"))
    bad = parse_env('CONCOURSE_BIND_PORT="8080"\nCONCOURSE_NO_SUCH_THING="1"\n'
                    'CONCOURSE_LOG_LEVEL="loud"\nCONCOURSE_COOKIE_SECURE="yes"\n'
                    'CONCOURSE_CONTAINER_PLACEMENT_STRATEGY="random,nearest"\n')
    assert problems(bad, flags) == [
        "CONCOURSE_CONTAINER_PLACEMENT_STRATEGY='random,nearest' is not among "
        "['volume-locality', 'random', 'fewest-build-containers']",
        "CONCOURSE_COOKIE_SECURE is a switch; 'yes' is not true or false",
        "CONCOURSE_LOG_LEVEL='loud' is not among ['debug', 'info', 'error', 'fatal']",
        "CONCOURSE_NO_SUCH_THING is not read by this Concourse version"]
    good = parse_env('CONCOURSE_BIND_PORT="8080"\nCONCOURSE_COOKIE_SECURE="true"\n'
                     'CONCOURSE_CONTAINER_PLACEMENT_STRATEGY="random,volume-locality"\n')
    assert problems(good, flags) == []


STANDIN_CONCOURSE = """#!/bin/sh
# A test double of the release's bin/concourse: it prints the parser
# fixture's help, and only on a terminal 400 columns wide.
set -e
[ "$1" = --version ] && { echo 9.9.9; exit 0; }
[ "$(stty size)" = "50 400" ] || { echo "stdin is not a 400-column terminal" >&2; exit 3; }
cat "{fixtures}/$1.help.txt"
"""


def standin_archive(tmp_path, with_binary=True):
    """A .tgz in the release layout whose concourse/bin/concourse is STANDIN_CONCOURSE."""
    root = tmp_path / "layout"
    (root / "concourse" / "bin").mkdir(parents=True)
    if with_binary:
        binary = root / "concourse" / "bin" / "concourse"
        binary.write_text(STANDIN_CONCOURSE.replace("{fixtures}", FIXTURE_HELP))
        binary.chmod(0o755)
    archive = tmp_path / "concourse-9.9.9-linux-amd64.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "concourse", arcname="concourse")
    return str(archive)


def test_the_interface_is_read_from_the_archives_binary_on_a_wide_terminal(tmp_path):
    (tmp_path / "out").mkdir()
    texts, version = help_from_archive(standin_archive(tmp_path), str(tmp_path / "out"))
    assert version == "9.9.9"
    assert texts == {"web": fixture_help("web"), "worker": fixture_help("worker")}


def test_an_archive_without_the_binary_is_named(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(pytest.fail.Exception, match="has no concourse/bin/concourse"):
        help_from_archive(standin_archive(tmp_path, with_binary=False), str(tmp_path / "out"))


def test_the_web_role_has_an_env_template():
    assert "concourse_web" in roles_with_env_templates()


@pytest.mark.parametrize("role", sorted(roles_with_env_templates()))
def test_every_variable_is_read_by_the_pinned_version(tmp_path, role, concourse_help):
    subcommand = SUBCOMMAND.get(role)
    assert subcommand, f"{role}: name the Concourse subcommand its env files feed in SUBCOMMAND"
    flags = parse_help(concourse_help[subcommand])
    for variant, template, text in render(tmp_path, role, roles_with_env_templates()[role]):
        values = parse_env(text)
        assert values, f"{template} rendered no CONCOURSE_* variable"
        assert problems(values, flags) == [], \
            f"{os.path.relpath(template, ROOT)} with {json.dumps(variant)}"
        for name, value in variant.get(f"{role}_env", {}).items():
            assert values[name] == value


def test_the_web_env_carries_the_issue_settings(tmp_path):
    (_, _, text), (_, _, with_metrics) = render(tmp_path, "concourse_web",
                                                roles_with_env_templates()["concourse_web"])
    values = parse_env(text)
    assert values["CONCOURSE_BIND_IP"] == "127.0.0.1" and values["CONCOURSE_BIND_PORT"] == "8080"
    assert values["CONCOURSE_TSA_BIND_IP"] not in ("", "0.0.0.0")
    assert values["CONCOURSE_TSA_BIND_PORT"] == "2222"
    assert values["CONCOURSE_EXTERNAL_URL"].startswith("https://")
    assert values["CONCOURSE_POSTGRES_HOST"] == "127.0.0.1"
    assert values["CONCOURSE_POSTGRES_PASSWORD"] == (tmp_path / "secrets" / "postgresql" / "concourse-password") \
        .read_text().split()[0]
    assert values["CONCOURSE_MAIN_TEAM_LOCAL_USER"] == "admin"
    users = dict(entry.split(":", 1) for entry in values["CONCOURSE_ADD_LOCAL_USER"].split(","))
    assert set(users) == {"admin", "viewer"}
    assert re.match(r"^\$2[aby]\$12\$", users["admin"]) and "correct-horse" not in text
    assert users["viewer"] == COMMON["concourse_web_local_users"][1]["password_hash"]
    assert "CONCOURSE_PROMETHEUS_BIND_PORT" not in values
    assert parse_env(with_metrics)["CONCOURSE_PROMETHEUS_BIND_PORT"] == "9391"
    # Rendering again gives the same file: hashes are salted from a kept secret.
    assert render(tmp_path, "concourse_web", roles_with_env_templates()["concourse_web"])[0][2] == text


def test_the_worker_env_carries_the_issue_settings(tmp_path):
    (_, _, plain), (_, _, full) = render(tmp_path, "concourse_worker",
                                         roles_with_env_templates()["concourse_worker"])
    values = parse_env(plain)
    assert values["CONCOURSE_RUNTIME"] == "containerd"
    assert values["CONCOURSE_NAME"] == "localhost"
    # localhost is in gpu_workers here: tagged gpu, its hooks directory set.
    assert values["CONCOURSE_TAG"] == "gpu"
    assert values["CONCOURSE_CONTAINERD_OCI_HOOKS_DIR"] == "/etc/concourse/oci-hooks.d"
    assert values["CONCOURSE_TSA_HOST"].endswith(":2222")
    assert "CONCOURSE_CONTAINERD_PRIVILEGED_MODE" not in values  # Concourse's default in production
    assert values["CONCOURSE_WORK_DIR"] == "/var/lib/concourse-worker"
    values = parse_env(full)
    assert values["CONCOURSE_TAG"] == "gpu,big"
    assert values["CONCOURSE_CONTAINERD_DNS_SERVER"] == "10.0.0.53,10.0.1.53"
    assert values["CONCOURSE_CONTAINERD_ADDITIONAL_HOSTS"] == "10.0.0.5 registry,10.0.0.6 git"
    assert values["CONCOURSE_CONTAINERD_PRIVILEGED_MODE"] == "fuse-only"


def test_the_pinned_version_lives_in_one_place():
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "defaults", "main.yml")):
        with open(path, encoding="utf-8") as handle:
            defaults = yaml.safe_load(handle) or {}
        for name, value in defaults.items():
            if name != "concourse_release_version" and "concourse" in name and name.endswith("_version"):
                pytest.fail(f"{path}: {name} repeats the Concourse version; use concourse_release_version")
            assert VERSION not in str(value) or name == "concourse_release_version", \
                f"{os.path.relpath(path, ROOT)}: {name} repeats {VERSION}"


def test_the_web_role_reads_the_postgresql_role_credentials():
    def defaults(role):
        with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    web, db = defaults("concourse_web"), defaults("postgresql")
    assert web["concourse_web_postgres_password"] == db["postgresql_concourse_password"]
    assert web["concourse_web_postgres_database"] == db["postgresql_concourse_database"]
    assert web["concourse_web_postgres_user"] == db["postgresql_concourse_user"]
    assert web["concourse_web_postgres_port"] == db["postgresql_port"]
