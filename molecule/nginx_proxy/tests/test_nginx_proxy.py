"""The proxy's rules, seen from a client and from the upstream probe.

Requests go to nginx on the host itself (https://127.0.0.1); the upstream
probe (files/upstream_probe.py) answers with what nginx forwarded.
"""
import hashlib
import json
import os
import re
import shlex
import uuid

import pytest

BASE = "https://127.0.0.1"
OPS = "ops:correct-horse-battery"
# The one token the probe's /api/v1/user accepts (files/upstream_probe.py).
ACCEPTED = "'Authorization: Bearer kit-test-accepted-token'"
MADE_UP = "'Authorization: Bearer made-up-token'"


def curl(host, path, *args, base=BASE):
    """(status, body) of one request; -k: the certificate is self-signed."""
    cmd = "curl -sk -o /tmp/body -w '%{http_code}' " + " ".join(args) + " " + shlex.quote(base + path)
    status = host.check_output(cmd)
    return int(status), host.check_output("cat /tmp/body")


def forwarded(host, path, *args):
    status, body = curl(host, path, *args)
    assert status == 200, (status, body)
    return json.loads(body)


def test_people_need_credentials(host):
    status, _ = curl(host, "/")
    assert status == 401
    headers = host.check_output(f"curl -sk -D - -o /dev/null {BASE}/teams/main")
    assert 'WWW-Authenticate: Basic realm="Concourse"' in headers


@pytest.mark.parametrize("user", [OPS, "hashed:hash-user-password"])
def test_people_pass_and_their_credentials_stay_at_the_proxy(host, user):
    seen = forwarded(host, "/api/v1/teams", "-u", user)
    assert seen["authorization"] is None, "the proxy's own credentials must not reach Concourse"
    assert seen["forwarded_proto"] == "https"


def test_wrong_password_is_refused(host):
    assert curl(host, "/", "-u", "ops:wrong-password")[0] == 401


def user_checks(host):
    """How many token checks reached the probe (asked of it directly)."""
    return json.loads(host.check_output("curl -s http://127.0.0.1:8080/_probe/user-checks"))["count"]


def test_accepted_bearer_token_reaches_concourse(host):
    seen = forwarded(host, "/api/v1/teams/main/pipelines", "-H", ACCEPTED)
    assert seen["authorization"] == "Bearer kit-test-accepted-token"


@pytest.mark.parametrize("method, path", [
    ("GET", "/sky/issuer/auth/local/login"), ("POST", "/sky/issuer/auth/local/login"),
    ("GET", "/api/v1/teams"), ("GET", "/api/v1/teams/main/pipelines"), ("GET", "/teams/main"),
    ("GET", "/api/v1/containers/abc/hijack"), ("POST", "/api/v1/teams/main/artifacts"),
])
@pytest.mark.parametrize("header", [MADE_UP, "'Authorization: bearer made-up-token'",
                                    "'Authorization: Bearer '", "'Authorization: BEARER  two-spaces'"])
def test_made_up_bearer_token_is_refused(host, method, path, header):
    """A token Concourse does not accept does not replace basic auth (the hole of issue 14)."""
    status, body = curl(host, path, "-X", method, "-H", header)
    assert status == 401, (status, body)
    assert '"method"' not in body, "the request reached the upstream"


def test_token_answers_are_cached_per_token(host):
    token = f"'Authorization: Bearer unknown-{uuid.uuid4().hex}'"
    before = user_checks(host)
    for _ in range(3):
        assert curl(host, "/api/v1/teams", "-H", token)[0] == 401
    assert user_checks(host) == before + 1, "one check per token, then the cached answer"
    other = f"'Authorization: Bearer unknown-{uuid.uuid4().hex}'"
    assert curl(host, "/api/v1/teams", "-H", other)[0] == 401
    assert user_checks(host) == before + 2, "another token is checked on its own"


def test_basic_auth_asks_concourse_nothing(host):
    before = user_checks(host)
    forwarded(host, "/api/v1/teams", "-u", OPS)
    assert user_checks(host) == before


def test_token_endpoint_gets_client_credentials(host):
    # fly login: Basic fly:Zmx5 (client id and secret), plus the user's password grant.
    seen = forwarded(host, "/sky/issuer/token", "-X", "POST", "-u", "fly:Zmx5",
                     "--data", "'grant_type=password&username=admin&password=x'")
    assert seen["authorization"] == "Basic Zmx5OlpteDU="
    assert seen["method"] == "POST"


@pytest.mark.parametrize("path", ["/api/v1/info", "/api/v1/cli?arch=amd64&platform=linux"])
def test_what_fly_asks_first_is_open(host, path):
    seen = forwarded(host, path)
    assert seen["path"] == path and seen["authorization"] is None


def test_a_crafted_path_does_not_open_the_proxy(host):
    for path in ["/api/v1/info/../teams", "/sky/issuer/token/x", "/x%20bearer%20y", "/api/v1/infox"]:
        assert curl(host, path, "--path-as-is")[0] == 401, path


def test_websocket_upgrade_is_forwarded(host):
    seen = forwarded(host, "/api/v1/containers/abc/hijack", "-H", ACCEPTED,
                     "-H", "'Upgrade: websocket'", "-H", "'Connection: Upgrade'")
    assert seen["upgrade"] == "websocket" and seen["connection"].lower() == "upgrade"


def test_build_events_stream_unbuffered(host):
    # The probe sends event 1, waits 3 s, sends event 2: event 1 must arrive
    # well before the stream ends.
    out = host.check_output(
        "curl -skN -u " + OPS + " " + BASE + "/api/v1/builds/1/events | "
        "while IFS= read -r line; do case $line in id:*) echo \"$line $(date +%s.%N)\";; esac; done")
    stamps = {line.split()[1]: float(line.split()[2]) for line in out.splitlines()}
    assert set(stamps) == {"1", "2"}, out
    assert stamps["2"] - stamps["1"] > 2.0, "the first event was held back by buffering"


def test_http_redirects_to_https(host):
    headers = host.check_output("curl -s -D - -o /dev/null http://127.0.0.1/teams/main?x=1")
    assert headers.startswith("HTTP/1.1 301")
    assert "Location: https://127.0.0.1/teams/main?x=1" in headers


def test_tls_settings(host):
    headers = host.check_output(f"curl -sk -D - -o /dev/null -u {OPS} {BASE}/")
    assert "Strict-Transport-Security: max-age=31536000" in headers
    assert "X-Content-Type-Options: nosniff" in headers
    assert "Server: nginx\r" in headers, "no version in the Server header"
    old = host.run(f"curl -sk --tls-max 1.1 -o /dev/null {BASE}/api/v1/info")
    assert old.rc != 0, "TLS 1.1 must be refused"
    host.run_expect([0], f"curl -sk --tlsv1.3 -o /dev/null {BASE}/api/v1/info")


def test_certificate_names_the_site(host):
    subject = host.check_output("openssl x509 -noout -subject -ext subjectAltName -in /etc/nginx/tls/ci.example.test.crt")
    assert re.search(r"subject= ?CN ?= ?ci\.example\.test", subject), subject
    assert "DNS:ci.example.test" in subject
    key = host.file("/etc/nginx/tls/ci.example.test.key")
    assert key.mode == 0o600 and key.user == "root"


def test_users_file_is_private_and_hashed(host):
    users = host.file("/etc/nginx/concourse-gpu-kit.htpasswd")
    assert users.mode == 0o640 and users.group == "www-data"
    text = host.check_output("cat /etc/nginx/concourse-gpu-kit.htpasswd")
    assert "correct-horse-battery" not in text
    assert "\nops:$2b$12$" in "\n" + text


def test_salt_is_random_and_kept_on_the_controller(host):
    text = host.check_output("cat /etc/nginx/concourse-gpu-kit.htpasswd")
    ops = next(line for line in text.splitlines() if line.startswith("ops:"))
    salt = ops.split("$")[3][:22]
    assert salt != hashlib.sha256(b"ops:ci.example.test").hexdigest()[:22], "salt derived from public names"
    kept = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets", "nginx_proxy", "ops.bcrypt-salt")
    with open(kept, encoding="utf-8") as handle:
        assert salt == handle.read().strip() + "."


def test_config_checks(host):
    host.run_expect([0], "nginx -t -q")


BIG = 110 * 1024 * 1024


def test_large_upload_to_the_artifacts_endpoint_is_accepted(host):
    """fly execute streams its inputs chunked to POST /api/v1/teams/<team>/artifacts."""
    host.run_expect([0], f"test -s /tmp/big || head -c {BIG} /dev/urandom > /tmp/big")
    seen = forwarded(host, "/api/v1/teams/main/artifacts", "-X", "POST", "-H", ACCEPTED,
                     "-H", "'Transfer-Encoding: chunked'", "-H", "'Content-Type: application/octet-stream'",
                     "--data-binary", "@/tmp/big")
    assert seen["received"] == BIG


@pytest.mark.parametrize("path", ["/api/v1/teams/main/pipelines/p/config", "/api/v1/teams/main/artifacts/x"])
def test_large_body_elsewhere_is_refused(host, path):
    host.run_expect([0], f"test -s /tmp/big || head -c {BIG} /dev/urandom > /tmp/big")
    status, _ = curl(host, path, "-X", "POST", "-H", ACCEPTED, "--data-binary", "@/tmp/big")
    assert status == 413


def rapid_posts(host, path, *args, count=20):
    out = host.check_output(
        f"for i in $(seq {count}); do curl -sk -o /dev/null -w '%{{http_code}}\\n' -X POST "
        + " ".join(args) + f" {BASE}{path}; done")
    return [int(code) for code in out.split()]


# Last in the file: they spend the client's password budget.
def test_password_guesses_on_the_token_endpoint_are_rate_limited(host):
    codes = rapid_posts(host, "/sky/issuer/token", "-u", "fly:Zmx5",
                        "--data", "'grant_type=password&username=admin&password=wrong'")
    assert codes.count(429) >= 10, codes
    assert set(codes) <= {200, 429}, codes


def test_password_guesses_on_the_login_form_are_rate_limited(host):
    codes = rapid_posts(host, "/sky/issuer/auth/local/login", "-u", OPS, "--data", "'login=admin&password=wrong'")
    assert codes.count(429) >= 10, codes
