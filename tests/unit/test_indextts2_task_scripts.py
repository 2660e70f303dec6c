"""The task scripts' own failure paths, as a build on a misconfigured worker would meet them.

A full run needs a GPU, IndexTTS2's environment and the hub; these tests run
health-check.sh and report-failure.sh for real up to where that starts.
"""
import os
import shutil
import subprocess

from conftest import PIPELINE_SCRIPTS


def run(script, workdir, **env):
    return subprocess.run([shutil.which("bash"), os.path.join(PIPELINE_SCRIPTS, script)], cwd=workdir, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **env))


def test_health_check_without_cache_hub_names_the_cause(tmp_path):
    result = run("health-check.sh", tmp_path, CACHE_HUB_DIR=str(tmp_path / "absent"))
    assert result.returncode == 1
    assert "no writable cache_hub" in result.stderr and "CACHE_HUB=1" in result.stderr
    assert (tmp_path / "health-output").is_dir()


def test_health_check_without_a_gpu_names_the_cause(tmp_path):
    (tmp_path / "cache").mkdir()
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("tee", "mkdir", "dirname"):
        os.symlink(shutil.which(tool), bare / tool)
    result = run("health-check.sh", tmp_path, CACHE_HUB_DIR=str(tmp_path / "cache"), PATH=str(bare))
    assert result.returncode == 1
    assert "nvidia-smi failed: no GPU in the task" in result.stderr


def test_report_failure_shows_what_the_health_check_left(tmp_path):
    out = tmp_path / "health-output"
    out.mkdir()
    (out / "webui.log").write_text("".join(f"log line {n}\n" for n in range(300)))
    (out / "smoke-report.json").write_text('{"ok": false}')
    result = run("report-failure.sh", tmp_path, LOG_LINES="10")
    assert result.returncode == 0
    assert "log line 299" in result.stdout and "log line 289" not in result.stdout
    assert '{"ok": false}' in result.stdout and "=== GPU state now" in result.stdout


def test_report_failure_without_output_says_so(tmp_path):
    result = run("report-failure.sh", tmp_path)
    assert result.returncode == 0 and "left no output" in result.stdout
