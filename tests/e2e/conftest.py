"""Fixtures for the end-to-end suite, run by `make e2e` against the lab that `make lab` brings up.

Everything here talks to the lab only: the proxy published on loopback
(`https://localhost:<LABKIT_PROXY_PORT>`) and the lab's own containers
(`docker exec`). Shared by every tests/e2e/test_*.py:

- `lab`: the lab's access values from `.lab/access.env` (CONCOURSE_URL,
  CONCOURSE_USER/PASSWORD, PROXY_USER/PASSWORD) and what labkit decided about
  the release archive (`.lab/concourse.json`), plus `lab.exec(host, ...)`,
  `lab.container(host)` and `lab.ca_cert` (the proxy's certificate, read from
  the web container, so that TLS is verified rather than switched off).
- `concourse_required`: skips a test with SKIP_REASON when the lab was
  brought up without a Concourse release archive (the Concourse tiers were
  skipped); the summary then prints `SKIPPED: ...` in a line of its own.
  Use it as a fixture argument or with `@pytest.mark.usefixtures`.
- `proxy`: a requests.Session that passes the proxy's basic auth and trusts
  the lab's certificate; `url(path)` joins the proxy URL.
- `fly`: the fly that the web node serves at /api/v1/cli, downloaded through
  the proxy into a temporary directory and logged in as the lab's Concourse
  user on target `lab` (`fly.run("pipelines")`, `fly.json("workers")`).
- `workers_registered`: the names of the running workers (through fly).
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shlex
import subprocess
import ssl
import tarfile
import textwrap
import threading
import time
import uuid

import pytest
import requests
import requests.adapters
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.path.join(ROOT, ".lab")
SKIP_REASON = "no Concourse release archive (set CONCOURSE_RELEASE_ARCHIVE)"
SKIP_LINE = f"SKIPPED: {SKIP_REASON}"
LAB_PREFIX = os.environ.get("LABKIT_LAB", "concourse-gpu-kit-lab")

with open(os.path.join(ROOT, "roles", "concourse_release", "defaults", "main.yml"), encoding="utf-8") as _f:
    CONCOURSE_VERSION = str(yaml.safe_load(_f)["concourse_release_version"])


def read_env_file(path: str) -> dict[str, str]:
    """KEY='value' lines, as labkit writes .lab/access.env."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.rstrip("\n").split("=", 1)
                values[key] = shlex.split(value)[0] if value else ""
    return values


@dataclasses.dataclass
class Lab:
    access: dict
    concourse: dict
    ca_cert: str

    @property
    def url(self) -> str:
        return self.access["CONCOURSE_URL"]

    @property
    def has_concourse(self) -> bool:
        return bool(self.concourse.get("archive"))

    @staticmethod
    def container(host: str) -> str:
        return f"{LAB_PREFIX}-{host}"

    def exec(self, host: str, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run argv in a lab container (docker exec); text output."""
        result = subprocess.run(["docker", "exec", self.container(host), *argv],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{host}: {shlex.join(argv)} exited {result.returncode}:\n"
                                 f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result

    def sh(self, host: str, script: str, **kwargs) -> subprocess.CompletedProcess:
        return self.exec(host, "sh", "-c", script, **kwargs)

    def playbook_args(self) -> list[str]:
        """The arguments labkit ran site.yml with (--skip-tags concourse without an archive)."""
        return list(self.concourse.get("playbook_args", []))

    def playbook_env(self) -> dict[str, str]:
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        if self.concourse.get("archive"):
            env["CONCOURSE_RELEASE_ARCHIVE"] = self.concourse["archive"]
        return env

    def site(self, *extra: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        """site.yml against the lab with labkit's arguments and these; it must exit 0."""
        result = subprocess.run(["ansible-playbook", "-i", "inventories/lab/hosts.yml", "site.yml",
                                 *self.playbook_args(), *extra], cwd=ROOT, env=self.playbook_env(),
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stdout[-5000:]
        return result


def changed_per_host(output: str) -> dict[str, int]:
    """The last PLAY RECAP's changed= count for each host."""
    recap = output[output.rindex("PLAY RECAP"):]
    return {host: int(count) for host, count in re.findall(r"^(\S+)\s*:.*\bchanged=(\d+)", recap, re.M)}


# playbooks/lab/registry.yml pushes scripts/labkit/taskimage.py's image here.
TASK_IMAGE = {"repository": "registry:5000/kit/task", "tag": "bookworm", "insecure": True}


def task_file(tmp_path, script: str, params: dict | None = None, inputs: tuple = ()) -> str:
    """A one-off task config (for fly execute) running script with the lab registry's image; its path."""
    config = {
        "platform": "linux",
        "image_resource": {"type": "registry-image", "source": TASK_IMAGE},
        "run": {"path": "sh", "args": ["-ec", textwrap.dedent(script)]},
    }
    if params:
        config["params"] = params
    if inputs:
        config["inputs"] = [{"name": name} for name in inputs]
    path = tmp_path / f"task-{uuid.uuid4().hex[:8]}.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return str(path)


def wait_for(probe, timeout: float, interval: float = 2.0, what: str = "condition"):
    """Call probe() until it returns a true value; that value, or AssertionError naming the last error."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as err:  # noqa: BLE001 - reported below
            last = err
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout:.0f}s (last: {last!r})")


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    access_file = os.path.join(LAB_DIR, "access.env")
    if not os.path.exists(access_file):
        pytest.fail(f"{access_file} is missing: bring the lab up first (make lab, or make e2e)")
    access = read_env_file(access_file)
    concourse = {}
    state = os.path.join(LAB_DIR, "concourse.json")
    if os.path.exists(state):
        with open(state, encoding="utf-8") as handle:
            concourse = json.load(handle)
    lab_ = Lab(access=access, concourse=concourse, ca_cert="")
    cert = lab_.exec("web", "sh", "-c", "cat /etc/nginx/tls/*.crt").stdout
    path = tmp_path_factory.mktemp("lab") / "proxy-ca.crt"
    path.write_text(cert)
    lab_.ca_cert = str(path)
    return lab_


@pytest.fixture(scope="session")
def concourse_required(lab):
    if not lab.has_concourse:
        pytest.skip(SKIP_REASON)


def pytest_terminal_summary(terminalreporter):
    """Say SKIP_LINE in a line of its own when a test was skipped for want of an archive."""
    for report in terminalreporter.stats.get("skipped", []):
        if SKIP_REASON in str(report.longrepr):
            terminalreporter.write_line(SKIP_LINE)
            return


class _TrustOnly(requests.adapters.HTTPAdapter):
    """Verifies the server against one certificate file. The kit's self-signed
    proxy certificate is a leaf without CA constraints, which OpenSSL will not
    take as a trust anchor unless partial chains are allowed (fly, in Go,
    takes it as it is); the certificate and the host name are still checked."""

    def __init__(self, cafile: str):
        self._context = ssl.create_default_context(cafile=cafile)
        self._context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)


class ProxySession(requests.Session):
    def __init__(self, base: str, cafile: str):
        super().__init__()
        self.base = base
        self.mount("https://", _TrustOnly(cafile))

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def proxy(lab) -> ProxySession:
    """A session with the proxy's basic auth, verifying the lab's certificate."""
    session = ProxySession(lab.url, lab.ca_cert)
    session.auth = (lab.access["PROXY_USER"], lab.access["PROXY_PASSWORD"])
    yield session
    session.close()


@pytest.fixture
def anonymous(lab) -> ProxySession:
    """A session without credentials, verifying the lab's certificate."""
    session = ProxySession(lab.url, lab.ca_cert)
    yield session
    session.close()


@dataclasses.dataclass
class Fly:
    path: str
    home: str
    target: str

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        env = dict(os.environ, HOME=self.home)
        result = subprocess.run([self.path, "-t", self.target, *args], env=env, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"fly {shlex.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return result

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json").stdout)

    def start(self, *args: str) -> "FlyInBackground":
        """fly running in the background; its output (stdout and stderr) is read as it comes."""
        process = subprocess.Popen([self.path, "-t", self.target, *args], env=dict(os.environ, HOME=self.home),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
        reader.start()
        return FlyInBackground(process, lines, reader)


@dataclasses.dataclass
class FlyInBackground:
    process: subprocess.Popen
    lines: list[str]
    reader: threading.Thread

    @property
    def output(self) -> str:
        """What fly printed so far (all of it once wait() has returned)."""
        return "".join(self.lines)

    def wait(self, timeout: float) -> int:
        """fly's exit code, once it has exited and its output has been read to the end."""
        code = self.process.wait(timeout=timeout)
        self.reader.join(timeout=30)
        return code


@pytest.fixture(scope="session")
def fly(lab, concourse_required, tmp_path_factory) -> Fly:
    """fly from the web node's /api/v1/cli (through the proxy), logged in on target `lab`."""
    home = tmp_path_factory.mktemp("fly-home")
    with ProxySession(lab.url, lab.ca_cert) as session:
        response = session.get(lab.url + "/api/v1/cli", params={"arch": "amd64", "platform": "linux"},
                               timeout=120)
    assert response.status_code == 200, f"/api/v1/cli answered {response.status_code}"
    if response.content[:2] == b"\x1f\x8b":  # a tgz holding fly
        with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
            (home / "fly").write_bytes(archive.extractfile(archive.getmember("fly")).read())
    else:  # 8.2.5 serves the fly binary itself (seen in molecule/concourse_web)
        assert response.content[:4] == b"\x7fELF", "/api/v1/cli served neither fly nor a tgz of it"
        (home / "fly").write_bytes(response.content)
    os.chmod(home / "fly", 0o755)
    client = Fly(path=str(home / "fly"), home=str(home), target="lab")
    client.run("login", "-c", lab.url, "--ca-cert", lab.ca_cert, "-n", "main",
               "-u", lab.access["CONCOURSE_USER"], "-p", lab.access["CONCOURSE_PASSWORD"])
    return client


@pytest.fixture
def workers_registered(fly) -> list[str]:
    return [w["name"] for w in fly.json("workers") if w.get("state") == "running"]
