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
    # Without a pinned checksum the published checksum file beside the archive is used.
    (root / "concourse.tgz.sha256").write_text(f"{digest}  concourse.tgz\n")
    monkeypatch.setenv("LABKIT_ARTIFACT_CACHE", str(tmp_path / "cache2"))
    assert concourse.find_archive({}, rel(url), timeout=5)
