#!/usr/bin/env bash
# `make cold-test`: CI's run as a new machine sees it, timed.
#
# A fresh clone of the committed HEAD (uncommitted changes are not in it),
# an empty HOME (so an empty artifact cache, Go module and build caches, pip
# cache and task image), the kit's Docker images removed, a lab name and
# port of its own, then `CI=true bash .ci/run` in the clone. The environment
# is otherwise this shell's, as CI's is the machine's: an exported
# CONCOURSE_RELEASE_ARCHIVE (or LOKI_RELEASE_ARCHIVE) is used.
#
# Usage: scripts/cold-test.sh [WORK_DIR]   (default /var/tmp/concourse-gpu-kit-cold)
# Leaves WORK_DIR/cold-test.log (the whole output) and prints the time.
set -euo pipefail

source_dir=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=${1:-/var/tmp/concourse-gpu-kit-cold}
lab=${COLD_TEST_LAB:-concourse-gpu-kit-cold}
port=${COLD_TEST_PROXY_PORT:-8463}

say() { printf 'cold-test: %s\n' "$*"; }

if [ -n "$(git -C "$source_dir" status --porcelain --untracked-files=no)" ]; then
    say "uncommitted changes in $source_dir are not tested: this clones HEAD"
fi
say "HEAD $(git -C "$source_dir" rev-parse --short HEAD), into $work"

remove_lab() {
    local old
    mapfile -t old < <(docker ps -aq --filter "label=org.concourse-gpu-kit.lab=$lab")
    [ "${#old[@]}" -eq 0 ] || docker rm -f "${old[@]}" >/dev/null
    mapfile -t old < <(docker volume ls -q --filter "label=org.concourse-gpu-kit.lab=$lab")
    [ "${#old[@]}" -eq 0 ] || docker volume rm -f "${old[@]}" >/dev/null
    docker network rm "$lab" >/dev/null 2>&1 || true
}

# A lab of the same name left by an earlier cold run would be reused, not built.
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    remove_lab
    mapfile -t images < <(docker image ls -q --filter "label=org.concourse-gpu-kit.recipe" | sort -u)
    if [ "${#images[@]}" -gt 0 ]; then
        say "removing the kit's images: $(docker image ls --format '{{.Repository}}:{{.Tag}}' \
            --filter label=org.concourse-gpu-kit.recipe | sort | tr '\n' ' ')"
        docker image rm --force "${images[@]}" >/dev/null
    fi
fi

rm -rf "$work"
mkdir -p "$work/home"
git clone --quiet --no-local "$source_dir" "$work/repo"

# The venv of the checkout that called us must not be on PATH (the clone's
# `python3 -m venv` would start from it), nor anything the calling make exported.
venv_bin="$source_dir/.venv/bin"
clean_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$venv_bin" | paste -sd: -)

started=$(date +%s)
set +e
(
    cd "$work/repo"
    exec env -u LABKIT_ARTIFACT_CACHE -u GOPATH -u GOCACHE -u GOMODCACHE -u XDG_CACHE_HOME \
        -u PYTHONPATH -u ANSIBLE_CONFIG -u VIRTUAL_ENV -u MAKEFLAGS -u MAKELEVEL -u MFLAGS \
        HOME="$work/home" PATH="$clean_path" CI=true \
        LABKIT_LAB="$lab" LABKIT_PROXY_PORT="$port" \
        bash .ci/run
) 2>&1 | tee "$work/cold-test.log"
rc=${PIPESTATUS[0]}
set -e
seconds=$(( $(date +%s) - started ))
say "$(printf 'CI=true bash .ci/run exited %d after %d s (%dm%02ds) on %d cores; log: %s' \
    "$rc" "$seconds" $((seconds / 60)) $((seconds % 60)) "$(nproc)" "$work/cold-test.log")"
if [ "$rc" -eq 0 ]; then
    remove_lab
else
    say "its lab ($lab) is left for a look; the next cold run removes it"
fi
exit "$rc"
