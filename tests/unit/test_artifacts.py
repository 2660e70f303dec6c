"""Artifact cache: checksums, release packing and the proxy's refusals."""
import hashlib
import http.server
import os
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile

import pytest

from conftest import LOOPBACK, ROOT
from labkit import artifacts

pytestmark = LOOPBACK  # a proxy and a release site on loopback


@pytest.fixture
def component():
    return artifacts.Component(
        name="demo", version="1.2.3", module="example.com/Demo/demo",
        module_version="v1.2.3", main_package="./cmd/demo",
        asset="demo-linux-{arch}.zip", binary="demo-linux-{arch}")


def test_sums_round_trip(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"alpha")
    (tmp_path / "b.tgz").write_bytes(b"beta")
    artifacts.write_sums(str(tmp_path), ["b.tgz", "a.zip"])
    sums = artifacts.read_sums(str(tmp_path / "SHA256SUMS"))
    assert sums == {"a.zip": hashlib.sha256(b"alpha").hexdigest(),
                    "b.tgz": hashlib.sha256(b"beta").hexdigest()}
    # sha256sum's own format, so `sha256sum -c SHA256SUMS` checks it too.
    first = (tmp_path / "SHA256SUMS").read_text().splitlines()[0]
    assert first == f"{hashlib.sha256(b'alpha').hexdigest()}  a.zip"


def test_read_sums_rejects_garbage(tmp_path):
    (tmp_path / "SHA256SUMS").write_text("nothex  file\n")
    with pytest.raises(artifacts.CommandError, match="malformed"):
        artifacts.read_sums(str(tmp_path / "SHA256SUMS"))


def test_cache_hit_needs_a_matching_checksum(tmp_path, component):
    root = str(tmp_path)
    directory = artifacts.artifact_dir(component, "amd64", root)
    assert directory == os.path.join(root, "demo", "1.2.3", "linux-amd64")
    assert not artifacts.is_cached(component, "amd64", root)
    os.makedirs(directory)
    asset = os.path.join(directory, "demo-linux-amd64.zip")
    with open(asset, "wb") as handle:
        handle.write(b"release")
    artifacts.write_sums(directory, ["demo-linux-amd64.zip"])
    assert artifacts.is_cached(component, "amd64", root)
    with open(asset, "ab") as handle:
        handle.write(b"tampered")
    assert not artifacts.is_cached(component, "amd64", root)


def test_pack_zip_is_the_release_layout(tmp_path):
    binary = tmp_path / "demo"
    binary.write_bytes(b"\x7fELF demo")
    dest = tmp_path / "demo-linux-amd64.zip"
    artifacts.pack_zip(str(binary), str(dest), "demo-linux-amd64")
    first = hashlib.sha256(dest.read_bytes()).hexdigest()
    artifacts.pack_zip(str(binary), str(dest), "demo-linux-amd64")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == first, "packing is reproducible"
    with zipfile.ZipFile(dest) as archive:
        (info,) = archive.infolist()
        assert info.filename == "demo-linux-amd64"
        assert stat.S_IMODE(info.external_attr >> 16) == 0o755
        assert archive.read(info) == b"\x7fELF demo"


def test_module_path_escaping():
    assert artifacts.escape_module("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml"
    assert artifacts.escape_module("github.com/VictoriaMetrics/VictoriaLogs") == \
        "github.com/!victoria!metrics/!victoria!logs"


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A stand-in module proxy on loopback: serves one version, refuses the rest."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/example.com/!demo/demo/@v/v1.2.3.info":
            body, code = b'{"Version":"v1.2.3"}', 200
        else:
            body, code = b"This module version is not available.", 403
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_available_module_passes(proxy, component):
    artifacts.check_available(component, base=proxy)


def test_refused_module_is_reported_unavailable(proxy, component):
    missing = artifacts.Component(**{**component.__dict__, "module_version": "v9.9.9"})
    with pytest.raises(artifacts.Unavailable) as err:
        artifacts.check_available(missing, base=proxy)
    assert "HTTP 403" in str(err.value) and "cannot be built here" in str(err.value)


def test_pack_tarball_is_reproducible_and_executable(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("nvidia-ctk", "nvidia-container-runtime-hook"):
        (folder / name).write_bytes(b"\x7fELF " + name.encode())
    dest = tmp_path / "t.tar.gz"
    artifacts.pack_tarball(str(folder), str(dest), "usr/bin")
    first = hashlib.sha256(dest.read_bytes()).hexdigest()
    artifacts.pack_tarball(str(folder), str(dest), "usr/bin")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == first, "packing is reproducible"
    with tarfile.open(dest) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == ["usr/bin/nvidia-container-runtime-hook", "usr/bin/nvidia-ctk"]
        assert all(m.mode == 0o755 and m.uid == 0 for m in members)


@pytest.mark.parametrize("name", sorted(artifacts.COMPONENTS))
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_asset_and_binary_names_expand(name, arch):
    component = artifacts.COMPONENTS[name]
    for expanded in (component.asset_name(arch), component.binary_name(arch)):
        assert "{" not in expanded and "}" not in expanded, expanded
    assert arch in component.asset_name(arch) and component.version in artifacts.artifact_dir(component, arch)


def test_missing_go_is_one_line_naming_the_fix(tmp_path):
    """Not a traceback: the error says what to install."""
    env = dict(os.environ, PATH=str(tmp_path), LABKIT_ARTIFACT_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=os.path.join(ROOT, "scripts"))
    proc = subprocess.run([sys.executable, "-m", "labkit", "artifacts", "nvidia-container-toolkit"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("labkit: error: go is not installed") and "golang-go" in lines[0]


def test_a_missing_program_is_a_command_error():
    with pytest.raises(artifacts.CommandError, match="not installed"):
        artifacts.run(["labkit-no-such-program"])


def test_nothing_agpl_is_a_component():
    """No AGPL code is built here (README, "Licence"): not Loki, nor Alloy, which links it."""
    for component in artifacts.COMPONENTS.values():
        assert "grafana/loki" not in component.module and "grafana/alloy" not in component.module
    assert not {"loki", "alloy"} & set(artifacts.COMPONENTS)


def test_pack_single_tar_is_the_release_layout(tmp_path):
    binary = tmp_path / "victoria-logs-prod"
    binary.write_bytes(b"\x7fELF vl")
    dest = tmp_path / "vl.tar.gz"
    artifacts.pack_single_tar(str(binary), str(dest), "victoria-logs-prod")
    first = hashlib.sha256(dest.read_bytes()).hexdigest()
    artifacts.pack_single_tar(str(binary), str(dest), "victoria-logs-prod")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == first, "packing is reproducible"
    with tarfile.open(dest) as archive:
        (member,) = archive.getmembers()
        assert member.name == "victoria-logs-prod" and member.mode == 0o755 and member.uid == 0
        assert archive.extractfile(member).read() == b"\x7fELF vl"


def test_local_module_cache_follows_its_sources(tmp_path):
    """A cached build of a repository module is stale once its sources change."""
    project = tmp_path / "project"
    (project / "mod").mkdir(parents=True)
    (project / "mod" / "go.mod").write_text("module example.com/m\n")
    (project / "mod" / "main.go").write_text("package main\nfunc main() {}\n")
    component = artifacts.Component(
        name="m", version="1.0.0", module="example.com/m", module_version="(this repository)",
        main_package=".", asset="m_{version}_linux_{arch}.tar.gz", binary="m",
        pack="tar", local_dir="mod")
    before = artifacts.source_digest(component, str(project))
    (project / "mod" / "main.go").write_text("package main\nfunc main() { println() }\n")
    assert artifacts.source_digest(component, str(project)) != before
    (project / "mod" / "README.md").write_text("not a source\n")
    after = artifacts.source_digest(component, str(project))
    (project / "mod" / "README.md").write_text("still not a source\n")
    assert artifacts.source_digest(component, str(project)) == after
