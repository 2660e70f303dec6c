"""The lab's task image: a Debian root file system made by debootstrap,
packed as a one-layer image (Docker's schema 2) for the lab's registry.

No image registry outside is reachable, so the tasks of the lab's pipelines
and end-to-end tests use this image from the lab's own registry (Debian's
docker-registry package, playbooks/lab/registry.yml pushes it there).

The image is built once per recipe (its hash names the directory), into the
artifact cache: layer.tar.gz, config.json, manifest.json and image.json
(repository and tag). Nothing here talks to a registry.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from .shell import CommandError, run, say

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclasses.dataclass(frozen=True)
class TaskImage:
    repository: str = "kit/task"
    tag: str = "bookworm"
    suite: str = "bookworm"
    # What the lab's tasks use: a shell and coreutils (minbase), git for the
    # pipelines' scripts, Python 3 and curl for the health checks.
    packages: tuple = ("ca-certificates", "curl", "git", "python3")

    def digest(self, mirror: str) -> str:
        doc = dataclasses.asdict(self)
        doc.update(mirror=mirror, post=_POST_SCRIPT, excluded=_EXCLUDED)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


TASK_IMAGE = TaskImage()

_POST_SCRIPT = """
set -e
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
: > /etc/machine-id
"""
# Device nodes cannot be made in a task's user namespace (the registry-image
# resource skips them) and /proc, /sys and /dev are the runtime's business.
_EXCLUDED = ("./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*")


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def image_documents(layer_digest: str, layer_size: int, diff_id: str,
                    arch: str = "amd64") -> tuple[bytes, bytes]:
    """The image's config and manifest, as the bytes the registry stores."""
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG=C.UTF-8"],
            "Cmd": ["/bin/bash"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "labkit taskimage (debootstrap)"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "size": len(config_bytes),
                   "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest()},
        "layers": [{"mediaType": MEDIA_LAYER, "size": layer_size, "digest": layer_digest}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return config_bytes, manifest_bytes


def pack_layer(root: str, dest: str) -> tuple[str, str, int]:
    """tar root into dest (gzip); return (blob digest, diff id, blob size)."""
    argv = ["tar", "--numeric-owner", "--sort=name", "-C", root, "-c"]
    argv += [f"--exclude={pattern}" for pattern in _EXCLUDED]
    argv.append(".")
    diff = hashlib.sha256()
    tar = subprocess.Popen(argv, stdout=subprocess.PIPE)
    with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        for chunk in iter(lambda: tar.stdout.read(1 << 20), b""):
            diff.update(chunk)
            out.write(chunk)
    tar.stdout.close()
    if tar.wait() != 0:
        raise CommandError(f"tar of {root} failed")
    return sha256_file(dest), "sha256:" + diff.hexdigest(), os.path.getsize(dest)


def build(cache_dir: str, image: TaskImage = TASK_IMAGE, mirror: str | None = None,
          force: bool = False) -> str:
    """Build the task image into cache_dir/task-image/<recipe>; return that directory."""
    mirror = mirror if mirror is not None else os.environ.get("LABKIT_DEBIAN_MIRROR", "")
    target = os.path.join(cache_dir, "task-image", image.digest(mirror))
    if not force and os.path.exists(os.path.join(target, "image.json")):
        say(f"task image {image.repository}:{image.tag} is current ({target})")
        return target
    if shutil.which("debootstrap") is None:
        raise CommandError("debootstrap is missing: apt-get install debootstrap")
    say(f"building task image {image.repository}:{image.tag} from {image.suite}")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-taskimage-", dir="/var/tmp") as tmp:
        root = os.path.join(tmp, "root")
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(image.packages),
             image.suite, root, *([mirror] if mirror else [])], capture=True)
        run(["chroot", root, "/bin/sh", "-c", _POST_SCRIPT], capture=True)
        staging = os.path.join(tmp, "image")
        os.makedirs(staging)
        layer_digest, diff_id, size = pack_layer(root, os.path.join(staging, "layer.tar.gz"))
        config, manifest = image_documents(layer_digest, size, diff_id)
        for name, blob in (("config.json", config), ("manifest.json", manifest)):
            with open(os.path.join(staging, name), "wb") as handle:
                handle.write(blob)
        with open(os.path.join(staging, "image.json"), "w", encoding="utf-8") as handle:
            json.dump({"repository": image.repository, "tag": image.tag,
                       "manifest_digest": "sha256:" + hashlib.sha256(manifest).hexdigest()},
                      handle, indent=2)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(staging, target)
    say(f"built task image into {target}")
    return target
