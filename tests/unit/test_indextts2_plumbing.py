"""health-check.sh run whole, as a build runs it, against the standard-library stand-in web UI.

Not IndexTTS2: the model, the GPU, uv's install and the hub are stand-ins
(tests/unit/standins: stdlib_webui.py as webui.py, bin/uv, hf_cli.py as
hf), and NVIDIA_VISIBLE_DEVICES=void asks for no GPU. What is real is the
plumbing: the task's working directory and cache_hub layout, the lock, the
weights check, the start of the web UI, readiness.py's deadline and death
detection, smoke.py's conversation and WAV checks, the outputs the build
keeps, and report-failure.sh. tests/e2e/test_pipelines.py runs the same on
the lab's Concourse.
"""
import json
import math
import os
import shutil
import subprocess
import time
import wave

import pytest

from conftest import LOOPBACK, PIPELINE_SCRIPTS, ROOT, STANDINS, free_port

pytestmark = LOOPBACK  # stand-in web UIs on loopback


WEIGHTS = "bpe.model gpt.pth config.yaml s2mel.pth wav2vec2bert_stats.pt qwen0.6bemo4-merge/"


def write_voice(path, seconds=2.0, rate=16000):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(
            int(0.4 * max(0.0, math.sin(math.pi * ((n / rate * 4) % 1))) * math.sin(2 * math.pi * 200 * n / rate)
                * 32767).to_bytes(2, "little", signed=True) for n in range(int(seconds * rate))))


@pytest.fixture
def build(tmp_path):
    """A build's working directory: the index-tts input (the stand-in repository) and a cache_hub."""
    repo = tmp_path / "build" / "index-tts"
    (repo / "examples").mkdir(parents=True)
    shutil.copy(os.path.join(STANDINS, "stdlib_webui.py"), repo / "webui.py")
    (repo / "uv.lock").write_text("# stand-in lock file\n")
    write_voice(repo / "examples" / "voice_01.wav")
    (tmp_path / "cache_hub").mkdir()
    return tmp_path


def run_health_check(base, mode, deadline="60", **extra):
    (base / "build" / "index-tts" / "standin-mode").write_text(mode + "\n")
    env = dict(os.environ, CACHE_HUB_DIR=str(base / "cache_hub"), NVIDIA_VISIBLE_DEVICES="void",
               TMPDIR=str(base),  # the stand-in's files stay in pytest's folder
               PATH=os.path.join(STANDINS, "bin") + os.pathsep + os.environ["PATH"],
               HF_STANDIN_FILES=WEIGHTS, HF_STANDIN_CALLS=str(base / "cache_hub" / "hf-calls.log"),
               READINESS_DEADLINE=deadline, WEBUI_PORT=str(free_port()), STANDIN_LOAD_SECONDS="1",
               NO_PROXY="127.0.0.1", no_proxy="127.0.0.1", **extra)
    started = time.monotonic()
    result = subprocess.run(["bash", os.path.join(PIPELINE_SCRIPTS, "health-check.sh")], cwd=base / "build",
                            capture_output=True, text=True, timeout=180, env=env)
    return result, time.monotonic() - started


def report_failure(base):
    return subprocess.run(["bash", os.path.join(PIPELINE_SCRIPTS, "report-failure.sh")], cwd=base / "build",
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, NVIDIA_VISIBLE_DEVICES="void", LOG_LINES="20"))


def downloads(base):
    path = base / "cache_hub" / "hf-calls.log"
    return path.read_text().splitlines() if path.exists() else []


def test_a_good_web_ui_passes_and_the_second_build_downloads_nothing(build):
    result, _ = run_health_check(build, "speech")
    assert result.returncode == 0, result.stdout + result.stderr
    out = build / "build" / "health-output"
    report = json.loads((out / "smoke-report.json").read_text())
    assert report["ok"] is True and [c["lang"] for c in report["cases"]] == ["zh", "en"]
    assert all(c["problems"] == [] and (out / c["file"]).stat().st_size > 10000 for c in report["cases"])
    assert "NO GPU asked for" in (out / "gpu-state.txt").read_text()
    assert "stand-in web UI (stdlib_webui.py, NOT IndexTTS2)" in (out / "webui.log").read_text()
    assert len(downloads(build)) == 1
    # The weights and the environment stay in cache_hub: the next build fetches nothing.
    shutil.rmtree(out)
    result, _ = run_health_check(build, "speech")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(downloads(build)) == 1 and "nothing downloaded" in result.stdout


def test_a_web_ui_that_dies_fails_the_build_at_once_with_its_log_tail(build):
    result, seconds = run_health_check(build, "die", deadline="120", STANDIN_DIE_AFTER="3")
    assert result.returncode == 1
    assert "died after" in result.stderr and "CUDA error: out of memory (stand-in)" in result.stderr
    # Dead after about 3 s: reported long before the 120 s deadline.
    assert seconds < 30, seconds
    failure = report_failure(build)
    assert "CUDA error: out of memory (stand-in)" in failure.stdout
    assert "no smoke report" in failure.stdout


def test_a_web_ui_that_never_answers_fails_at_the_deadline(build):
    result, seconds = run_health_check(build, "hang", deadline="6")
    assert result.returncode == 3
    assert "not ready after 6s" in result.stderr
    assert 6 <= seconds < 40, seconds


def test_silence_fails_the_smoke_test_and_the_report_is_kept(build):
    result, _ = run_health_check(build, "silence")
    assert result.returncode == 1
    report = json.loads((build / "build" / "health-output" / "smoke-report.json").read_text())
    assert report["ok"] is False and all("silence" in " ".join(c["problems"]) for c in report["cases"])
    assert '"ok": false' in report_failure(build).stdout


def test_the_kit_root_is_what_the_lab_pipeline_expects():
    """The lab pipeline puts these on PATH from the kit's checkout."""
    assert os.access(os.path.join(ROOT, "tests", "unit", "standins", "bin", "uv"), os.X_OK)
    assert os.access(os.path.join(STANDINS, "hf_cli.py"), os.X_OK)
