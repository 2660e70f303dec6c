"""The proxy's rules, seen from a client and from the upstream probe.

Requests go to nginx on the host itself (https://127.0.0.1); the upstream
probe (files/upstream_probe.py) answers with what nginx forwarded.
"""
import base64
import hashlib
import json
import os
import re
import shlex
import time
import uuid

import pytest
import yaml

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


def test_a_token_is_checked_once_whatever_the_methods(host):
    """fly set-pipeline PUTs, destroy-pipeline DELETEs: those find the cached verdict too."""
    token = f"'Authorization: Bearer unknown-{uuid.uuid4().hex}'"
    before = user_checks(host)
    for method in ("PUT", "DELETE", "PATCH", "POST", "GET"):
        assert curl(host, "/api/v1/teams/main/pipelines/p/config", "-X", method, "-H", token)[0] == 401
    assert user_checks(host) == before + 1


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


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/jwks.json"])
def test_openid_discovery_is_open_and_read_only(host, path):
    """Issue 27: whoever verifies an `idtoken` var source's tokens fetches these without the proxy's password."""
    seen = forwarded(host, path)
    assert seen["path"] == path and seen["method"] == "GET" and seen["authorization"] is None
    for method in ("POST", "PUT", "DELETE"):
        status, body = curl(host, path, "-X", method)
        assert status == 405 and '"method"' not in body, (method, status, body)


@pytest.mark.parametrize("path", ["/.well-known/", "/.well-known/other", "/.well-known/jwks.json/x"])
def test_nothing_else_under_well_known_is_open(host, path):
    assert curl(host, path)[0] == 401


def test_another_authorization_scheme_is_asked_for_basic(host):
    headers = host.check_output(f"curl -sk -D - -o /dev/null -H 'Authorization: Digest x' {BASE}/api/v1/teams")
    assert headers.startswith("HTTP/1.1 401") and 'WWW-Authenticate: Basic realm="Concourse"' in headers


def test_the_credential_check_is_private(host):
    """Its socket takes a client address from its caller: only root and nginx's user may reach it."""
    run_dir = host.file("/run/nginx-kit")
    assert (run_dir.mode, run_dir.user, run_dir.group) == (0o750, "root", "www-data")
    assert host.file("/run/nginx-kit/check.sock").is_socket
    assert "d /run/nginx-kit 0750 root www-data" in host.file("/etc/tmpfiles.d/concourse-gpu-kit-nginx.conf").content_string
    nobody = host.run("runuser -u nobody -- curl -s --unix-socket /run/nginx-kit/check.sock http://x/basic")
    assert nobody.rc != 0, nobody.stdout


INDEXTTS = "https://127.0.0.1:7443"


def test_indextts_site_takes_people_not_concourse_tokens(host):
    assert curl(host, "/", base=INDEXTTS)[0] == 401
    assert curl(host, "/", "-u", OPS, base=INDEXTTS)[0] == 200
    status, body = curl(host, "/", "-H", ACCEPTED, base=INDEXTTS)
    assert status == 401 and '"method"' not in body, (status, body)


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


# They spend the client's budget of password POSTs (another zone than the guesses below).
def test_password_guesses_on_the_token_endpoint_are_rate_limited(host):
    codes = rapid_posts(host, "/sky/issuer/token", "-u", "fly:Zmx5",
                        "--data", "'grant_type=password&username=admin&password=wrong'")
    assert codes.count(429) >= 10, codes
    assert set(codes) <= {200, 429}, codes


def test_password_guesses_on_the_login_form_are_rate_limited(host):
    codes = rapid_posts(host, "/sky/issuer/auth/local/login", "-u", OPS, "--data", "'login=admin&password=wrong'")
    assert codes.count(429) >= 10, codes


# Runs on the test host: timed requests over kept-alive TLS connections, so
# that what is measured is nginx's work per request, not curl's start or a
# TLS handshake. Prints one JSON object.
TIMED = r"""
import base64, http.client, json, ssl, statistics, sys, time
host, count, plans = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
context = ssl._create_unverified_context()
def connect():
    return http.client.HTTPSConnection(host, 443, context=context, timeout=30)
connections = {name: connect() for name in plans}
times = {name: [] for name in plans}
codes = {name: [] for name in plans}
for _ in range(count):
    for name, (path, authorization) in plans.items():
        headers = {"Authorization": authorization} if authorization else {}
        start = time.perf_counter()
        connections[name].request("GET", path, headers=headers)
        response = connections[name].getresponse()
        response.read()
        times[name].append(time.perf_counter() - start)
        codes[name].append(response.status)
        if response.getheader("Connection", "").lower() == "close":
            connections[name] = connect()
print(json.dumps({name: {"median_ms": statistics.median(times[name]) * 1000, "codes": sorted(set(codes[name])),
                         "count": {str(code): codes[name].count(code) for code in set(codes[name])},
                         "seconds": sum(times[name])} for name in plans}))
"""


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def timed(host, plans, count=50, address="127.0.0.1"):
    """{plan: {median_ms, codes, count, seconds}} of `count` rounds of one request per plan."""
    out = host.check_output(f"python3 -c {shlex.quote(TIMED)} {address} {count} {shlex.quote(json.dumps(plans))}")
    return json.loads(out)


def own_address(host):
    """The container's address on its network: to nginx a client other than 127.0.0.1."""
    return host.check_output("hostname -I").split()[0]


def test_an_authenticated_request_costs_at_most_twice_an_open_one(host):
    """Issue 27: bcrypt (cost 12) was checked on every request, about 200 ms each."""
    plans = {"open": ["/api/v1/info", None],
             "basic": ["/api/v1/teams", basic("ops", "correct-horse-battery")],
             "bearer": ["/api/v1/teams", "Bearer kit-test-accepted-token"]}
    result = timed(host, plans)
    print("per-request cost through the proxy:", json.dumps(result))
    assert all(result[name]["codes"] == [200] for name in plans), result
    for name in ("basic", "bearer"):
        assert result[name]["median_ms"] <= 2 * result["open"]["median_ms"], result


def test_a_browser_burst_with_one_credential_is_never_throttled(host):
    """A page load fires requests in parallel before any answer is cached; none may be refused."""
    out = host.check_output(
        "for i in $(seq 30); do curl -sk -o /dev/null -w '%{http_code}\\n' -u browser:browser-test-password "
        f"https://{own_address(host)}/api/v1/teams & done; wait")
    assert out.split() == ["200"] * 30, out
    steady = timed(host, {"basic": ["/api/v1/teams", basic("browser", "browser-test-password")]}, count=100,
                   address=own_address(host))
    assert steady["basic"]["codes"] == [200], steady


with open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "nginx_proxy", "defaults", "main.yml"),
          encoding="utf-8") as _defaults:
    DEFAULTS = yaml.safe_load(_defaults)
GUESS_BURST = DEFAULTS["nginx_proxy_guess_burst"]
GUESSES_PER_SECOND = int(DEFAULTS["nginx_proxy_guess_rate"].split("r/")[0]) / {"s": 1, "m": 60}[
    DEFAULTS["nginx_proxy_guess_rate"][-1]]


# Last in the file: it spends the client's password budget.
def test_password_guesses_on_every_path_are_throttled(host):
    """Issue 27: 100 wrong passwords on / got 100 answers of 401 and none was refused."""
    signed_in = basic("ops", "correct-horse-battery")
    assert timed(host, {"ops": ["/", signed_in]}, count=1)["ops"]["codes"] == [200]
    right = ["/", basic("guessed", "guessed-test-password")]
    guesses = {f"guess{n}": ["/", basic("guessed", f"wrong-guess-{n}")] for n in range(60)}
    start = time.monotonic()
    # The right password comes straight after the wrong ones, in one go.
    result = timed(host, dict(guesses, right=right), count=1)
    elapsed = time.monotonic() - start
    answered = sum(1 for name in guesses if result[name]["codes"] == [401])
    refused = sum(1 for name in guesses if result[name]["codes"] == [429])
    print(f"60 wrong guesses in {elapsed:.1f} s: {answered} answered 401, {refused} refused 429")
    assert answered + refused == 60, result
    assert answered <= GUESS_BURST + elapsed * GUESSES_PER_SECOND + 1, f"{answered} checked in {elapsed:.1f} s"
    # A throttled client cannot have a right guess confirmed either...
    assert result["right"]["codes"] == [429], result["right"]
    # ...while someone already signed in from that address, and other clients, go on.
    assert timed(host, {"ops": ["/", signed_in]}, count=1)["ops"]["codes"] == [200]
    assert timed(host, {"right": right}, count=1, address=own_address(host))["right"]["codes"] == [200]
