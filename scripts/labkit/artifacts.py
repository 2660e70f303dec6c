"""Upstream release artifacts built from the Go module proxy.

Production installs download each component's official release (pinned
version and SHA-256 in the role's defaults). Where the release sites cannot
be reached (this kit's CI, air-gapped labs), this module builds the *same
upstream version* from its module on the Go module proxy and packs it in the
official release layout, so the roles install it exactly as they would the
release. It is never the official archive: its checksum differs, and the
cache records how it was made (BUILD-INFO.json).

Cache layout, outside the checkout (LABKIT_ARTIFACT_CACHE, default
~/.cache/concourse-gpu-kit/artifacts):

    <name>/<version>/linux-<arch>/<release asset>
    <name>/<version>/linux-<arch>/SHA256SUMS
    <name>/<version>/linux-<arch>/BUILD-INFO.json

A component whose module the proxy does not serve is reported as
unavailable, with the proxy's answer; nothing is put in its place.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

from .shell import MISSING_HINTS, CommandError, output, run, say

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "concourse-gpu-kit", "artifacts")


class Unavailable(CommandError):
    """The component's source cannot be had from here."""


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    version: str
    module: str              # Go module path
    module_version: str      # version as the module proxy names it
    main_package: str        # package path inside the module
    asset: str               # official release asset name, {arch} expanded
    binary: str              # binary name inside the asset, {arch} expanded
    ldflags: tuple = ()
    # Modules that upstream's go.mod replaces with a directory of its own
    # repository: module zips leave nested modules out, so they are pointed
    # at the version upstream requires instead.
    nested_replaces: tuple = ()
    # How the release packs it: "zip" (one binary), "tarball" (Concourse's
    # release layout, not written), or "bin-tarball": main_package's
    # space-separated packages as usr/bin/<name> in a tar.gz, for components
    # whose official release is a distribution package that cannot be
    # rebuilt here (the asset name then says "source-build").
    pack: str = "zip"
    cgo: bool = False
    notes: str = ""

    def asset_name(self, arch: str) -> str:
        return self.asset.format(arch=arch, version=self.version)

    def binary_name(self, arch: str) -> str:
        return self.binary.format(arch=arch, version=self.version)


PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def role_default(role: str, name: str) -> str:
    """A variable from roles/<role>/defaults/main.yml: the one place its value is written."""
    import yaml  # the venv's (Ansible needs it)
    with open(os.path.join(PROJECT_DIR, "roles", role, "defaults", "main.yml"), encoding="utf-8") as handle:
        return str(yaml.safe_load(handle)[name])


# The toolkit's version is the role's package version without its Debian
# revision ("1.17.8-1" -> "1.17.8"); molecule/nvidia_container_toolkit
# derives it the same way, and tests/unit/test_versions.py finds copies.
TOOLKIT_VERSION = role_default("nvidia_container_toolkit", "nvidia_container_toolkit_version").rsplit("-", 1)[0]

COMPONENTS = {
    "loki": Component(
        name="loki", version="3.7.8",
        module="github.com/grafana/loki/v3", module_version="v3.7.8",
        main_package="./cmd/loki",
        asset="loki-linux-{arch}.zip", binary="loki-linux-{arch}",
        ldflags=("-X github.com/grafana/loki/v3/pkg/util/build.Version=3.7.8",
                 "-X github.com/grafana/loki/v3/pkg/util/build.Branch=release-3.7.x"),
        nested_replaces=(("github.com/grafana/loki/pkg/push",
                          "v0.0.0-20250630054201-94c0ba7b0952"),),
    ),
    "alloy": Component(
        name="alloy", version="1.21.2",
        module="github.com/grafana/alloy", module_version="v1.21.2",
        main_package=".",
        asset="alloy-linux-{arch}.zip", binary="alloy-linux-{arch}",
        notes="the release also embeds the web UI, built with npm; 1.21 needs Go 1.27",
    ),
    "nvidia-container-toolkit": Component(
        name="nvidia-container-toolkit", version=TOOLKIT_VERSION,
        module="github.com/NVIDIA/nvidia-container-toolkit", module_version=f"v{TOOLKIT_VERSION}",
        main_package="./cmd/nvidia-ctk ./cmd/nvidia-container-runtime-hook",
        asset="nvidia-container-toolkit-{version}-linux-{arch}.source-build.tar.gz", binary="usr/bin",
        ldflags=(f"-X github.com/NVIDIA/nvidia-container-toolkit/internal/info.version={TOOLKIT_VERSION}",),
        pack="bin-tarball", cgo=True,
        notes="NVIDIA publishes the toolkit as .deb/.rpm packages in its own repository, which "
              "also hold libnvidia-container (C); this holds only the two Go binaries the OCI "
              "hook needs, for tests on machines without NVIDIA's repository or a GPU",
    ),
    "concourse": Component(
        name="concourse", version="8.2.5",
        # The module has no /v8 suffix, so the proxy names the v8.2.5 tag's
        # commit by its pseudo-version.
        module="github.com/concourse/concourse",
        module_version="v0.0.0-20260803033030-10d78df20d5e",
        main_package="./cmd/concourse",
        asset="concourse-{version}-linux-{arch}.tgz", binary="concourse/bin/concourse",
        pack="tarball",
        notes="the release tarball also carries containerd, runc, CNI plugins, "
              "init, fly-assets/ and resource-types/",
    ),
}


def cache_root() -> str:
    return os.environ.get("LABKIT_ARTIFACT_CACHE", DEFAULT_CACHE)


def artifact_dir(component: Component, arch: str, root: str | None = None) -> str:
    return os.path.join(root or cache_root(), component.name, component.version, f"linux-{arch}")


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums(path: str) -> dict[str, str]:
    """Parse a SHA256SUMS file (sha256sum's format) into {file: digest}."""
    sums = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            digest, _, name = line.partition("  ")
            if len(digest) != 64 or not name:
                raise CommandError(f"{path}: malformed line {line!r}")
            sums[name.lstrip("*")] = digest
    return sums


def is_cached(component: Component, arch: str, root: str | None = None) -> bool:
    """True when the asset is cached and matches its recorded checksum."""
    directory = artifact_dir(component, arch, root)
    sums_path = os.path.join(directory, "SHA256SUMS")
    asset = component.asset_name(arch)
    if not os.path.exists(sums_path) or not os.path.exists(os.path.join(directory, asset)):
        return False
    recorded = read_sums(sums_path).get(asset)
    return recorded == sha256_file(os.path.join(directory, asset))


def proxy_url() -> str:
    proxies = output(["go", "env", "GOPROXY"]).split(",")
    url = next((p for p in proxies if p.startswith("http")), None)
    if url is None:
        raise Unavailable(f"GOPROXY ({','.join(proxies)}) names no module proxy to build from")
    return url


def escape_module(path: str) -> str:
    """The proxy protocol's case encoding: 'A' becomes '!a'."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in path)


def check_available(component: Component, base: str | None = None) -> None:
    """Ask the module proxy for the version's metadata; raise Unavailable if refused."""
    url = f"{base or proxy_url()}/{escape_module(component.module)}/@v/{component.module_version}.info"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            json.load(resp)
    except urllib.error.HTTPError as err:
        body = err.read(200).decode(errors="replace").strip()
        raise Unavailable(
            f"{component.name} {component.version}: the Go module proxy answers "
            f"HTTP {err.code} ({body}) for {component.module}@{component.module_version}; "
            f"it cannot be built here") from err


def pack_zip(binary_path: str, dest: str, member: str) -> None:
    """Pack one executable as a release zip: fixed timestamps, mode 0755."""
    info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 << 16)
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(binary_path, "rb") as handle, zipfile.ZipFile(dest, "w") as archive:
        archive.writestr(info, handle.read())


def pack_tarball(folder: str, dest: str, prefix: str) -> None:
    """Pack a folder's executables under prefix/ in a tar.gz: fixed owners and times."""
    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 315532800   # 1980-01-01
        info.mode = 0o755
        return info
    with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed, \
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(os.listdir(folder)):
            archive.add(os.path.join(folder, name), arcname=f"{prefix}/{name}", filter=normalise)


def write_sums(directory: str, files: list[str]) -> None:
    lines = [f"{sha256_file(os.path.join(directory, f))}  {f}\n" for f in sorted(files)]
    with open(os.path.join(directory, "SHA256SUMS"), "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def go_build(component: Component, arch: str, out: str) -> None:
    """Build component's main package from its module, with upstream's go.mod."""
    env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="1" if component.cgo else "0",
               GOOS="linux", GOARCH=arch)
    info = json.loads(output(["go", "mod", "download", "-json",
                              f"{component.module}@{component.module_version}"], env=env))
    with tempfile.TemporaryDirectory(prefix=f"labkit-{component.name}-") as tmp:
        src = os.path.join(tmp, "src")
        shutil.copytree(info["Dir"], src)
        for root, dirs, files in os.walk(src):
            for entry in dirs + files:
                os.chmod(os.path.join(root, entry), 0o755 if entry in dirs else 0o644)
        for module, version in component.nested_replaces:
            run(["go", "mod", "edit", "-replace", f"{module}={module}@{version}"],
                cwd=src, env=env, capture=True)
        packages = component.main_package.split()
        for package in packages:
            # One package: out is the binary; several: out is a directory.
            target = out if len(packages) == 1 else os.path.join(out, os.path.basename(package))
            run(["go", "build", "-trimpath", "-ldflags", " ".join(("-s", "-w", *component.ldflags)),
                 "-o", target, package], cwd=src, env=env, capture=True)


def build(component: Component, arch: str = "amd64", force: bool = False) -> str:
    directory = artifact_dir(component, arch)
    if not force and is_cached(component, arch):
        say(f"{component.name} {component.version} linux-{arch} is cached in {directory}")
        return "cached"
    if shutil.which("go") is None:
        raise CommandError(f"go is not installed (or not on PATH): {MISSING_HINTS['go']}")
    check_available(component)
    if component.pack not in ("zip", "bin-tarball"):
        raise Unavailable(f"{component.name}: packing its {component.pack} release layout "
                          f"is not written yet ({component.notes})")
    say(f"building {component.name} {component.version} linux-{arch} from "
        f"{component.module}@{component.module_version}")
    started = time.monotonic()
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-out-") as tmp:
        binary = os.path.join(tmp, component.binary_name(arch))
        if component.pack == "bin-tarball":
            os.makedirs(binary)
        go_build(component, arch, binary)
        if component.pack == "zip":
            pack_zip(binary, os.path.join(directory, component.asset_name(arch)),
                     component.binary_name(arch))
        else:
            pack_tarball(binary, os.path.join(directory, component.asset_name(arch)),
                         component.binary_name(arch))
    write_sums(directory, [component.asset_name(arch)])
    build_info = {
        "component": component.name, "version": component.version,
        "source": f"{component.module}@{component.module_version} (Go module proxy)",
        "go": output(["go", "version"]),
        "official_release": False,
        "nested_replaces": [f"{m}@{v}" for m, v in component.nested_replaces],
        "cgo": component.cgo,
        "notes": component.notes,
        "seconds": round(time.monotonic() - started, 1),
    }
    with open(os.path.join(directory, "BUILD-INFO.json"), "w", encoding="utf-8") as handle:
        json.dump(build_info, handle, indent=2)
    say(f"built {component.name} in {build_info['seconds']}s into {directory}")
    return "built"


def build_all(names: list[str] | None = None, arch: str = "amd64",
              force: bool = False) -> dict[str, str]:
    """Build what can be built; report every component's outcome."""
    wanted = names or list(COMPONENTS)
    unknown = [n for n in wanted if n not in COMPONENTS]
    if unknown:
        raise CommandError(f"unknown component(s) {unknown}; known: {sorted(COMPONENTS)}")
    results = {}
    for name in wanted:
        try:
            results[name] = build(COMPONENTS[name], arch, force)
        except Unavailable as err:
            say(f"UNAVAILABLE: {err}")
            results[name] = "unavailable"
    return results
