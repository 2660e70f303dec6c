"""Which Concourse release archive the lab installs, if any.

In this order:
1. CONCOURSE_RELEASE_ARCHIVE (a path): used when the file exists (the role
   checks it against <archive>.sha256 beside it); an error when it does not.
2. The official archive downloaded earlier into the artifact cache.
3. One try at the official download (short timeout), verified against the
   SHA-256 pinned in roles/concourse_release/defaults/main.yml, or else the
   checksum file published beside the archive (upstream publishes
   `<archive>.sha1`; a mirror's `<archive>.sha256` is taken too); it says
   which value it used and where from, and keeps the archive in the
   artifact cache with its SHA-256 beside it.
Otherwise there is none: the lab runs site.yml with --skip-tags concourse
and says SKIP_LINE.
"""
from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request

import yaml

from . import artifacts
from .shell import CommandError, say

SKIP_REASON = "no Concourse release archive (set CONCOURSE_RELEASE_ARCHIVE)"
SKIP_LINE = f"SKIPPED: {SKIP_REASON}"
DEFAULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "roles", "concourse_release", "defaults", "main.yml")


def release(arch: str = "amd64", defaults_path: str = DEFAULTS) -> dict:
    """Version, asset name, URL and pinned SHA-256 (or '') from the role's defaults: one place."""
    with open(defaults_path, encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    version = str(defaults["concourse_release_version"])
    url = re.sub(r"\{\{\s*concourse_release_version\s*\}\}", version,
                 "".join(defaults["concourse_release_url"].split())).replace("{arch}", arch)
    return {"version": version, "asset": f"concourse-{version}-linux-{arch}.tgz", "url": url,
            "sha256": (defaults.get("concourse_release_checksums") or {}).get(arch, "")}


def cache_path(rel: dict, arch: str = "amd64") -> str:
    return os.path.join(artifacts.cache_root(), "concourse", rel["version"], f"linux-{arch}", rel["asset"])


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https URL from the defaults
        return response.read()


def download(rel: dict, dest: str, timeout: float = 10.0) -> str | None:
    """One try at the official archive; its path when it arrived and verified, else None (said why)."""
    try:
        data = _fetch(rel["url"], timeout)
    except (urllib.error.URLError, OSError, ValueError) as err:
        say(f"the official Concourse archive could not be downloaded ({getattr(err, 'reason', err)})")
        return None
    if rel["sha256"]:
        algorithm, expected, source = "sha256", rel["sha256"], "the SHA-256 pinned in concourse_release_checksums"
    else:
        algorithm, expected, source = published_checksum(rel["url"], timeout)
        if not expected:
            say(f"no SHA-256 pinned and no checksum file beside the archive ({source}): not used")
            return None
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        say(f"downloaded {rel['asset']} has {algorithm.upper()} {actual}, expected {expected} from {source}: not used")
        return None
    say(f"downloaded {rel['asset']}: {algorithm.upper()} {actual} matches {source}")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest + ".tmp", "wb") as handle:
        handle.write(data)
    os.replace(dest + ".tmp", dest)
    with open(dest + ".sha256", "w", encoding="utf-8") as handle:
        sha256 = actual if algorithm == "sha256" else hashlib.sha256(data).hexdigest()
        handle.write(f"{sha256}  {rel['asset']}\n")
    return dest


# The checksum files a release may publish beside an archive: upstream's
# first, then the SHA-256 some mirrors add. (algorithm, hex digits)
PUBLISHED_SUMS = (("sha1", 40), ("sha256", 64))


def published_checksum(url: str, timeout: float) -> tuple[str, str, str]:
    """(algorithm, expected digest, where it came from) from the file beside url; digest '' when none answered."""
    reasons = []
    for algorithm, digits in PUBLISHED_SUMS:
        try:
            words = _fetch(f"{url}.{algorithm}", timeout).decode().split()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reasons.append(f"{url}.{algorithm}: {getattr(err, 'reason', err)}")
            continue
        if words and re.fullmatch(f"[0-9a-f]{{{digits}}}", words[0]):
            return algorithm, words[0], f"{url}.{algorithm}"
        reasons.append(f"{url}.{algorithm} holds no {algorithm.upper()}")
    return "", "", "; ".join(reasons)


def find_archive(environ: dict | None = None, rel: dict | None = None, timeout: float = 10.0) -> str | None:
    """The archive the lab installs, or None when there is none."""
    environ = os.environ if environ is None else environ
    rel = rel or release()
    given = environ.get("CONCOURSE_RELEASE_ARCHIVE", "")
    if given:
        if not os.path.isfile(given):
            raise CommandError(f"CONCOURSE_RELEASE_ARCHIVE={given} does not exist")
        return os.path.abspath(given)
    cached = cache_path(rel)
    if os.path.isfile(cached) and os.path.isfile(cached + ".sha256"):
        return cached
    return download(rel, cached, timeout=timeout)
