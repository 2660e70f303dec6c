"""VictoriaLogs: the pinned build, where it listens, its limits, OTLP in and LogsQL out."""
import base64
import json
import time
import uuid

PORT = 9428


def address(host):
    return host.check_output("hostname -I").split()[0]


def api(host, path):
    return f"http://{address(host)}:{PORT}{path}"


# --- a minimal OTLP/protobuf encoder (VictoriaLogs takes protobuf only) ------

def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, payload):
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _fixed64(number, value):
    return _varint(number << 3 | 1) + value.to_bytes(8, "little")


def _any_string(text):
    return _field(1, text.encode())                       # AnyValue.string_value


def _key_value(key, text):
    return _field(1, key.encode()) + _field(2, _any_string(text))


def otlp_logs(resource, message, time_ns):
    """ExportLogsServiceRequest with one resource, one scope, one record."""
    record = _fixed64(1, time_ns) + _field(5, _any_string(message))  # time_unix_nano, body
    scope_logs = _field(2, record)                                     # ScopeLogs.log_records
    res = b"".join(_field(1, _key_value(k, v)) for k, v in resource.items())
    resource_logs = _field(1, res) + _field(2, scope_logs)             # resource, scope_logs
    return _field(1, resource_logs)                                    # resource_logs


def test_encoder_matches_protobufs_wire_format():
    assert _varint(300) == b"\xac\x02"
    assert _field(1, b"ab") == b"\x0a\x02ab"


# --- the tests -----------------------------------------------------------------

def test_pinned_build(host):
    assert "v1.52.1" in host.check_output("/usr/local/bin/victoria-logs -version")


def test_unit_running_hardened(host):
    unit = host.service("victorialogs")
    assert unit.is_running and unit.is_enabled
    props = host.check_output("systemctl show victorialogs -p User -p NoNewPrivileges "
                              "-p ProtectSystem -p Restart")
    for expected in ("User=victorialogs", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "Restart=on-failure"):
        assert expected in props, props
    data = host.file("/var/lib/victorialogs")
    assert data.user == "victorialogs" and data.mode == 0o750


def test_listens_on_the_private_address_only(host):
    sockets = host.check_output(f"ss -Htln '( sport = :{PORT} )'").splitlines()
    assert [line.split()[3] for line in sockets] == [f"{address(host)}:{PORT}"], sockets


def test_healthy(host):
    assert host.check_output(f"curl -fsS {api(host, '/health')}") == "OK"


def test_retention_and_disk_limits_in_effect(host):
    metrics = host.check_output(f"curl -fsS {api(host, '/metrics')}")
    for name, value in (("retentionPeriod", "7d"), ("retention.maxDiskSpaceUsageBytes", "1GiB"),
                        ("storage.minFreeDiskSpaceBytes", "1GiB"),
                        ("storageDataPath", "/var/lib/victorialogs")):
        assert f'flag{{name="{name}", value="{value}"' in metrics, name


def test_otlp_in_and_logsql_out_with_its_labels(host):
    token = f"molecule-{uuid.uuid4()}"
    unit = "molecule-probe.service"
    body = otlp_logs({"host": "probe-host", "unit": unit, "environment": "molecule"},
                     token, time.time_ns())
    path = f"/tmp/{token}.pb"
    host.check_output(f"echo {base64.b64encode(body).decode()} | base64 -d > {path}")
    host.run_expect([0], f"curl -fsS -H 'Content-Type: application/x-protobuf' "
                         f"--data-binary @{path} {api(host, '/insert/opentelemetry/v1/logs')}")
    query = f'_stream:{{host="probe-host",unit="{unit}"}} "{token}"'
    deadline = time.monotonic() + 15
    rows = []
    while time.monotonic() < deadline and not rows:
        out = host.check_output(f"curl -fsS {api(host, '/select/logsql/query')} "
                                f"--data-urlencode {json.dumps('query=' + query)}")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        time.sleep(0.5)
    assert len(rows) == 1, rows
    assert rows[0]["_msg"] == token
    assert rows[0]["host"] == "probe-host" and rows[0]["unit"] == unit
    assert rows[0]["environment"] == "molecule"


def test_rejects_json_on_the_otlp_endpoint(host):
    """The OTLP endpoint speaks protobuf only: the agent must send protobuf."""
    result = host.run(f"curl -sS -o /dev/null -w '%{{http_code}}' -H 'Content-Type: application/json' "
                      f"--data '{{}}' {api(host, '/insert/opentelemetry/v1/logs')}")
    assert result.stdout.strip() == "400", result.stdout
