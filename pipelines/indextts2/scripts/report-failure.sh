#!/usr/bin/env bash
# on_failure/on_error of the health check: what on-call needs, in the build
# log. Always exits 0; the build has failed already. The same lines, and the
# kernel's (NVIDIA Xid errors), are in Loki under the worker's host label.
set -uo pipefail
lines=${LOG_LINES:-120}
out=health-output

echo "=== GPU state now"
case ${NVIDIA_VISIBLE_DEVICES-all} in
void | none | "")
  echo "no GPU asked for (NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES-}): a plumbing run" ;;
*)
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi || echo "nvidia-smi failed (exit $?): driver or device trouble on this worker"
    nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv || true
  else
    echo "no nvidia-smi in this container: the worker's NVIDIA hook did not run"
  fi ;;
esac

if [[ ! -d $out ]]; then
  echo "=== the health check left no output (it failed before its task ran)"
  exit 0
fi
echo "=== GPU state recorded by the health check"
cat "$out/gpu-state.txt" 2>/dev/null || echo "(none recorded)"
echo "=== last $lines lines of the web UI log"
tail -n "$lines" "$out/webui.log" 2>/dev/null || echo "(no web UI log: it was never started)"
echo "=== smoke report"
cat "$out/smoke-report.json" 2>/dev/null || echo "(no smoke report: synthesis never ran)"
exit 0
