#!/usr/bin/python3
"""OCI prestart hook: bind the worker's cache_hub into the tasks that ask.

Concourse refuses host mounts in tasks (concourse#4241). Its containerd
runtime runs every hook in CONCOURSE_CONTAINERD_OCI_HOOKS_DIR for every
container, so this hook decides per container: it reads the OCI state on
standard input, then the bundle's config.json, and acts only when the
container's environment (a task's `params`) names the cache:

    CACHE_HUB=1                  bind at the default target (/cache_hub)
    CACHE_HUB=/opt/app/cache_hub bind at that absolute path

Any other container is left alone (exit 0, nothing done). A request that
cannot be honoured (a bad path, a symlink in the way) fails the
container's creation with a message, rather than running the task
without its cache.

Every container on the worker that asks gets the cache: the hook has no
way to tell which team a container runs for. Concourse v8.2.5's worker
puts no build metadata in the OCI spec (the environment is the image's
and the task's own, the hostname and cgroup path are a random handle,
the only annotation is the image's user), and anything in the
environment a task sets itself. Keep a cache to one team by registering
the GPU worker for that team (`concourse worker --team`), which the web
node enforces (roles/cache_hub/README.md).

Settings come from a JSON file (argv[1], default
/etc/concourse-gpu-kit/cache-hub-hook.json):
    {"source": "/srv/cache_hub", "env": "CACHE_HUB",
     "default_target": "/cache_hub"}
Settings from an older kit with a "teams" list are refused, so that
nobody relies on an allow-list that cannot hold.

Standard library only: it runs on the worker with the system python3.
"""
from __future__ import annotations

import json
import os
import posixpath
import subprocess
import sys

DEFAULT_SETTINGS = "/etc/concourse-gpu-kit/cache-hub-hook.json"
FORBIDDEN_PREFIXES = ("/proc", "/sys", "/dev")
TRUE_WORDS = ("1", "true", "yes", "rw")


class Refused(Exception):
    """The container asked for the cache and cannot have it."""


def container_env(config: dict) -> dict[str, str]:
    env = {}
    for item in (config.get("process") or {}).get("env") or []:
        name, sep, value = item.partition("=")
        if sep:
            env[name] = value
    return env


def wanted_target(env: dict[str, str], settings: dict) -> str | None:
    """Where the cache goes in this container, or None when it is not asked for."""
    value = env.get(settings.get("env", "CACHE_HUB"), "").strip()
    if not value or value.lower() in ("0", "false", "no"):
        return None
    if settings.get("teams"):
        raise Refused("the settings name teams, but a task can claim any team: the allow-list "
                      "was removed; register the worker for one team instead (concourse worker --team)")
    target = settings.get("default_target", "/cache_hub") if value.lower() in TRUE_WORDS else value
    if not target.startswith("/"):
        raise Refused(f"{settings.get('env', 'CACHE_HUB')}={value!r}: give 1 or an absolute path")
    normal = posixpath.normpath(target)
    if normal != target.rstrip("/") or normal == "/" or ".." in target.split("/"):
        raise Refused(f"cache_hub target {target!r} is not a plain absolute path")
    if any(normal == p or normal.startswith(p + "/") for p in FORBIDDEN_PREFIXES):
        raise Refused(f"cache_hub target {target!r} is under {', '.join(FORBIDDEN_PREFIXES)}")
    return normal


def rootfs_of(state: dict, config: dict) -> str:
    root = (config.get("root") or {}).get("path") or "rootfs"
    return root if root.startswith("/") else os.path.join(state["bundle"], root)


def make_mountpoint(rootfs: str, target: str) -> str:
    """Create target under rootfs one component at a time, following no symlink.

    The image is the task's: a symlink in it must not lead the bind mount
    out of the container's root.
    """
    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in target.strip("/").split("/"):
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as err:
                raise Refused(f"cache_hub target {target!r}: '{part}' in the image is not a "
                              f"directory ({err.strerror})") from err
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    return os.path.join(rootfs, target.lstrip("/"))


def bind_argv(pid: int, source: str, mountpoint: str) -> list[str]:
    """Bind inside the container's mount namespace (it is not pivoted yet)."""
    return ["nsenter", f"--mount=/proc/{pid}/ns/mnt", "--",
            "mount", "--bind", source, mountpoint]


def run(state: dict, settings: dict, runner=subprocess.run) -> str | None:
    with open(os.path.join(state["bundle"], "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    target = wanted_target(container_env(config), settings)
    if target is None:
        return None
    source = settings.get("source", "/srv/cache_hub")
    if not os.path.isdir(source):
        raise Refused(f"cache_hub source {source} is missing on this worker")
    mountpoint = make_mountpoint(rootfs_of(state, config), target)
    done = runner(bind_argv(int(state["pid"]), source, mountpoint), capture_output=True, text=True)
    if done.returncode != 0:
        raise Refused(f"binding {source} at {target} failed: {done.stderr.strip()}")
    return target


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else DEFAULT_SETTINGS
    try:
        with open(path, encoding="utf-8") as handle:
            settings = json.load(handle)
        state = json.load(sys.stdin)
        target = run(state, settings)
    except Refused as err:
        print(f"cache_hub hook: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as err:
        print(f"cache_hub hook: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    if target:
        print(f"cache_hub hook: {settings.get('source')} bound at {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
