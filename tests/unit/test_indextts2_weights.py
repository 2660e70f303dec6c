"""ensure_weights.py: download only when a required file is missing, and say what is missing.

The hub is not reachable here: tests/unit/standins/hf_cli.py plays the CLI's
part and records how it was called.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import PIPELINE_SCRIPTS, STANDINS, load_script

weights = load_script("ensure_weights")
HF = os.path.join(STANDINS, "hf_cli.py")
V2 = "bpe.model gpt.pth config.yaml s2mel.pth wav2vec2bert_stats.pt qwen0.6bemo4-merge/"


def run(tmp_path, files, exit_code=0, endpoint="", *extra):
    env = dict(os.environ, HF_STANDIN_CALLS=str(tmp_path / "calls"), HF_STANDIN_FILES=files,
               HF_STANDIN_EXIT=str(exit_code), HF_ENDPOINT=endpoint)
    return subprocess.run([sys.executable, os.path.join(PIPELINE_SCRIPTS, "ensure_weights.py"),
                           "--model-dir", str(tmp_path / "cache" / "model"), "--hf", HF, *extra],
                          capture_output=True, text=True, env=env, timeout=60)


def calls(tmp_path):
    path = tmp_path / "calls"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_first_run_downloads_then_nothing_more(tmp_path):
    first = run(tmp_path, V2, 0, "http://127.0.0.1:9/mirror")
    assert first.returncode == 0, first.stderr
    assert "missing bpe.model, gpt.pth" in first.stdout and "downloaded" in first.stdout
    (call,) = calls(tmp_path)
    assert call["args"] == ["download", "IndexTeam/IndexTTS-2", "--revision", "main",
                            "--local-dir", str(tmp_path / "cache" / "model")]
    assert call["endpoint"] == "http://127.0.0.1:9/mirror"      # hf reads HF_ENDPOINT itself
    marker = json.loads((tmp_path / "cache" / "model" / weights.MARKER).read_text())
    assert marker["repo"] == "IndexTeam/IndexTTS-2" and marker["bytes"] >= 6 * 1024

    again = run(tmp_path, V2)
    assert again.returncode == 0 and "nothing downloaded" in again.stdout
    assert len(calls(tmp_path)) == 1, "a complete cache must not contact the hub"


def test_one_lost_file_is_fetched_again(tmp_path):
    assert run(tmp_path, V2).returncode == 0
    os.remove(tmp_path / "cache" / "model" / "s2mel.pth")
    result = run(tmp_path, V2)
    assert result.returncode == 0 and "missing s2mel.pth;" in result.stdout
    assert len(calls(tmp_path)) == 2


def test_another_revision_is_fetched(tmp_path):
    assert run(tmp_path, V2).returncode == 0
    result = run(tmp_path, V2, 0, "", "--revision", "v2.0.1")
    assert result.returncode == 0 and "holds revision main, v2.0.1 is asked for" in result.stdout
    assert [c["args"][3] for c in calls(tmp_path)] == ["main", "v2.0.1"]
    marker = json.loads((tmp_path / "cache" / "model" / weights.MARKER).read_text())
    assert marker["revision"] == "v2.0.1"


def test_empty_files_and_directories_count_as_missing(tmp_path):
    model = tmp_path / "cache" / "model"
    model.mkdir(parents=True)
    for name in V2.split():
        if name.endswith("/"):
            (model / name).mkdir()
        else:
            (model / name).write_bytes(b"x")
    (model / "gpt.pth").write_bytes(b"")
    assert weights.missing_files(str(model), V2.split()) == ["gpt.pth", "qwen0.6bemo4-merge/"]


def test_an_incomplete_download_fails_naming_the_files(tmp_path):
    result = run(tmp_path, "bpe.model gpt.pth config.yaml")
    assert result.returncode == 1
    assert "missing: s2mel.pth, wav2vec2bert_stats.pt, qwen0.6bemo4-merge/" in result.stderr
    assert not (tmp_path / "cache" / "model" / weights.MARKER).exists()


def test_a_failing_cli_fails(tmp_path):
    result = run(tmp_path, V2, 3)
    assert result.returncode == 1 and "exited 3" in result.stderr


def test_the_25_file_list_is_upstreams(tmp_path):
    result = run(tmp_path, "gpt.pth s2mel.pth", 0, "", "--version", "2.5", "--repo", "IndexTeam/IndexTTS-2.5")
    assert result.returncode == 1
    assert "missing: codec.pth, multilingual_zh_ja_yue_char_del.tiktoken, wav2vec2bert_stats.pt" in result.stderr


def test_no_cli_is_a_clear_failure(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(PIPELINE_SCRIPTS, "ensure_weights.py"),
                             "--model-dir", str(tmp_path / "m"), "--hf", "no-such-hf-cli"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no Hugging Face CLI (no-such-hf-cli)" in result.stderr


@pytest.mark.parametrize("argv", [[], ["--model-dir", "m", "--version", "3"]])
def test_usage_errors(argv):
    with pytest.raises(SystemExit) as exit_info:
        weights.main(argv)
    assert exit_info.value.code == 2
