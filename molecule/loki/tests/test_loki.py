"""Loki: the pinned version, where it listens, and a log line in and out."""
import json
import time
import urllib.parse
import uuid


def address(host):
    return host.check_output("hostname -I").split()[0]


def api(host, path):
    return f"http://{address(host)}:3100{path}"


def assert_found(host, query: str, token: str, timeout: float = 15) -> None:
    """Query Loki (query_range) until the token shows up; fail with the last answer."""
    deadline = time.monotonic() + timeout
    found = ""
    while time.monotonic() < deadline:
        found = host.check_output(f"curl -fsS '{api(host, '/loki/api/v1/query_range')}?query={query}&limit=5'")
        if token in found:
            return
        time.sleep(0.5)
    raise AssertionError(f"{token} not found: {found}")


def test_pinned_version(host):
    assert "loki, version 3.7.8" in host.check_output("/usr/local/bin/loki -version")


def test_unit_running_hardened(host):
    unit = host.service("loki")
    assert unit.is_running and unit.is_enabled
    props = host.check_output("systemctl show loki -p User -p NoNewPrivileges -p ProtectSystem -p Restart")
    for expected in ("User=loki", "NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure"):
        assert expected in props, props


def test_config_verifies(host):
    host.run_expect([0], "/usr/local/bin/loki -verify-config -config.file=/etc/loki/config.yml")
    config = host.file("/etc/loki/config.yml")
    assert config.user == "root" and config.group == "loki" and config.mode == 0o640


def test_listens_on_private_address_and_loopback_only(host):
    sockets = host.check_output("ss -Htln '( sport = :3100 or sport = :9096 )'").splitlines()
    loki = sorted(line.split()[3] for line in sockets)
    assert loki == sorted([f"{address(host)}:3100", "127.0.0.1:9096"]), loki


def test_ready(host):
    assert host.check_output(f"curl -fsS {api(host, '/ready')}") == "ready"


def test_retention_in_effect(host):
    config = host.check_output(f"curl -fsS {api(host, '/config')}")
    assert "retention_period: 1w" in config or "retention_period: 168h" in config, config


def test_push_and_query_back(host):
    token = f"molecule-{uuid.uuid4()}"
    now_ns = str(time.time_ns())
    body = json.dumps({"streams": [{"stream": {"job": "molecule", "host": host.backend.get_hostname()},
                                    "values": [[now_ns, token]]}]})
    host.run_expect([0], f"curl -fsS -H 'Content-Type: application/json' -X POST "
                         f"{api(host, '/loki/api/v1/push')} --data-raw '{body}'")
    query = urllib.parse.quote('{job="molecule"} |= "' + token + '"')
    assert_found(host, query, token)


def test_otlp_from_the_agent_with_host_and_unit_labels(host):
    """A logger line in a unit arrives over OTLP (/otlp) with host and unit as labels."""
    token = f"molecule-{uuid.uuid4()}"
    unit = f"kit-probe-{token[-12:]}"
    host.run_expect([0], f"systemd-run --quiet --wait --unit={unit} "
                         f"/bin/sh -c '(echo {token}; sleep 2) | logger -t kit-probe'")
    hostname = host.check_output("hostname")
    selector = f'{{host="{hostname}",unit="{unit}.service",environment="molecule"}}'
    query = urllib.parse.quote(selector + ' |= "' + token + '"')
    assert_found(host, query, token)
    labels = host.check_output(f"curl -fsS '{api(host, '/loki/api/v1/labels')}'")
    assert '"host"' in labels and '"unit"' in labels, labels
