"""smoke.py against a stand-in web UI on real Gradio (tests/unit/standins/gradio_webui.py).

The stand-in declares gen_single exactly as upstream's webui.py does, on the
Gradio version upstream pins, so these tests prove the HTTP conversation
(config, upload, call, event stream, download) and the WAV checks; they do
not prove anything about IndexTTS2's model, which needs a GPU.
"""
import array
import ast
import json
import math
import os
import subprocess
import sys
import time
import types
import urllib.request
import wave

import pytest

from conftest import LOOPBACK, STANDINS, free_port, load_script

pytestmark = LOOPBACK  # a stand-in Gradio web UI on loopback


smoke = load_script("smoke")

LIMITS = types.SimpleNamespace(min_seconds=0.5, min_ratio=0.3, max_ratio=3.5, min_rms_dbfs=-40.0,
                               voiced_dbfs=-45.0, min_voiced=0.3, max_clipped=0.01)


def write_wav(path, values, rate=22050, width=2, channels=1):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        if width == 2:
            out.writeframes(array.array("h", (int(v * 32767) for v in values for _ in range(channels))).tobytes())
        elif width == 3:
            out.writeframes(b"".join(int(v * 8388607).to_bytes(3, "little", signed=True) for v in values))
    return str(path)


def speech(seconds, rate=22050, level=0.4):
    return [level * max(0.0, math.sin(math.pi * ((n / rate * 4) % 1))) * math.sin(2 * math.pi * 200 * n / rate)
            for n in range(int(seconds * rate))]


@pytest.fixture(scope="module")
def gradio_webui(tmp_path_factory):
    """One real Gradio server for the module; each test picks its behaviour."""
    workdir = tmp_path_factory.mktemp("gradio")
    port = free_port()
    mode_file, calls_file = workdir / "mode", workdir / "calls"
    mode_file.write_text("speech")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(workdir / "tmp"),
               TMPDIR=str(workdir),  # the stand-in's wav files stay in pytest's folder
               HF_HUB_OFFLINE="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log = open(workdir / "webui.log", "w")
    process = subprocess.Popen([sys.executable, os.path.join(STANDINS, "gradio_webui.py"), "--port", str(port),
                                "--mode-file", str(mode_file), "--calls-file", str(calls_file)],
                               stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/config", timeout=1).read()
            break
        except OSError:
            assert process.poll() is None, (workdir / "webui.log").read_text()
            assert time.monotonic() < deadline, "the Gradio stand-in did not start in 90s"
            time.sleep(0.2)
    yield types.SimpleNamespace(url=url, mode=mode_file, calls=calls_file, workdir=workdir)
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def voice(tmp_path):
    return write_wav(tmp_path / "voice.wav", speech(2.0, rate=16000), rate=16000)


def run_smoke(server, voice, out_dir, mode, *extra):
    server.mode.write_text(mode)
    server.calls.write_text("")
    code = smoke.main(["--url", server.url, "--voice", voice, "--out-dir", str(out_dir), *extra])
    report = json.loads((out_dir / "smoke-report.json").read_text())
    return code, report


def test_speech_passes_and_is_kept(gradio_webui, voice, tmp_path):
    code, report = run_smoke(gradio_webui, voice, tmp_path / "out", "speech")
    assert code == 0, report
    assert report["ok"] and report["gradio_version"] == "5.45.0"
    assert [case["lang"] for case in report["cases"]] == ["zh", "en"]
    for case in report["cases"]:
        assert case["problems"] == []
        wav = tmp_path / "out" / case["file"]
        with wave.open(str(wav)) as kept:
            assert kept.getnframes() / kept.getframerate() == pytest.approx(case["seconds"], abs=0.01)
        assert case["expected_seconds"] * 0.5 < case["seconds"] < case["expected_seconds"] * 2
    # Every input went at the UI's own default, but the voice and the text.
    calls = [ast.literal_eval(line) for line in gradio_webui.calls.read_text().splitlines()]
    assert len(calls) == 2
    method, prompt, text, emo_ref, weight, emo_text, emo_random, segment, *advanced = calls[0]
    assert method == 0 and emo_ref is None and weight == 0.65 and emo_text == "" and emo_random is False
    assert segment == 120 and advanced == [True, 0.8, 30, 0.8, 0.0, 3, 10.0, 1500]
    assert os.path.basename(prompt) == "voice.wav" and text == smoke.DEFAULT_CASES[0][1]


def test_silence_fails(gradio_webui, voice, tmp_path):
    code, report = run_smoke(gradio_webui, voice, tmp_path / "out", "silence")
    assert code == 1 and not report["ok"]
    assert all(any("silence" in p for p in case["problems"]) for case in report["cases"])


def test_too_short_fails(gradio_webui, voice, tmp_path):
    code, report = run_smoke(gradio_webui, voice, tmp_path / "out", "short", "--case", "en:" + "word " * 30)
    assert code == 1
    assert "plausible" in report["cases"][0]["problems"][0]


def test_clipped_noise_fails(gradio_webui, voice, tmp_path):
    code, report = run_smoke(gradio_webui, voice, tmp_path / "out", "clipped")
    assert code == 1
    assert any("clipped" in p for p in report["cases"][0]["problems"])


def test_a_server_error_is_reported(gradio_webui, voice, tmp_path):
    code, report = run_smoke(gradio_webui, voice, tmp_path / "out", "error")
    assert code == 1
    assert "failed on the server" in report["cases"][0]["problems"][0]


def test_a_hung_synthesis_ends_at_the_timeout(gradio_webui, voice, tmp_path):
    began = time.monotonic()
    code, report = run_smoke(gradio_webui, voice, tmp_path / "out", "hang", "--timeout", "3",
                             "--case", "en:Hello there.")
    assert code == 1
    assert time.monotonic() - began < 10
    assert "no result within 3s" in report["cases"][0]["problems"][0]


def test_a_missing_api_names_what_exists(gradio_webui, voice, tmp_path):
    code, report = run_smoke(gradio_webui, voice, tmp_path / "out", "speech", "--api-name", "synthesise")
    assert code == 1
    assert "no API named 'synthesise'" in report["cases"][0]["problems"][0]
    assert "gen_single" in report["cases"][0]["problems"][0]


def test_nothing_listening_fails_before_synthesis(voice, tmp_path):
    code = smoke.main(["--url", f"http://127.0.0.1:{free_port()}", "--voice", voice, "--out-dir", str(tmp_path)])
    report = json.loads((tmp_path / "smoke-report.json").read_text())
    assert code == 1 and "Connection refused" in report["error"] and report["cases"] == []


@pytest.mark.parametrize("width, channels", [(2, 1), (2, 2), (3, 1)])
def test_check_wav_reads_pcm_formats(tmp_path, width, channels):
    path = write_wav(tmp_path / "a.wav", speech(3.0), width=width, channels=channels)
    report = smoke.check_wav(path, "Hello, this is a sentence of about forty.", "en", LIMITS)
    assert report["problems"] == [] and report["seconds"] == pytest.approx(3.0, abs=0.01)
    # A 0.4 tone under a half-sine envelope: 0.4² × ½ × ½ = 0.04, -14 dBFS.
    assert report["rms_dbfs"] == pytest.approx(-14.0, abs=0.3)


def test_check_wav_rejects_what_is_not_a_wav(tmp_path):
    (tmp_path / "x.wav").write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(smoke.SmokeFailure, match="not a PCM WAV"):
        smoke.check_wav(str(tmp_path / "x.wav"), "hi", "en", LIMITS)


def test_check_wav_names_every_problem(tmp_path):
    path = write_wav(tmp_path / "quiet.wav", [0.0001] * 800, rate=8000)
    problems = smoke.check_wav(path, "你好世界，这是一个很长的句子，需要好几秒钟。", "zh", LIMITS)["problems"]
    assert len(problems) == 3
    assert "plausible" in problems[0] and "silence" in problems[1] and "windows" in problems[2]


def test_sse_parsing():
    stream = [b"event: heartbeat\n", b"data: null\n", b"\n", b"event: complete\n", b'data: [{"a":\n',
              b"data: 1}]\n", b"\n"]
    assert list(smoke.sse_events(stream)) == [("heartbeat", "null"), ("complete", '[{"a":\n1}]')]


@pytest.mark.parametrize("value", ["fr:Bonjour", "zh:", "Hello"])
def test_bad_cases_are_usage_errors(value, voice, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        smoke.main(["--voice", voice, "--out-dir", str(tmp_path), "--case", value])
    assert exit_info.value.code == 2
