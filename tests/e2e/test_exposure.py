"""What answers where, in the lab (make e2e).

From a worker, the web node answers only on the TSA port (workers register
there), the log store's port (the agents ship logs there) and the proxy's
80/443 (public by design); PostgreSQL and Concourse's 8080 do not answer.
From this machine, only the proxy's published port answers: no lab
container publishes anything else. Every TCP port of the web node is
probed from each worker, so a service added later without a thought shows.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
import yaml

from conftest import ROOT

WORKERS = ("gpu-worker-1", "worker-2")
PROXY_PORTS = {80, 443}
TSA_PORT = 2222
CLOSED = {5432: "PostgreSQL", 8080: "Concourse's ATC"}

# Run inside a worker (python3 reads it from stdin): every TCP port of the web node that accepts a connection.
SCAN = """
import socket
open_ports = []
for port in range(1, 65536):
    probe = socket.socket()
    probe.settimeout(0.5)
    if probe.connect_ex(("web", port)) == 0:
        open_ports.append(port)
    probe.close()
print(" ".join(map(str, open_ports)))
"""


def log_port() -> int:
    """The log store's HTTP port in the lab: VictoriaLogs' 9428 or Loki's 3100."""
    path = os.path.join(ROOT, "inventories", "lab", "group_vars", "all", "logs.yml")
    store = "loki"
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            store = (yaml.safe_load(handle) or {}).get("kit_log_store", "loki")
    return {"victorialogs": 9428, "loki": 3100}[store]


@pytest.fixture(scope="module")
def open_from_workers(lab):
    found = {}
    for worker in WORKERS:
        # The TSA's forwarded ports change when a worker registers again:
        # take them before and after the scan.
        forwarded = tsa_forwarded_ports(lab)
        done = subprocess.run(["docker", "exec", "-i", lab.container(worker), "python3", "-"], input=SCAN,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        found[worker] = ({int(p) for p in done.stdout.split()}, forwarded | tsa_forwarded_ports(lab))
    return found


def tsa_forwarded_ports(lab) -> set[int]:
    """Ports Concourse's TSA forwards for registered workers (their Garden and
    Baggageclaim), which Concourse 8.2.5 binds on every interface of the web
    node (tsa/tsacmd/server.go; the README says to firewall them): the
    wildcard listeners of the concourse-web unit, read from the sockets'
    cgroups (`ss -e`). None when no web node runs."""
    done = subprocess.run(["docker", "exec", lab.container("web"), "ss", "-Hltne"],
                          capture_output=True, text=True, check=True)
    ports = set()
    for line in done.stdout.splitlines():
        fields = line.split()
        if "/concourse-web.service" in line and fields[3].rsplit(":", 1)[0] in ("*", "0.0.0.0", "[::]"):
            ports.add(int(fields[3].rsplit(":", 1)[1]))
    return ports


@pytest.mark.parametrize("worker", WORKERS)
def test_from_a_worker_only_the_tsa_logs_and_proxy_answer(open_from_workers, worker):
    open_ports, forwarded = open_from_workers[worker]
    allowed = PROXY_PORTS | {TSA_PORT, log_port()} | forwarded
    assert open_ports <= allowed, f"the web node answers {worker} on {sorted(open_ports - allowed)} too"
    for port, what in CLOSED.items():
        assert port not in open_ports, f"{what} (:{port}) answers {worker}"
    assert log_port() in open_ports, f"the log store (:{log_port()}) does not answer {worker}"


@pytest.mark.usefixtures("concourse_required")
@pytest.mark.parametrize("worker", WORKERS)
def test_from_a_worker_the_tsa_answers(open_from_workers, worker):
    assert TSA_PORT in open_from_workers[worker][0], f"the TSA (:{TSA_PORT}) does not answer {worker}"


def test_from_this_machine_only_the_proxy_is_published(lab):
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}", "--filter", f"name=^{lab.container('')}"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert lab.container("web") in names, names
    published = {}
    for name in names:
        ports = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Ports}}", name],
                                          capture_output=True, text=True, check=True).stdout) or {}
        bound = {key: [(b["HostIp"], b["HostPort"]) for b in value] for key, value in ports.items() if value}
        if bound:
            published[name] = bound
    proxy_port = lab.url.rsplit(":", 1)[1]
    assert published == {lab.container("web"): {"443/tcp": [("127.0.0.1", proxy_port)]}}, published
    with socket.create_connection(("127.0.0.1", int(proxy_port)), timeout=5):
        pass
