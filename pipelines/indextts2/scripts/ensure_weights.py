#!/usr/bin/env python3
"""Make sure IndexTTS2's weights are in the worker's cache, downloading only when not.

    ensure_weights.py --model-dir /cache_hub/indextts2/models/IndexTeam--IndexTTS-2 \
                      --repo IndexTeam/IndexTTS-2 --version 2 --hf .venv/bin/hf

When every file the web UI requires is present (and non-empty), and the
last download was of the revision asked for, nothing is downloaded and the
hub is not contacted. Otherwise `hf download` fetches the
repository into --model-dir (resuming what an interrupted build left; a
mirror comes from HF_ENDPOINT, which hf reads itself) and the files are
checked again. A lock file beside the model directory keeps two builds on the
same worker from downloading at once.

Exit status: 0 the weights are complete, 1 they are not (the missing files
are named), 2 usage. Standard library only.
"""
import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

# What upstream's webui.py checks before it starts (REQUIRED_FILES), plus
# config.yaml and the emotion model directory that IndexTTS2's loader opens.
# A trailing slash names a directory that must not be empty.
REQUIRED = {
    "2": ["bpe.model", "gpt.pth", "config.yaml", "s2mel.pth", "wav2vec2bert_stats.pt",
          "qwen0.6bemo4-merge/"],
    "2.5": ["gpt.pth", "s2mel.pth", "codec.pth", "multilingual_zh_ja_yue_char_del.tiktoken",
            "wav2vec2bert_stats.pt"],
}
MARKER = ".concourse-gpu-kit.json"


def missing_files(model_dir: str, required: list[str]) -> list[str]:
    missing = []
    for name in required:
        path = os.path.join(model_dir, name)
        if name.endswith("/"):
            if not os.path.isdir(path) or not os.listdir(path):
                missing.append(name)
        elif not os.path.isfile(path) or os.path.getsize(path) == 0:
            missing.append(name)
    return missing


def recorded_revision(model_dir: str) -> str | None:
    """The revision the last download recorded; None when it recorded none."""
    try:
        with open(os.path.join(model_dir, MARKER), encoding="utf-8") as marker:
            return json.load(marker).get("revision")
    except (OSError, ValueError):
        return None


def tree_size(path: str) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files
                     if not os.path.islink(os.path.join(folder, f)))
    return total


def find_hf(given: str | None) -> list[str]:
    """The hub's CLI: `hf` (huggingface_hub >= 0.34) or the older huggingface-cli."""
    candidates = [given] if given else ["hf", "huggingface-cli"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return [found]
    raise FileNotFoundError(f"no Hugging Face CLI ({' or '.join(candidates)}); it comes with "
                            "huggingface_hub in IndexTTS2's environment")


def ensure(model_dir: str, repo: str, revision: str, required: list[str], hf: str | None) -> int:
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(os.path.dirname(os.path.abspath(model_dir)),
                           f".{os.path.basename(os.path.abspath(model_dir))}.lock"), "w") as lock:
        started = time.monotonic()
        fcntl.flock(lock, fcntl.LOCK_EX)
        if time.monotonic() - started > 1:
            print(f"weights: waited {time.monotonic() - started:.0f}s for another build's download", flush=True)
        missing = missing_files(model_dir, required)
        recorded = recorded_revision(model_dir)
        if not missing and recorded not in (None, revision):
            print(f"weights: the cache holds revision {recorded}, {revision} is asked for", flush=True)
            missing = ["(another revision)"]
        if not missing:
            print(f"weights: {repo} complete in {model_dir} ({tree_size(model_dir) / 1e9:.2f} GB), "
                  "nothing downloaded", flush=True)
            return 0
        endpoint = os.environ.get("HF_ENDPOINT") or "the Hugging Face hub"
        print(f"weights: missing {', '.join(missing)}; downloading {repo}@{revision} from {endpoint}",
              flush=True)
        command = find_hf(hf) + ["download", repo, "--revision", revision, "--local-dir", model_dir]
        began = time.monotonic()
        result = subprocess.run(command, check=False)
        seconds = time.monotonic() - began
        still = missing_files(model_dir, required)
        if result.returncode != 0 or still:
            print(f"weights: FAILED after {seconds:.0f}s: `{' '.join(command)}` exited "
                  f"{result.returncode}; missing: {', '.join(still) or 'nothing'}", file=sys.stderr, flush=True)
            return 1
        size = tree_size(model_dir)
        with open(os.path.join(model_dir, MARKER), "w", encoding="utf-8") as marker:
            json.dump({"repo": repo, "revision": revision, "bytes": size, "download_seconds": round(seconds, 1),
                       "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, marker, indent=2)
        print(f"weights: downloaded {size / 1e9:.2f} GB in {seconds:.0f}s into {model_dir}", flush=True)
        return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--repo", default="IndexTeam/IndexTTS-2")
    parser.add_argument("--revision", default="main")
    parser.add_argument("--version", default="2", choices=sorted(REQUIRED),
                        help="which model's file list to require")
    parser.add_argument("--require", nargs="+", metavar="FILE",
                        help="require these files instead (a trailing / names a directory)")
    parser.add_argument("--hf", help="the Hugging Face CLI to run (default: hf, else huggingface-cli)")
    args = parser.parse_args(argv)
    try:
        return ensure(args.model_dir, args.repo, args.revision, args.require or REQUIRED[args.version], args.hf)
    except FileNotFoundError as error:
        print(f"weights: FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
