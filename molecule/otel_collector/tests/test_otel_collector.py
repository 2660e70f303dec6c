"""The log agent: not root, validated config, and lines that really reach the store.

The store here is VictoriaLogs on the same host (the victorialogs role); the
agent is the kit's own collector build. A line written with `logger` in a
unit must be queryable with its host, unit and environment, and nothing
high-cardinality (pids, cursors) may come with it.
"""
import json
import time
import uuid

STORE = 9428
# What a record may carry: the store's own fields, the three labels, the
# syslog identifier, the severity, and the collector's scope (its receiver).
KEPT_FIELDS = {"_msg", "_time", "_stream", "_stream_id", "host", "unit", "environment",
               "identifier", "severity_number", "severity_text", "file",
               "scope.name", "scope.version"}


def address(host):
    return host.check_output("hostname -I").split()[0]


def query(host, logsql, want=1, timeout=15.0):
    """Rows LogsQL finds on the host's store, waiting up to timeout for want of them."""
    url = f"http://{address(host)}:{STORE}/select/logsql/query"
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        out = host.check_output(f"curl -fsS {url} --data-urlencode {json.dumps('query=' + logsql)}")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        if len(rows) >= want:
            break
        time.sleep(0.5)
    return rows


def test_pinned_build(host):
    out = host.check_output("/usr/local/bin/otelcol --version")
    assert "otelcol-kit" in out and "0.165.1" in out, out


def test_runs_as_its_own_user_in_the_journal_and_adm_groups(host):
    user = host.user("otelcol")
    assert user.uid != 0 and {"systemd-journal", "adm"} <= set(user.groups), user.groups
    pid = host.check_output("systemctl show -p MainPID --value otelcol")
    assert host.check_output(f"ps -o user= -p {pid}") == "otelcol"


def test_unit_running_hardened(host):
    unit = host.service("otelcol")
    assert unit.is_running and unit.is_enabled
    props = host.check_output("systemctl show otelcol -p NoNewPrivileges -p ProtectSystem -p Restart")
    for expected in ("NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure"):
        assert expected in props, props


def test_config_validates_and_is_private(host):
    host.run_expect([0], "/usr/local/bin/otelcol validate --config=/etc/otelcol/config.yaml")
    config = host.file("/etc/otelcol/config.yaml")
    assert config.user == "root" and config.group == "otelcol" and config.mode == 0o640
    assert "file_storage" in config.content_string


def test_a_logger_line_reaches_the_store_with_host_and_unit(host):
    token = f"molecule-{uuid.uuid4()}"
    unit = f"kit-probe-{token[-12:]}"
    # logger inside a transient unit, kept alive (reading stdin) after it
    # sent the line, so that journald can still tell which unit sent it.
    host.run_expect([0], f"systemd-run --quiet --wait --unit={unit} "
                         f"/bin/sh -c '(echo {token}; sleep 2) | logger -t kit-probe'")
    hostname = host.check_output("hostname")
    rows = query(host, f'_stream:{{host="{hostname}",unit="{unit}.service"}} "{token}"')
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["_msg"] == token
    assert row["environment"] == "molecule" and row["identifier"] == "kit-probe"
    assert set(row) <= KEPT_FIELDS, f"unexpected fields {set(row) - KEPT_FIELDS}"
    assert not any("pid" in k.lower() or "cursor" in k.lower() for k in row), row


def test_a_file_line_reaches_the_store_with_its_unit(host):
    token = f"molecule-{uuid.uuid4()}"
    host.run_expect([0], f"sh -c 'echo \"GET /{token} 200\" >> /var/log/kit-probe/access.log'")
    hostname = host.check_output("hostname")
    rows = query(host, f'_stream:{{host="{hostname}",unit="kit-probe.service"}} "{token}"')
    assert len(rows) == 1, rows
    assert rows[0]["_msg"] == f"GET /{token} 200"


def test_cursor_and_offsets_are_stored(host):
    listing = host.check_output("ls /var/lib/otelcol/storage")
    # The journald cursor, the probe file's offsets and the sending queue.
    for name in ("receiver_journald_", "receiver_filelog_probe", "exporter_otlp_http__logs"):
        assert name in listing.split(), listing
    storage = host.file("/var/lib/otelcol/storage")
    assert storage.user == "otelcol" and storage.mode == 0o750
