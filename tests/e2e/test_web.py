"""The Concourse web node in the lab, through the proxy, as people and fly use it (issue 10)."""
import base64
import html
import json
import re
import textwrap
import time
import urllib.parse

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from conftest import CONCOURSE_VERSION, TASK_IMAGE, wait_for

pytestmark = pytest.mark.usefixtures("concourse_required")

PIPELINE = textwrap.dedent("""\
    jobs:
      - name: hello
        plan:
          - task: say-hello
            config:
              platform: linux
              image_resource:
                type: mock
                source: {mirror_self: true}
              run:
                path: echo
                args: ["hello from the lab"]
    """)


def test_info_reports_the_pinned_version_through_the_proxy(anonymous):
    response = anonymous.get(anonymous.url("/api/v1/info"), timeout=30)
    assert response.status_code == 200
    assert response.json()["version"] == CONCOURSE_VERSION


def test_the_proxy_asks_people_for_credentials(anonymous, proxy):
    refused = anonymous.get(anonymous.url("/api/v1/teams"), timeout=30)
    assert refused.status_code == 401
    assert refused.headers.get("WWW-Authenticate", "").startswith("Basic")
    allowed = proxy.get(proxy.url("/api/v1/teams"), timeout=30)
    assert allowed.status_code == 200, allowed.text[:500]


def test_fly_through_the_proxy(fly, lab):
    """login (in the fixture), sync, set-pipeline, unpause-pipeline; trigger-job creates a build."""
    synced = fly.run("sync")
    assert CONCOURSE_VERSION in synced.stdout + synced.stderr
    pipeline = f"{fly.home}/pipeline.yml"
    with open(pipeline, "w", encoding="utf-8") as handle:
        handle.write(PIPELINE)
    fly.run("set-pipeline", "-n", "-p", "e2e-web", "-c", pipeline)
    fly.run("unpause-pipeline", "-p", "e2e-web")
    [found] = [p for p in fly.json("pipelines") if p["name"] == "e2e-web"]
    assert found["paused"] is False
    fly.run("trigger-job", "-j", "e2e-web/hello")
    builds = fly.json("builds", "-j", "e2e-web/hello")
    assert builds and builds[0]["job_name"] == "hello"


def test_trigger_and_watch_a_build(fly, workers_registered):
    """trigger-job -w and watch need a worker; the lab's worker tier registers two."""
    assert workers_registered, "no worker is running in this lab: trigger-job -w and watch need one"
    pipeline = f"{fly.home}/pipeline.yml"
    with open(pipeline, "w", encoding="utf-8") as handle:
        handle.write(PIPELINE)
    fly.run("set-pipeline", "-n", "-p", "e2e-watch", "-c", pipeline)
    fly.run("unpause-pipeline", "-p", "e2e-watch")
    triggered = fly.run("trigger-job", "-w", "-j", "e2e-watch/hello", timeout=600)
    assert "hello from the lab" in triggered.stdout
    watched = fly.run("watch", "-j", "e2e-watch/hello", timeout=300)
    assert "hello from the lab" in watched.stdout


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jwt(token: str, jwks: dict) -> dict:
    """The claims of token, once its signature is verified with the key of jwks that its header names."""
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(b64url(header_b64))
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    signed, signature = f"{header_b64}.{claims_b64}".encode(), b64url(signature_b64)
    number = lambda name: int.from_bytes(b64url(key[name]), "big")  # noqa: E731
    if header["alg"] == "RS256":
        public = rsa.RSAPublicNumbers(number("e"), number("n")).public_key()
        public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    elif header["alg"] == "ES256":
        public = ec.EllipticCurvePublicNumbers(number("x"), number("y"), ec.SECP256R1()).public_key()
        half = len(signature) // 2
        der = encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))
        public.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    else:
        raise AssertionError(f"unexpected algorithm {header['alg']}")
    return json.loads(b64url(claims_b64))


IDTOKEN_PIPELINE = {
    "var_sources": [{"name": "cloud", "type": "idtoken", "config": {"audience": ["sts.example.test"]}}],
    "jobs": [{"name": "federate", "plan": [{"task": "print-token", "config": {
        "platform": "linux",
        "image_resource": {"type": "registry-image", "source": TASK_IMAGE},
        # Concourse redacts the token from the log; in 40-character lines it
        # passes, as in Concourse's own acceptance test (testflight/idtoken_test.go).
        "run": {"path": "sh", "args": ["-ec", "printf '%s\\n' '((cloud:token))' | fold -w 40 | sed 's/^/ID-TOKEN: /'"]},
    }}]}],
}


def test_an_idtoken_verifies_against_the_keys_published_without_credentials(fly, anonymous, lab, workers_registered):
    """Issue 27: a cloud's STS or Vault fetches the discovery documents from the external URL, with no password."""
    assert workers_registered, "no worker is running in this lab"
    discovery = anonymous.get(anonymous.url("/.well-known/openid-configuration"), timeout=30)
    assert discovery.status_code == 200, discovery.text[:300]
    issuer = discovery.json()["issuer"]
    assert issuer == lab.url.rstrip("/")
    assert discovery.json()["jwks_uri"] == issuer + "/.well-known/jwks.json"
    jwks = anonymous.get(anonymous.url("/.well-known/jwks.json"), timeout=30)
    assert jwks.status_code == 200 and jwks.json()["keys"], jwks.text[:300]
    assert anonymous.post(anonymous.url("/.well-known/jwks.json"), timeout=30).status_code == 405

    pipeline = f"{fly.home}/idtoken.yml"
    with open(pipeline, "w", encoding="utf-8") as handle:
        json.dump(IDTOKEN_PIPELINE, handle)
    fly.run("set-pipeline", "-n", "-p", "e2e-idtoken", "-c", pipeline)
    fly.run("unpause-pipeline", "-p", "e2e-idtoken")
    triggered = fly.run("trigger-job", "-w", "-j", "e2e-idtoken/federate", timeout=600)
    # Lines the task printed (the step's header line quotes the command, and so the marker, too).
    token = "".join(line.removeprefix("ID-TOKEN: ").strip()
                    for line in triggered.stdout.splitlines() if line.startswith("ID-TOKEN: "))
    assert token.count(".") == 2, triggered.stdout[-2000:]
    claims = verify_jwt(token, jwks.json())
    assert claims["iss"] == issuer
    assert "sts.example.test" in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
    assert (claims["team"], claims["pipeline"], claims["sub"]) == ("main", "e2e-idtoken", "main/e2e-idtoken")
    assert claims["exp"] > time.time()
    # The check can fail: the same signature over other claims is refused.
    header_b64, _, signature_b64 = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(dict(claims, team="other")).encode()).decode().rstrip("=")
    with pytest.raises(InvalidSignature):
        verify_jwt(f"{header_b64}.{forged}.{signature_b64}", jwks.json())


def test_browser_login_through_the_proxy(proxy, lab):
    """Basic auth at the proxy, then Concourse's own login form, then /api/v1/user with the session cookie."""
    page = proxy.get(proxy.url("/sky/login"), timeout=60)
    assert page.status_code == 200, page.text[:500]
    # With one connector dex goes straight to the local password form.
    form = re.search(r'<form method="post" action="([^"]+)"', page.text)
    if form is None:
        link = re.search(r'href="([^"]*/sky/issuer/auth/local[^"]*)"', page.text)
        assert link, f"no local login on {page.url}"
        page = proxy.get(urllib.parse.urljoin(page.url, html.unescape(link.group(1))), timeout=60)
        form = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert form, f"no login form on {page.url}"
    done = proxy.post(urllib.parse.urljoin(page.url, html.unescape(form.group(1))),
                      data={"login": lab.access["CONCOURSE_USER"], "password": lab.access["CONCOURSE_PASSWORD"]},
                      timeout=60)
    assert any("/sky/callback" in r.url for r in done.history), [r.url for r in done.history]
    assert any(c.name.startswith("skymarshal_auth") for c in proxy.cookies), list(proxy.cookies.keys())
    user = proxy.get(proxy.url("/api/v1/user"), timeout=30)
    assert user.status_code == 200, user.text[:500]
    assert user.json()["user_id"] == lab.access["CONCOURSE_USER"]
    assert "owner" in user.json()["teams"]["main"]
    # Without the cookie the same request is not authenticated.
    proxy.cookies.clear()
    assert proxy.get(proxy.url("/api/v1/user"), timeout=30).status_code == 401


def test_tsa_and_atc_listen_where_they_should(lab):
    listening = lab.exec("web", "ss", "-Hltn").stdout
    local = {line.split()[3] for line in listening.splitlines()}
    assert "127.0.0.1:8080" in local
    assert not {"0.0.0.0:8080", "*:8080", "[::]:8080"} & local
    tsa = [a for a in local if a.endswith(":2222")]
    address = lab.exec("web", "sh", "-c", "ip -4 route get 1.1.1.1 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'").stdout
    assert tsa == [f"{address.strip()}:2222"], tsa


def test_metrics_are_served_on_loopback(lab):
    metrics = lab.exec("web", "curl", "-sf", "http://127.0.0.1:9391/metrics").stdout
    assert "concourse_" in metrics


def test_env_file_is_private(lab):
    mode = lab.exec("web", "stat", "-c", "%a %U", "/etc/concourse/web.env").stdout.split()
    assert mode == ["600", "root"]


def main_pid(lab):
    return int(lab.exec("web", "systemctl", "show", "-P", "MainPID", "concourse-web").stdout.strip())


def api_answers(fly):
    return any(t["name"] == "main" for t in fly.json("teams"))


def test_worker_keys_are_reloaded_without_a_restart(lab, fly):
    before = main_pid(lab)
    since = lab.exec("web", "date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    lab.exec("web", "systemctl", "reload", "concourse-web")
    wait_for(lambda: "reloading-config" in lab.exec(
        "web", "journalctl", "-u", "concourse-web", "--since", since, "--no-pager").stdout,
        timeout=30, what="the TSA's reloading-config log line")
    assert main_pid(lab) == before
    assert api_answers(fly)


def test_survives_a_postgresql_restart(lab, fly):
    lab.exec("web", "systemctl", "restart", "postgresql")
    wait_for(lambda: api_answers(fly), timeout=120, what="the API after PostgreSQL restarted")
    assert lab.exec("web", "systemctl", "is-active", "concourse-web").stdout.strip() == "active"


def test_survives_a_killed_process(lab, fly):
    before = main_pid(lab)
    lab.exec("web", "kill", "-KILL", str(before))
    after = wait_for(lambda: (pid := main_pid(lab)) not in (0, before) and pid, timeout=60,
                     what="a new concourse process")
    assert after != before
    wait_for(lambda: api_answers(fly), timeout=180, what="the API after the kill")
