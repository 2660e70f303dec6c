#!/usr/bin/python3
"""Push a one-layer image directory (scripts/labkit/taskimage.py) to a registry.

Usage: push_image.py DIR REGISTRY_URL   (for example http://127.0.0.1:5000)

DIR holds layer.tar.gz, config.json, manifest.json and image.json. Blobs the
registry has are not sent again; the manifest is put only when the tag
points elsewhere. Prints one JSON line: {"changed": bool, "digest": ...}.
Standard library only: it runs on the lab's registry host.
"""
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def digest_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def push_blob(base, repo, path):
    digest = digest_of(path)
    status, _, _ = request("HEAD", f"{base}/v2/{repo}/blobs/{digest}")
    if status == 200:
        return False
    status, headers, body = request("POST", f"{base}/v2/{repo}/blobs/uploads/", data=b"")
    if status != 202:
        raise SystemExit(f"upload of {path} refused: HTTP {status} {body[:200]!r}")
    location = urllib.parse.urljoin(base + "/", headers["Location"])
    sep = "&" if "?" in location else "?"
    with open(path, "rb") as handle:
        data = handle.read()
    status, _, body = request("PUT", f"{location}{sep}digest={digest}", data=data,
                              headers={"Content-Type": "application/octet-stream"})
    if status != 201:
        raise SystemExit(f"upload of {path} failed: HTTP {status} {body[:200]!r}")
    return True


def main(argv):
    directory, base = argv[1], argv[2].rstrip("/")
    with open(os.path.join(directory, "image.json"), encoding="utf-8") as handle:
        image = json.load(handle)
    repo, tag = image["repository"], image["tag"]
    with open(os.path.join(directory, "manifest.json"), "rb") as handle:
        manifest = handle.read()
    want = "sha256:" + hashlib.sha256(manifest).hexdigest()
    status, headers, _ = request("HEAD", f"{base}/v2/{repo}/manifests/{tag}",
                                 headers={"Accept": MEDIA_MANIFEST})
    if status == 200 and headers.get("Docker-Content-Digest") == want:
        print(json.dumps({"changed": False, "digest": want}))
        return 0
    for name in ("layer.tar.gz", "config.json"):
        push_blob(base, repo, os.path.join(directory, name))
    status, _, body = request("PUT", f"{base}/v2/{repo}/manifests/{tag}", data=manifest,
                              headers={"Content-Type": MEDIA_MANIFEST})
    if status != 201:
        raise SystemExit(f"manifest refused: HTTP {status} {body[:300]!r}")
    print(json.dumps({"changed": True, "digest": want}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
