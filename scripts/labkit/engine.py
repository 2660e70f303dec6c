"""Make sure a Docker engine answers, installing and starting one if needed.

On a machine without systemd (CI, this kit's development hosts) the engine
is Debian's docker.io, started as a background dockerd. Where the engine
already answers nothing is touched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

from .shell import CommandError, run, say

DOCKERD_LOG = "/var/log/labkit-dockerd.log"


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return run(["docker", "info"], capture=True, check=False).returncode == 0


def _apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise CommandError(f"{' '.join(packages)} missing and not root: install them first")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], capture=True, env=env)
    run(["apt-get", "install", "-y", "-qq", *packages], capture=True, env=env)


def ensure_host_packages() -> None:
    """debootstrap and the Docker engine from Debian's archive, when missing."""
    missing = [pkg for pkg, binary in (("debootstrap", "debootstrap"),
                                       ("docker.io", "dockerd"))
               if shutil.which(binary) is None]
    if missing:
        say(f"installing {', '.join(missing)} from Debian's archive")
        _apt_install(missing)


def ensure_engine(timeout: float = 60.0) -> None:
    ensure_host_packages()
    if engine_answers():
        return
    say(f"starting dockerd in the background (log: {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(0.5)
    with open(DOCKERD_LOG, "rb") as log:
        tail = log.read()[-2000:].decode(errors="replace")
    raise CommandError(f"dockerd did not answer within {timeout:.0f}s:\n{tail}")
