#!/usr/bin/env bash
# The IndexTTS2 health check, run by tasks/health-check.yml on a GPU worker:
#   1. the worker gave us a GPU and the persistent cache (/cache_hub);
#   2. IndexTTS2's locked Python environment, kept in the cache per uv.lock;
#   3. the weights, downloaded only when a required file is missing;
#   4. the web UI started, and readiness.py waiting for the model to load
#      (Gradio's /config) with a deadline, failing at once if it dies;
#   5. smoke.py synthesising a Chinese and an English sentence and checking
#      the WAVs, which stay in health-output with the log and the report.
set -euo pipefail

scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$PWD/index-tts
out=$PWD/health-output
cache=${CACHE_HUB_DIR:-/cache_hub}
port=${WEBUI_PORT:-7860}
version=${INDEXTTS_MODEL_VERSION:-2}
hf_repo=${INDEXTTS_HF_REPO:-IndexTeam/IndexTTS-2}
log=$out/webui.log
mkdir -p "$out"

step() { printf '\n=== %s (at %ss)\n' "$*" "$SECONDS"; }
die() { printf 'health-check: %s\n' "$*" >&2; exit 1; }

step "worker: GPU and cache_hub"
[[ -d $cache && -w $cache ]] ||
  die "no writable cache_hub at $cache: the task needs CACHE_HUB=1 and a GPU worker provisioned by the kit (tags: [gpu])"
# NVIDIA's own convention: NVIDIA_VISIBLE_DEVICES void (or none, or empty)
# asks for no GPU. Only a plumbing test runs so (the kit's lab, whose GPU
# worker has no GPU); IndexTTS2 itself needs one.
gpu=yes
case ${NVIDIA_VISIBLE_DEVICES-all} in void | none | "") gpu=no ;; esac
if [[ $gpu == yes ]]; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.used,memory.total --format=csv |
    tee "$out/gpu-state.txt" ||
    die "nvidia-smi failed: no GPU in the task (it needs privileged: true, NVIDIA_VISIBLE_DEVICES and the worker's NVIDIA OCI hook)"
else
  echo "NO GPU asked for (NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES-}): a plumbing run, not an IndexTTS2 check" |
    tee "$out/gpu-state.txt"
fi
for tool in uv git python3 flock; do
  command -v "$tool" >/dev/null ||
    die "the task image has no $tool: build it from pipelines/indextts2/image/Dockerfile"
done

voice=$repo/${SMOKE_VOICE:-examples/voice_01.wav}
# The examples are Git LFS files in v2.0.0: a pointer instead of a WAV means
# the checkout skipped LFS.
[[ $(head -c 4 "$voice" 2>/dev/null) == RIFF ]] ||
  die "the voice prompt $voice is missing or not a WAV (a Git LFS pointer?); set smoke_voice"

state=$cache/indextts2
mkdir -p "$state/venvs" "$state/models" "$state/hf-cache"
# One IndexTTS2 build per worker cache at a time, whichever pipeline runs it.
exec 9>"$state/.build.lock"
flock 9

step "python environment (kept in cache_hub per uv.lock)"
lock_id=$(sha256sum "$repo/uv.lock" | cut -c1-16)
export UV_CACHE_DIR=$state/uv-cache
export UV_PYTHON_INSTALL_DIR=$state/python
export UV_PROJECT_ENVIRONMENT=$state/venvs/$lock_id
export UV_LINK_MODE=copy
(cd "$repo" && uv sync --frozen --extra webui)
touch "$UV_PROJECT_ENVIRONMENT"
# Keep the three most recently used environments.
find "$state/venvs" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +4 |
  cut -d' ' -f2- | xargs -r rm -rf

step "weights ($hf_repo)"
model_dir=$state/models/${hf_repo//\//--}
# The hub's CLI comes with huggingface_hub in IndexTTS2's environment (hf,
# or huggingface-cli before 0.34).
PATH=$UV_PROJECT_ENVIRONMENT/bin:$PATH python3 "$scripts/ensure_weights.py" --model-dir "$model_dir" \
  --repo "$hf_repo" --revision "${INDEXTTS_HF_REVISION:-main}" --version "$version"

step "start the web UI"
# The helper models IndexTTS2 fetches at load time (w2v-bert, MaskGCT's
# codec, CAMPPlus, BigVGAN) go to the cache too. v2.0.0 hard-codes
# ./checkpoints/hf_cache, hence the link; later code reads HF_HUB_CACHE.
export HF_HUB_CACHE=$state/hf-cache
if [[ -d $repo/checkpoints && ! -e $repo/checkpoints/hf_cache ]]; then
  ln -s "$HF_HUB_CACHE" "$repo/checkpoints/hf_cache"
fi
warm=$HF_HUB_CACHE/.loaded-${hf_repo//\//--}
if [[ -e $warm ]]; then
  export HF_HUB_OFFLINE=1   # everything was fetched by an earlier build
  echo "helper models cached: starting offline (delete $warm to refetch)"
fi
args=(--host 127.0.0.1 --port "$port" --model_dir "$model_dir")
if grep -q -- '"--version"' "$repo/webui.py"; then
  args+=(--version "$version")
fi
read -r -a extra <<<"${WEBUI_EXTRA_ARGS:-}"
cd "$repo"
"$UV_PROJECT_ENVIRONMENT/bin/python" webui.py "${args[@]}" "${extra[@]}" >"$log" 2>&1 &
webui=$!
stop_webui() {
  kill "$webui" 2>/dev/null || return 0
  for _ in $(seq 20); do kill -0 "$webui" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$webui" 2>/dev/null || true
}
trap stop_webui EXIT
echo "webui.py pid $webui, log in health-output/webui.log"

step "wait for the model to load"
python3 "$scripts/readiness.py" --url "http://127.0.0.1:$port/config" --pid "$webui" \
  --log "$log" --deadline "${READINESS_DEADLINE:-900}"
touch "$warm"
if [[ $gpu == yes ]]; then
  nvidia-smi --query-gpu=index,memory.used,memory.total,utilization.gpu --format=csv >>"$out/gpu-state.txt" || true
fi

step "smoke synthesis"
python3 "$scripts/smoke.py" --url "http://127.0.0.1:$port" --voice "$voice" --out-dir "$out"
step "passed"
