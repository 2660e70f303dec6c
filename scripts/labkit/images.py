"""Systemd base images for the lab and the molecule scenarios.

No image registry is reachable, so the images are made from Debian's archive
with debootstrap and loaded with `docker import`. Each image carries a label
with the hash of its recipe; an image is rebuilt only when that hash changes.

The same images and the same container settings (SYSTEMD_CONTAINER) serve the
lab and every molecule scenario: tests/unit/test_images.py checks that
.config/molecule/config.yml says what this module says.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from .shell import CommandError, output, run, say

RECIPE_LABEL = "org.concourse-gpu-kit.recipe"
# Empty: debootstrap's own default mirror. LABKIT_DEBIAN_MIRROR overrides.
DEFAULT_MIRROR = ""

# What every lab host has before Ansible touches it: systemd as PID 1 and
# Python for Ansible's modules. Everything else is the roles' job.
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "python3-apt",
    "iproute2", "ca-certificates", "procps", "sudo",
)

# Units that have nothing to do in a container and only slow its boot.
MASKED_UNITS = (
    "getty.target", "console-getty.service", "getty@tty1.service",
    "systemd-udevd.service", "systemd-udev-trigger.service",
    "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-firstboot.service", "systemd-modules-load.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount", "systemd-remount-fs.service",
)

# The Docker options under which systemd runs as PID 1 without --privileged
# (this machine refuses --privileged). systemd 257 (Debian 13) refuses a
# cgroup v1 host unless asked on its command line; in a container systemd
# reads that command line from its own argv.
SYSTEMD_CONTAINER = {
    "command": ["/lib/systemd/systemd",
                "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1",
                "systemd.unified_cgroup_hierarchy=0"],
    "capabilities": ["SYS_ADMIN", "NET_ADMIN"],
    "security_opts": ["seccomp=unconfined"],
    "cgroupns_mode": "host",
    "volumes": ["/sys/fs/cgroup:/sys/fs/cgroup:rw"],
    "tmpfs": ["/run", "/run/lock", "/tmp"],
    # systemd shuts down cleanly on SIGRTMIN+3; `docker import` cannot set
    # STOPSIGNAL, so every container is run with it.
    "stop_signal": "SIGRTMIN+3",
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str            # docker image name, tag included
    suite: str           # Debian suite for debootstrap
    packages: tuple = BASE_PACKAGES
    masked_units: tuple = MASKED_UNITS

    def digest(self, mirror: str) -> str:
        """Hash of everything that shapes the image; a change means rebuild."""
        doc = dataclasses.asdict(self)
        doc.update(mirror=mirror, command=SYSTEMD_CONTAINER["command"],
                   post=_POST_SCRIPT)
        blob = json.dumps(doc, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


IMAGES = {
    "debian12": Recipe(name="concourse-gpu-kit/debian:12", suite="bookworm"),
    "debian13": Recipe(name="concourse-gpu-kit/debian:13", suite="trixie"),
}

# Run inside the new root after debootstrap. An empty machine-id makes every
# container get its own; apt lists are dropped to keep the image small and
# never stale.
_POST_SCRIPT = """
set -e
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# An empty index must look old, or apt's cache_valid_time trusts it.
touch -d @0 /var/lib/apt/lists
echo 'APT::Install-Recommends "false";' > /etc/apt/apt.conf.d/90concourse-gpu-kit
"""


def docker_run_args() -> list[str]:
    """SYSTEMD_CONTAINER as `docker run` options (command excluded)."""
    args: list[str] = []
    for cap in SYSTEMD_CONTAINER["capabilities"]:
        args += ["--cap-add", cap]
    for opt in SYSTEMD_CONTAINER["security_opts"]:
        args += ["--security-opt", opt]
    args += ["--cgroupns", SYSTEMD_CONTAINER["cgroupns_mode"]]
    for vol in SYSTEMD_CONTAINER["volumes"]:
        args += ["-v", vol]
    for mount in SYSTEMD_CONTAINER["tmpfs"]:
        args += ["--tmpfs", mount]
    args += ["--stop-signal", SYSTEMD_CONTAINER["stop_signal"]]
    return args


def image_recipe_label(name: str) -> str | None:
    """The recipe hash of a local image, or None when there is none."""
    proc = run(["docker", "image", "inspect", "--format",
                "{{ index .Config.Labels \"%s\" }}" % RECIPE_LABEL, name],
               capture=True, check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip() or None


def _mask_units(root: str, units: tuple) -> None:
    etc = os.path.join(root, "etc/systemd/system")
    os.makedirs(etc, exist_ok=True)
    for unit in units:
        path = os.path.join(etc, unit)
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink("/dev/null", path)


def build(recipe: Recipe, mirror: str = DEFAULT_MIRROR, force: bool = False) -> str:
    """Build recipe's image unless an image with the same recipe exists."""
    digest = recipe.digest(mirror)
    if not force and image_recipe_label(recipe.name) == digest:
        say(f"{recipe.name} is current (recipe {digest})")
        return "cached"
    if shutil.which("debootstrap") is None:
        raise CommandError("debootstrap is missing: apt-get install debootstrap")
    say(f"building {recipe.name} from {recipe.suite} (recipe {digest})")
    with tempfile.TemporaryDirectory(prefix="labkit-rootfs-", dir="/var/tmp") as tmp:
        root = os.path.join(tmp, "root")
        run(["debootstrap", "--variant=minbase",
             "--include=" + ",".join(recipe.packages),
             recipe.suite, root, *([mirror] if mirror else [])], capture=True)
        run(["chroot", root, "/bin/sh", "-c", _POST_SCRIPT], capture=True)
        _mask_units(root, recipe.masked_units)
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", root, "-c", "."],
                               stdout=subprocess.PIPE)
        changes = [
            f"LABEL {RECIPE_LABEL}={digest}",
            "ENV container=docker",
            "CMD " + json.dumps(SYSTEMD_CONTAINER["command"]),
        ]
        argv = ["docker", "import"]
        for change in changes:
            argv += ["--change", change]
        argv += ["-", recipe.name]
        imported = subprocess.run(argv, stdin=tar.stdout, capture_output=True)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise CommandError(f"docker import of {recipe.name} failed: "
                               + imported.stderr.decode(errors="replace"))
    say(f"built {recipe.name}: {output(['docker', 'image', 'inspect', '--format', '{{.Id}}', recipe.name])}")
    return "built"


def build_all(names: list[str] | None = None, mirror: str | None = None,
              force: bool = False) -> dict[str, str]:
    """Build the named images (all by default) side by side."""
    mirror = mirror or os.environ.get("LABKIT_DEBIAN_MIRROR", DEFAULT_MIRROR)
    wanted = names or list(IMAGES)
    unknown = [n for n in wanted if n not in IMAGES]
    if unknown:
        raise CommandError(f"unknown image(s) {unknown}; known: {sorted(IMAGES)}")
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = {n: pool.submit(build, IMAGES[n], mirror, force) for n in wanted}
        return {n: f.result() for n, f in futures.items()}
