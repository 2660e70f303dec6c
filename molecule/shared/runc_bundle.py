"""Real OCI containers for molecule's testinfra tests, started the way Concourse's worker starts them.

run_container() makes a busybox bundle on the test host, registers every
hook file of the hooks directory in name order, as Concourse's containerd
runtime does when the worker starts (worker/runtime/backend.go), and runs it
with runc. Shared by the scenarios whose roles install OCI hooks.
"""
import json
import shlex
import uuid

HOOKS_DIR = "/etc/concourse/oci-hooks.d"

# Runs on the test host: edits runc's default spec.
EDIT = r"""
import json, os, sys
path, env, cmd, hooks_dir, replaced_args = sys.argv[1:6]
replaced_args = json.loads(replaced_args)
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["sh", "-c", cmd]
spec["process"]["env"] += [e for e in env.split(",") if e]
spec["root"]["readonly"] = False
spec["hooks"] = {}
for name in sorted(os.listdir(hooks_dir)):
    hook = json.load(open(os.path.join(hooks_dir, name)))
    entry = dict(hook["hook"], args=replaced_args.get(name, hook["hook"].get("args", [])))
    for stage in hook["stages"]:
        spec["hooks"].setdefault(stage, []).append(entry)
json.dump(spec, open(path, "w"))
"""


def run_container(host, cmd, env=(), replaced_args=None):
    """Run `sh -c cmd` in a fresh container; replaced_args maps a hook file to other args."""
    name = "t" + uuid.uuid4().hex[:8]
    bundle = f"/var/tmp/{name}"  # /tmp is a noexec tmpfs in these containers
    script = f"""
set -e
mkdir -p {bundle}/rootfs/bin
cp /bin/busybox {bundle}/rootfs/bin/busybox
for a in sh cat ls echo; do ln -s busybox {bundle}/rootfs/bin/$a; done
cd {bundle} && runc spec
python3 -c {shlex.quote(EDIT)} config.json {shlex.quote(','.join(env))} {shlex.quote(cmd)} {HOOKS_DIR} \\
  {shlex.quote(json.dumps(replaced_args or {}))}
runc run --bundle {bundle} {name}
"""
    try:
        return host.run(script)
    finally:
        host.run(f"runc delete --force {name} 2>/dev/null; rm -rf {bundle}")
