"""The local lab: three systemd containers on a Docker network of their own.

`up` makes (or restarts) the containers, waits for systemd in each, runs
site.yml against inventories/lab and writes .lab/access.env. `down` removes
the containers, the network and the lab's volumes, and nothing else: the
images, the artifact cache and the lab's generated secrets stay.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import ssl
import string
import subprocess
import time
import urllib.error
import urllib.request

from . import artifacts, concourse, images, taskimage
from .shell import CommandError, output, run, say

# LABKIT_LAB names the lab: its containers, network, volumes and label. Two
# labs with different names (and LABKIT_PROXY_PORTs) run side by side; the lab
# inventory reads the same variable to reach the containers.
PREFIX = os.environ.get("LABKIT_LAB", "concourse-gpu-kit-lab")
NETWORK = PREFIX
LABEL = f"org.concourse-gpu-kit.lab={PREFIX}"
PROXY_PORT = int(os.environ.get("LABKIT_PROXY_PORT", "8443"))


@dataclasses.dataclass(frozen=True)
class LabHost:
    name: str
    image: str                       # key of images.IMAGES
    publish: tuple = ()              # docker -p specs, loopback only
    volumes: tuple = ()              # (volume suffix, mount point)
    docker_args: tuple = ()          # more `docker run` options


    @property
    def container(self) -> str:
        return f"{PREFIX}-{self.name}"


# What a Concourse worker needs beyond SYSTEMD_CONTAINER (--privileged is
# refused on this machine): runc opens the task container's mount namespace
# (SYS_PTRACE); unprivileged tasks run in a user namespace and mount a fresh
# /proc, which Docker's masked paths forbid (systempaths=unconfined); every
# task container gets /dev/fuse. Full-privileged tasks stay impossible here
# (the lab runs CONCOURSE_CONTAINERD_PRIVILEGED_MODE=fuse-only).
WORKER_DOCKER_ARGS = (
    "--cap-add", "SYS_PTRACE",
    "--security-opt", "systempaths=unconfined",
    "--device", "/dev/fuse",
)
# Baggageclaim cannot keep its volumes on the container's own overlay: the
# work directory (concourse_worker_work_dir) is a Docker volume.
WORKER_WORK_DIR = ("worker-work", "/var/lib/concourse-worker")

# Groups live in inventories/lab/hosts.yml; this is what Docker needs.
# worker-2 runs Debian 13 so that the lab covers both supported releases.
HOSTS = (
    LabHost("web", "debian12", publish=(f"127.0.0.1:{PROXY_PORT}:443",)),
    # The model cache lives on a volume of its own, as on a real worker's
    # second disk: re-creating the container keeps it.
    LabHost("gpu-worker-1", "debian12",
            volumes=(("cache-hub", "/srv/cache_hub"), WORKER_WORK_DIR),
            docker_args=WORKER_DOCKER_ARGS),
    LabHost("worker-2", "debian13", volumes=(WORKER_WORK_DIR,),
            docker_args=WORKER_DOCKER_ARGS),
    # Lab services only (playbooks/lab/registry.yml): an image registry
    # with the task image, and a git server.
    LabHost("registry", "debian12"),
)


def _container_state(name: str) -> str | None:
    proc = run(["docker", "container", "inspect", "--format",
                "{{.State.Status}}", name], capture=True, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def _ensure_network() -> None:
    if run(["docker", "network", "inspect", NETWORK], capture=True,
           check=False).returncode != 0:
        say(f"creating network {NETWORK}")
        run(["docker", "network", "create", "--label", LABEL, NETWORK], capture=True)


def _start_host(host: LabHost) -> None:
    state = _container_state(host.container)
    if state == "running":
        return
    if state is not None:
        say(f"starting {host.container} ({state})")
        run(["docker", "start", host.container], capture=True)
        return
    say(f"creating {host.container}")
    argv = ["docker", "run", "--detach", "--name", host.container,
            "--hostname", host.name, "--network", NETWORK,
            "--network-alias", host.name, "--label", LABEL,
            *images.docker_run_args()]
    for spec in host.publish:
        argv += ["--publish", spec]
    argv += list(host.docker_args)
    for suffix, mount in host.volumes:
        volume = f"{host.container}-{suffix}"
        run(["docker", "volume", "create", "--label", LABEL, volume], capture=True)
        argv += ["--volume", f"{volume}:{mount}"]
    argv += [images.IMAGES[host.image].name, *images.SYSTEMD_CONTAINER["command"]]
    run(argv, capture=True)


def wait_for_systemd(container: str, timeout: float = 120.0) -> str:
    """Wait until systemd in container has finished booting; return its state."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        proc = run(["docker", "exec", container, "systemctl", "is-system-running"],
                   capture=True, check=False)
        state = proc.stdout.decode().strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(1)
    journal = run(["docker", "exec", container, "journalctl", "-b", "-n", "40",
                   "--no-pager"], capture=True, check=False).stdout.decode(errors="replace")
    raise CommandError(f"systemd in {container} is '{state}' after {timeout:.0f}s:\n{journal}")


def up_hosts(hosts: tuple = HOSTS) -> None:
    """Start hosts (the lab's, or others of the same lab such as bench/'s
    extra workers) on the lab's network and wait for systemd in each."""
    images.build_all(sorted({h.image for h in hosts}))
    _ensure_network()
    for host in hosts:
        _start_host(host)
    for host in hosts:
        state = wait_for_systemd(host.container)
        if state == "degraded":
            failed = output(["docker", "exec", host.container, "systemctl",
                             "--failed", "--plain", "--no-legend"])
            say(f"{host.name}: systemd is degraded: {failed}")
        else:
            say(f"{host.name}: systemd is running")


# --- access -----------------------------------------------------------------

SECRET_ALPHABET = string.ascii_letters + string.digits


def lab_secret(secrets_dir: str, relpath: str, length: int = 32) -> str:
    """Read a generated secret, creating it once (0600) when it is missing.

    The file holds the bare value, the format of Ansible's password lookup,
    so inventories/lab reads the same value with lookup('password', path).
    """
    path = os.path.join(secrets_dir, relpath)
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().split()[0]
            if value:
                return value
    except (FileNotFoundError, IndexError):
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    value = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(length))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def access_values(lab_dir: str) -> dict[str, str]:
    secrets_dir = os.path.join(lab_dir, "secrets")
    return {
        "CONCOURSE_URL": f"https://localhost:{PROXY_PORT}",
        "CONCOURSE_USER": "admin",
        "CONCOURSE_PASSWORD": lab_secret(secrets_dir, "concourse/admin-password"),
        "PROXY_USER": "ops",
        "PROXY_PASSWORD": lab_secret(secrets_dir, "nginx_proxy/ops-password"),
    }


def render_env(values: dict[str, str]) -> str:
    return "".join(f"{key}='{value}'\n" for key, value in values.items())


def write_access(lab_dir: str) -> dict[str, str]:
    values = access_values(lab_dir)
    path = os.path.join(lab_dir, "access.env")
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render_env(values))
    os.replace(path + ".tmp", path)
    return values


def probe(url: str, timeout: float = 5.0) -> str:
    """One request to the lab's own published port; a word on what answered."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the lab's proxy certificate is self-signed
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            return f"HTTP {resp.status}"
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return f"no answer ({getattr(err, 'reason', err)})"


# --- commands -----------------------------------------------------------------

def write_concourse_state(lab_dir: str, archive: str | None, args: list[str]) -> None:
    """What the end-to-end suite needs to know: the archive used and site.yml's arguments."""
    with open(os.path.join(lab_dir, "concourse.json"), "w", encoding="utf-8") as handle:
        json.dump({"archive": archive, "playbook_args": args}, handle)


def up(project_dir: str, playbook_args: list[str]) -> None:
    lab_dir = os.path.join(project_dir, ".lab")
    os.makedirs(lab_dir, mode=0o700, exist_ok=True)
    values = write_access(lab_dir)
    archive = concourse.find_archive()
    env = dict(os.environ)
    concourse_args: list[str] = []
    if archive:
        say(f"Concourse release archive: {archive}")
        env["CONCOURSE_RELEASE_ARCHIVE"] = archive
    else:
        concourse_args = ["--skip-tags", "concourse"]
        print(concourse.SKIP_LINE, flush=True)
    write_concourse_state(lab_dir, archive, concourse_args)
    up_hosts()
    image_dir = taskimage.build(artifacts.cache_root())
    say("running site.yml against inventories/lab")
    # Lab containers get new addresses when they are re-created: facts
    # cached by an earlier lab would point templates at the old ones.
    proc = subprocess.run(["ansible-playbook", "-i", "inventories/lab/hosts.yml",
                           "--flush-cache", "site.yml", *concourse_args, *playbook_args],
                          cwd=project_dir, env=env)
    if proc.returncode != 0:
        raise CommandError(f"site.yml failed (exit {proc.returncode})")
    say("running playbooks/lab/registry.yml (the lab's registry and git server)")
    proc = subprocess.run(["ansible-playbook", "-i", "inventories/lab/hosts.yml",
                           "playbooks/lab/registry.yml", "-e", f"lab_task_image_dir={image_dir}"],
                          cwd=project_dir, env=env)
    if proc.returncode != 0:
        raise CommandError(f"playbooks/lab/registry.yml failed (exit {proc.returncode})")
    answer = probe(values["CONCOURSE_URL"] + "/api/v1/info")
    if answer == "HTTP 502" and not archive:
        answer += f": the proxy answers; the Concourse tiers were skipped ({concourse.SKIP_REASON})"
    print(access_summary(values, answer, os.path.join(lab_dir, "access.env")))
    if not archive:
        print(concourse.SKIP_LINE)


def access_summary(values: dict[str, str], answer: str, access_path: str) -> str:
    """What `make lab` prints: where the passwords are, never what they are
    (the output lands in CI logs)."""
    return "\n".join([
        f"\nLab is up. Access written to {access_path} (mode 0600):",
        f"  proxy URL:  {values['CONCOURSE_URL']}  ({answer})",
        f"  proxy:      user {values['PROXY_USER']}, password in PROXY_PASSWORD",
        f"  Concourse:  user {values['CONCOURSE_USER']}, password in CONCOURSE_PASSWORD",
        "  In a shell:  . .lab/access.env",
    ])


def down_hosts(hosts: tuple) -> None:
    """Remove some hosts of the lab and their volumes; the rest stays."""
    containers = [h.container for h in hosts]
    volumes = [f"{h.container}-{suffix}" for h in hosts for suffix, _ in h.volumes]
    if containers:
        run(["docker", "container", "rm", "-f", *containers], capture=True, check=False)
    if volumes:
        run(["docker", "volume", "rm", "-f", *volumes], capture=True, check=False)


def down() -> None:
    for kind in ("container", "volume"):
        ids = output(["docker", kind, "ls", "-q", *(["-a"] if kind == "container" else []),
                      "--filter", f"label={LABEL}"]).split()
        if ids:
            say(f"removing {kind}s: {' '.join(sorted(set(ids)))}")
            run(["docker", kind, "rm", "-f", *sorted(set(ids))], capture=True)
    if run(["docker", "network", "inspect", NETWORK], capture=True,
           check=False).returncode == 0:
        say(f"removing network {NETWORK}")
        run(["docker", "network", "rm", NETWORK], capture=True)
