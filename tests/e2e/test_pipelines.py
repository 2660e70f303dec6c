"""Pipelines on the lab's real Concourse (make e2e): the concourse_pipelines role, validation, and the IndexTTS2 plumbing.

- `fly validate-pipeline --strict` and the schema model of the unit tests
  (tests/unit/pipeline_model.py) agree on every pipeline, and both reject
  each broken one in tests/unit/fixtures/broken-pipelines.
- The role (run by site.yml in `make lab`) installed the server's own fly on
  the web node and set and unpaused the lab pipeline; a second run is ok,
  check mode shows the diff and sets nothing, and unlisted pipelines are
  destroyed only with concourse_pipelines_prune.
- The IndexTTS2 job's plumbing (inventories/lab/pipelines/indextts2-plumbing.yml):
  the job's own task files and scripts run on the GPU worker with cache_hub,
  from the lab's git server, against the STAND-IN web UI
  (tests/unit/standins/stdlib_webui.py; uv and hf are stand-ins too). NOT
  IndexTTS2: the lab has no GPU and no model hub, and the real job needs both.
"""
from __future__ import annotations

import glob
import io
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import wave

import pytest

from conftest import ROOT, changed_per_host, wait_for

sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
import pipeline_model  # noqa: E402  (the unit tests' helper)

pytestmark = pytest.mark.usefixtures("concourse_required")

PIPELINE = "indextts2-plumbing"
JOB = f"{PIPELINE}/health-check"
LAB_VARS = os.path.join(ROOT, "inventories", "lab", "pipelines", f"{PIPELINE}.vars.yml")
PIPELINES = sorted(p for p in glob.glob(os.path.join(ROOT, "pipelines", "*.yml"))
                   + glob.glob(os.path.join(ROOT, "inventories", "*", "pipelines", "*.yml"))
                   if not p.endswith(".vars.yml"))
BROKEN = sorted(glob.glob(os.path.join(ROOT, "tests", "unit", "fixtures", "broken-pipelines", "*.yml")))


# --- validation: fly and the model agree ------------------------------------------------

@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: os.path.relpath(p, ROOT))
def test_fly_and_the_model_accept_every_pipeline(fly, path):
    vars_file = path.replace(".yml", ".vars.yml")
    result = fly.run("validate-pipeline", "--strict", "-c", path, "-l", vars_file, check=False)
    assert result.returncode == 0 and "looks good" in result.stdout, result.stdout + result.stderr
    rendered = pipeline_model.fill(pipeline_model.load_yaml(path), pipeline_model.load_yaml(vars_file))
    assert pipeline_model.check_pipeline(rendered) == []


@pytest.mark.parametrize("path", BROKEN, ids=os.path.basename)
def test_fly_and_the_model_reject_every_broken_pipeline(fly, path):
    result = fly.run("validate-pipeline", "--strict", "-c", path, check=False)
    assert result.returncode != 0, result.stdout
    problems = pipeline_model.check_pipeline(pipeline_model.load_yaml(path))
    assert problems, "the model accepted what fly rejects"
    print(f"{os.path.basename(path)}: fly: {(result.stdout + result.stderr).strip()[-300:]!r}; "
          f"model: {problems}")


# --- the role ----------------------------------------------------------------------------

def run_role(lab, *args, timeout=900):
    result = subprocess.run(["ansible-playbook", "-i", "inventories/lab/hosts.yml", "playbooks/pipelines.yml",
                             *args], cwd=ROOT, env=lab.playbook_env(), capture_output=True, text=True,
                            timeout=timeout)
    assert lab.access["CONCOURSE_PASSWORD"] not in result.stdout + result.stderr
    return result


def recap_changed(output: str) -> int:
    return changed_per_host(output)["web"]


def pipelines(fly) -> dict[str, dict]:
    return {p["name"]: p for p in fly.json("pipelines")}


def test_the_role_installed_the_servers_fly_and_set_the_lab_pipeline(lab, fly):
    info = json.loads(lab.sh("web", "curl -sf --cacert /etc/nginx/tls/localhost.crt "
                                    "https://localhost/api/v1/info").stdout)
    installed = lab.exec("web", "/usr/local/bin/fly", "--version").stdout.strip()
    assert installed == info["version"]
    assert not lab.sh("web", "ls -A /tmp | grep concourse-pipelines", check=False).stdout, \
        "the role's fly session (token) outlived the run"
    found = pipelines(fly)
    assert PIPELINE in found and found[PIPELINE]["paused"] is False


def test_a_second_run_is_ok_and_the_password_is_never_shown(lab, fly):
    """Nothing new: ok. With -vv, and in ps on the web node while it runs, no password."""
    seen: list[str] = []
    running = threading.Event()
    running.set()

    def watch_ps():
        while running.is_set():
            seen.append(lab.exec("web", "ps", "-eo", "args", check=False).stdout)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_ps, daemon=True)
    watcher.start()
    try:
        again = run_role(lab, "-vv")
    finally:
        running.clear()
        watcher.join(timeout=30)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap_changed(again.stdout) == 0, again.stdout[-4000:]
    assert len(seen) >= 5, "ps was hardly sampled while the role ran"
    assert not any(lab.access["CONCOURSE_PASSWORD"] in sample for sample in seen)


def test_check_mode_shows_the_diff_and_sets_nothing(lab, fly):
    before = fly.run("get-pipeline", "-p", PIPELINE).stdout
    override = json.dumps({"concourse_pipelines_list": [{
        "name": PIPELINE, "file": f"inventories/lab/pipelines/{PIPELINE}.yml",
        "vars_files": [f"inventories/lab/pipelines/{PIPELINE}.vars.yml"],
        "vars": {"readiness_deadline_seconds": "31"}}]})
    checked = run_role(lab, "--check", "--diff", "-e", override)
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert recap_changed(checked.stdout) >= 1
    assert "Dry-run mode was set" in checked.stdout and "31" in checked.stdout, checked.stdout[-4000:]
    assert fly.run("get-pipeline", "-p", PIPELINE).stdout == before, "check mode changed the pipeline"


def test_unlisted_pipelines_are_pruned_only_when_asked(lab, fly, tmp_path):
    scratch = tmp_path / "scratch.yml"
    scratch.write_text("jobs:\n- name: nothing\n  plan:\n  - task: t\n    config:\n      platform: linux\n"
                       "      image_resource: {type: registry-image, source: {repository: registry:5000/kit/task}}\n"
                       "      run: {path: 'true'}\n")
    fly.run("set-pipeline", "-n", "-p", "e2e-scratch", "-c", str(scratch))
    try:
        kept = run_role(lab)
        assert kept.returncode == 0 and "e2e-scratch" in pipelines(fly), kept.stdout[-3000:]
        pruned = run_role(lab, "-e", "concourse_pipelines_prune=true")
        assert pruned.returncode == 0, pruned.stdout[-3000:]
        found = pipelines(fly)
        assert "e2e-scratch" not in found and PIPELINE in found
    finally:
        fly.run("destroy-pipeline", "-n", "-p", "e2e-scratch", check=False)


# --- the IndexTTS2 plumbing --------------------------------------------------------------

def tar_of(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith((".py", ".sh")) or "/bin/" in name else 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tree(*roots: str) -> dict[str, bytes]:
    files = {}
    for root in roots:
        for folder, dirs, names in os.walk(os.path.join(ROOT, root)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    files[os.path.relpath(path, ROOT)] = handle.read()
    return files


def push(lab, repo: str, files: dict, message: str) -> str:
    """Commit exactly these files to the lab's git server (git://registry/<repo>.git); the new commit."""
    script = f"""
        set -e
        bare=/srv/git/{repo}.git
        [ -d "$bare" ] || git init --quiet --bare --initial-branch=main "$bare"
        work=$(mktemp -d)
        git init --quiet --initial-branch=main "$work"
        cd "$work"
        if git fetch --quiet "$bare" main 2>/dev/null; then git reset --quiet --soft FETCH_HEAD; fi
        tar -x -f -
        git add -A
        git -c user.name=e2e -c user.email=e2e@lab.invalid commit --quiet --allow-empty -m "{message}"
        git push --quiet "$bare" HEAD:main
        git rev-parse HEAD
        cd / && rm -rf "$work"
    """
    result = subprocess.run(["docker", "exec", "-i", "-u", "git", lab.container("registry"), "sh", "-c", script],
                            input=tar_of(files), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return result.stdout.decode().split()[-1]


def voice_wav() -> bytes:
    buffer = io.BytesIO()
    rate = 16000
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(
            int(0.4 * max(0.0, math.sin(math.pi * ((n / rate * 4) % 1))) * math.sin(2 * math.pi * 200 * n / rate)
                * 32767).to_bytes(2, "little", signed=True) for n in range(2 * rate)))
    return buffer.getvalue()


def standin_repo(mode: str) -> dict:
    with open(os.path.join(ROOT, "tests", "unit", "standins", "stdlib_webui.py"), "rb") as handle:
        webui = handle.read()
    return {"README.md": "A STAND-IN for index-tts in the kit's lab: webui.py is tests/unit/standins/"
                         "stdlib_webui.py, not IndexTTS2.\n",
            "webui.py": webui, "uv.lock": "# stand-in lock file (the lab's uv is a stand-in)\n",
            "examples/voice_01.wav": voice_wav(), "standin-mode": mode + "\n"}


def builds(fly) -> list[dict]:
    return fly.json("builds", "-j", JOB, "--count", "50")


@pytest.fixture(scope="module")
def plumbing(lab, fly):
    """The lab's repositories and the GPU worker's cache_hub, ready for the plumbing builds."""
    standins = tar_of(tree("tests/unit/standins"))
    subprocess.run(["docker", "exec", "-i", lab.container("gpu-worker-1"), "sh", "-ec",
                    "rm -rf /srv/cache_hub/lab-standins /srv/cache_hub/indextts2 /srv/cache_hub/.tmp-standins;"
                    "mkdir -p /srv/cache_hub/.tmp-standins; tar -x -C /srv/cache_hub/.tmp-standins -f -;"
                    "mv /srv/cache_hub/.tmp-standins/tests/unit/standins /srv/cache_hub/lab-standins;"
                    "rm -rf /srv/cache_hub/.tmp-standins; chmod -R a+rX /srv/cache_hub/lab-standins"],
                   input=standins, check=True, timeout=60)
    last = max((b["id"] for b in builds(fly)), default=0)
    push(lab, "kit", tree("pipelines/indextts2"), "kit: the IndexTTS2 job's task files and scripts")
    push(lab, "index-tts-standin", standin_repo("speech"), "stand-in: speech")
    for resource in ("kit", "task-image", "index-tts"):
        fly.run("check-resource", "-r", f"{PIPELINE}/{resource}", timeout=300)
    # The new commits trigger a build (the first one fills cache_hub): let it
    # appear and finish before the tests begin. Builds of an earlier run are
    # not it: a lab that ran the suite before has finished builds already.
    wait_for(lambda: any(b["id"] > last for b in builds(fly))
             and all(b["status"] not in ("pending", "started") for b in builds(fly)),
             timeout=600, interval=5, what="the first plumbing build to finish")
    return lab


def commit_and_build(fly, lab, mode: str) -> tuple[dict, str]:
    """Commit a stand-in mode; the build the commit triggers, once finished, and its log."""
    last = max((b["id"] for b in builds(fly)), default=0)
    push(lab, "index-tts-standin", standin_repo(mode), f"stand-in: {mode}")
    fly.run("check-resource", "-r", f"{PIPELINE}/index-tts", timeout=300)
    build = wait_for(lambda: next((b for b in builds(fly) if b["id"] > last), None), timeout=120,
                     interval=2, what="a build triggered by the commit")
    watched = fly.run("watch", "-j", JOB, "-b", build["name"], check=False, timeout=1500)
    build = next(b for b in builds(fly) if b["id"] == build["id"])
    return build, watched.stdout + watched.stderr


def test_a_good_standin_passes_and_the_smoke_report_is_kept(plumbing, fly):
    build, log = commit_and_build(fly, plumbing, "speech 2")
    assert build["status"] == "succeeded", log[-5000:]
    report = json.loads(re.search(r"^SMOKE-REPORT (.*)$", log, re.M).group(1))
    assert report["ok"] is True and [c["lang"] for c in report["cases"]] == ["zh", "en"]
    # The weights came from the stand-in hub once, in the first build; cache_hub kept them.
    assert "nothing downloaded" in log
    assert "NO GPU asked for" in log


def test_a_standin_that_dies_fails_the_build_within_2s_with_the_log_tail(plumbing, fly):
    die_after = 5.0
    build, log = commit_and_build(fly, plumbing, f"die {die_after}")
    assert build["status"] == "failed", log[-5000:]
    died = re.search(r"the web UI \(pid \d+\) died after ([0-9.]+)s", log)
    assert died, log[-5000:]
    # readiness.py starts with the web UI: it saw the death less than 2 s after it happened.
    assert float(died.group(1)) < die_after + 2.0, died.group(0)
    # The failure step (report-failure) printed the web UI's log tail.
    tail = log[log.index("=== last"):]
    assert "CUDA error: out of memory (stand-in)" in tail


def test_a_standin_that_never_answers_fails_at_the_deadline(plumbing, fly):
    deadline = int(pipeline_model.load_yaml(LAB_VARS)["readiness_deadline_seconds"])
    build, log = commit_and_build(fly, plumbing, "hang 1")
    assert build["status"] == "failed", log[-5000:]
    assert f"not ready after {deadline}s" in log
    # Failed at the readiness deadline, not at the job's 20-minute timeout.
    assert build["end_time"] - build["start_time"] < deadline + 240, build


def test_two_triggers_at_once_run_one_after_the_other(plumbing, fly):
    """A new commit triggers a build; a manual trigger right behind it makes a second one, which waits.

    Concourse makes a version-triggered build only when the job has no
    pending build (atc/db/job.go, EnsurePendingBuildExists), so a manual
    trigger racing the new version would swallow it: the test lets the
    commit's build appear first, then triggers by hand while it still runs.
    """
    last = max((b["id"] for b in builds(fly)), default=0)
    push(plumbing, "index-tts-standin", standin_repo("speech 20"), "stand-in: a slow load")
    fly.run("check-resource", "-r", f"{PIPELINE}/index-tts", timeout=300)
    wait_for(lambda: any(b["id"] > last for b in builds(fly)), timeout=120, interval=1,
             what="the build the new commit triggers")
    fly.run("trigger-job", "-j", JOB)

    def two_new_builds():
        new = sorted((b for b in builds(fly) if b["id"] > last), key=lambda b: b["id"])
        return new[:2] if len(new) >= 2 else None

    pair = wait_for(two_new_builds, timeout=120, interval=2, what="two builds")
    # While the first runs, the second waits.
    wait_for(lambda: next(b for b in builds(fly) if b["id"] == pair[0]["id"])["status"] == "started",
             timeout=300, interval=1, what="the first build to start")
    assert next(b for b in builds(fly) if b["id"] == pair[1]["id"])["status"] == "pending"
    for build in pair:
        fly.run("watch", "-j", JOB, "-b", build["name"], check=False, timeout=1500)
    first, second = (next(b for b in builds(fly) if b["id"] == p["id"]) for p in pair)
    assert first["status"] == second["status"] == "succeeded", (first, second)
    assert second["start_time"] >= first["end_time"], (first, second)
