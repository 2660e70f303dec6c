"""The cache_hub hook in real OCI containers started by runc.

Each test makes a busybox bundle, registers the hook exactly as the
installed hooks file (/etc/concourse/oci-hooks.d/50-cache-hub.json) says,
and runs it with runc, as Concourse's containerd runtime would.
"""
import json
import shlex
import uuid

HOOKS_FILE = "/etc/concourse/oci-hooks.d/50-cache-hub.json"

EDIT = r"""
import json, sys
path, env, cmd, hooks_file, settings = sys.argv[1:6]
spec = json.load(open(path))
hook = json.load(open(hooks_file))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["sh", "-c", cmd]
spec["process"]["env"] += [e for e in env.split(",") if e]
spec["root"]["readonly"] = False
entry = dict(hook["hook"])
if settings:
    entry["args"] = [entry["args"][0], settings]
spec.setdefault("hooks", {})
for stage in hook["stages"]:
    spec["hooks"].setdefault(stage, []).append(entry)
json.dump(spec, open(path, "w"))
"""


def run_container(host, cmd, env=(), settings=""):
    name = "t" + uuid.uuid4().hex[:8]
    bundle = f"/var/tmp/{name}"  # /tmp is a noexec tmpfs in these containers
    script = f"""
set -e
mkdir -p {bundle}/rootfs/bin
cp /bin/busybox {bundle}/rootfs/bin/busybox
for a in sh cat ls echo; do ln -s busybox {bundle}/rootfs/bin/$a; done
cd {bundle} && runc spec
python3 -c {shlex.quote(EDIT)} config.json {shlex.quote(','.join(env))} {shlex.quote(cmd)} {HOOKS_FILE} {shlex.quote(settings)}
runc run --bundle {bundle} {name}
"""
    return host.run(script)


def test_hook_is_registered_for_concourse(host):
    hook = json.loads(host.file(HOOKS_FILE).content_string)
    assert hook["stages"] == ["prestart"]
    assert hook["hook"]["path"] == "/usr/local/libexec/concourse-gpu-kit/cache-hub-hook"
    assert host.file(hook["hook"]["path"]).mode == 0o755
    settings = json.loads(host.file(hook["hook"]["args"][1]).content_string)
    assert settings == {"source": "/srv/cache_hub", "env": "CACHE_HUB",
                        "default_target": "/cache_hub", "teams": []}


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


def test_refusal_stops_the_container(host):
    host.run_expect([0], "python3 -c \"import json; json.dump({'source': '/srv/cache_hub', 'env': 'CACHE_HUB', "
                         "'default_target': '/cache_hub', 'teams': ['models']}, open('/tmp/teams.json', 'w'))\"")
    out = run_container(host, "echo should-not-run", env=["CACHE_HUB=1", "BUILD_TEAM_NAME=main"],
                        settings="/tmp/teams.json")
    assert out.rc != 0
    assert "should-not-run" not in out.stdout
    assert "cache_hub is not open to team 'main'" in out.stderr
