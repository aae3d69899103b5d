# Stops what a benchmark script started, whatever way it ends (sourced by run.sh and
# lib.sh): the servers in SERVER_PIDS, then the etcd members in ETCD_PIDS that they use,
# then anything with a pid file in $TMP; then removes $TMP (COMPARE_KEEP_TMP=1 keeps it).
# shellcheck shell=bash disable=SC2034  # the variables set here are the sourcing script's
TMP=""
SERVER_PIDS=()
ETCD_PIDS=()
stop_pid() { # stop one process we started: TERM, then KILL after 15 s
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? pid f
  trap - EXIT INT TERM
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
  for pid in "${ETCD_PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n $TMP ]]; then
    for f in "$TMP"/*.pid; do [[ -f $f ]] && stop_pid "$(cat "$f")"; done
    if [[ ${COMPARE_KEEP_TMP:-0} == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
