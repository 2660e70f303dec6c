"""labkit's choice of the Concourse release archive for the lab."""
import hashlib
import http.server
import threading

import pytest

from labkit import concourse
from labkit.shell import CommandError
from conftest import LOOPBACK

pytestmark = LOOPBACK  # a release site on loopback


def rel(url, sha256=""):
    return {"version": "9.9.9", "asset": "concourse-9.9.9-linux-amd64.tgz", "url": url, "sha256": sha256}


def test_release_comes_from_the_role_defaults():
    found = concourse.release()
    assert found["url"] == (f"https://github.com/concourse/concourse/releases/download/v{found['version']}"
                            f"/concourse-{found['version']}-linux-amd64.tgz")
    assert found["asset"] == f"concourse-{found['version']}-linux-amd64.tgz"


def test_the_given_archive_wins(tmp_path):
    archive = tmp_path / "c.tgz"
    archive.write_bytes(b"x")
    assert concourse.find_archive({"CONCOURSE_RELEASE_ARCHIVE": str(archive)}, rel("http://127.0.0.1:9/")) \
        == str(archive)


def test_a_given_archive_that_is_missing_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        concourse.find_archive({"CONCOURSE_RELEASE_ARCHIVE": str(tmp_path / "nope.tgz")}, rel("http://127.0.0.1:9/"))


def test_no_archive_when_the_download_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_ARTIFACT_CACHE", str(tmp_path))
    closed = "http://127.0.0.1:9/concourse.tgz"  # discard port: nothing listens
    assert concourse.find_archive({}, rel(closed), timeout=2) is None


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "concourse.tgz").write_bytes(b"stand-in archive")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/concourse.tgz"
    server.shutdown()


def test_a_download_is_verified_and_cached(tmp_path, monkeypatch, site):
    root, url = site
    monkeypatch.setenv("LABKIT_ARTIFACT_CACHE", str(tmp_path / "cache"))
    digest = hashlib.sha256(b"stand-in archive").hexdigest()
    assert concourse.find_archive({}, rel(url, "0" * 64), timeout=5) is None
    path = concourse.find_archive({}, rel(url, digest), timeout=5)
    assert path == str(tmp_path / "cache" / "concourse" / "9.9.9" / "linux-amd64" / "concourse-9.9.9-linux-amd64.tgz")
    assert open(path + ".sha256").read().split()[0] == digest
    # Without a pinned checksum, a mirror's SHA-256 file beside the archive is used.
    (root / "concourse.tgz.sha256").write_text(f"{digest}  concourse.tgz\n")
    monkeypatch.setenv("LABKIT_ARTIFACT_CACHE", str(tmp_path / "cache2"))
    assert concourse.find_archive({}, rel(url), timeout=5)


def test_without_a_pin_upstreams_sha1_file_is_used_and_named(tmp_path, monkeypatch, site, capsys):
    """Upstream publishes <archive>.sha1 beside each release archive, not a SHA-256."""
    root, url = site
    sha1 = hashlib.sha1(b"stand-in archive").hexdigest()  # noqa: S324 - upstream's published checksum
    monkeypatch.setenv("LABKIT_ARTIFACT_CACHE", str(tmp_path / "cache"))
    assert concourse.find_archive({}, rel(url), timeout=5) is None
    assert "no checksum file beside the archive" in capsys.readouterr().err
    (root / "concourse.tgz.sha1").write_text(f"{'0' * 40}  concourse.tgz\n")
    assert concourse.find_archive({}, rel(url), timeout=5) is None
    assert f"expected {'0' * 40} from {url}.sha1: not used" in capsys.readouterr().err
    (root / "concourse.tgz.sha1").write_text(f"{sha1}  concourse.tgz\n")
    path = concourse.find_archive({}, rel(url), timeout=5)
    assert path and open(path + ".sha256").read().split()[0] == hashlib.sha256(b"stand-in archive").hexdigest()
    assert f"SHA1 {sha1} matches {url}.sha1" in capsys.readouterr().err
    # A pinned SHA-256 wins over the file beside the archive.
    monkeypatch.setenv("LABKIT_ARTIFACT_CACHE", str(tmp_path / "cache2"))
    assert concourse.find_archive({}, rel(url, "f" * 64), timeout=5) is None
    assert "from the SHA-256 pinned in concourse_release_checksums: not used" in capsys.readouterr().err
