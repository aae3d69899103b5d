# Shared shell parts of growth.sh and stalls.sh (sourced, not run): the Coffer binary,
# starting and stopping Coffer, one wrk run recorded as a JSON line, and the trap that
# stops whatever the script started and removes its temp dir.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" NAME   # NAME: the temp dir's prefix
#
# Afterwards the script has HERE ROOT PY HELPER COFFER TMP RESULTS DURATION WARMUP
# THREADS CONNS, and the functions below.
# shellcheck shell=bash disable=SC2034  # the variables set here are the sourcing script's
PREFIX=$1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=python3
HELPER=$HERE/compare.py
export COMPARE_LUA_DIR=$HERE/lua
DURATION=${COMPARE_DURATION:-10}
WARMUP=${COMPARE_WARMUP:-2}
THREADS=${COMPARE_WRK_THREADS:-2}
CONNS=${COMPARE_CONNS:-16}

log() { printf '\n== %s\n' "$*"; }
helper() { "$PY" "$HELPER" "$@"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
jq_get() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
machine() {
  echo "machine: $(uname -n), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other busy processes skew every number)"
}

# ------------------------------------------------------------------ cleanup (always)
# shellcheck source-path=SCRIPTDIR source=procs.sh
source "$HERE/procs.sh"

# ------------------------------------------------------------------ the binary
if [[ -n ${COMPARE_COFFER_BIN:-} ]]; then
  COFFER=$COMPARE_COFFER_BIN
  echo "using COMPARE_COFFER_BIN=$COFFER (no build)"
else
  log "building Coffer (cargo build --release)"
  (cd "$ROOT" && timeout 3600 cargo build --release)
  COFFER=$ROOT/target/release/coffer
fi
command -v wrk >/dev/null || { echo "needs wrk (Debian package wrk)" >&2; exit 1; }

mkdir -p "$ROOT/target/compare-tmp"
TMP=$(mktemp -d "$ROOT/target/compare-tmp/$PREFIX.XXXXXX")
RESULTS=$TMP/results.jsonl
: >"$RESULTS"

# start_coffer NAME: start Coffer on a fresh data dir $TMP/NAME/data (or on the one it
# has); sets COFFER_PID COFFER_ADDR COFFER_BIND COFFER_DATA, and COFFER_ADMIN on a fresh
# data dir (the token printed on first start).
start_coffer() {
  local dir=$TMP/$1 port fresh=1
  port=$(helper freeport 1)
  mkdir -p "$dir"
  COFFER_DATA=$dir/data
  [[ -d $COFFER_DATA ]] && fresh=0
  COFFER_BIND=127.0.0.1:$port
  "$COFFER" serve --data-dir "$COFFER_DATA" --bind "$COFFER_BIND" --log-level warn \
    >"$dir/stdout.log" 2>>"$dir/stderr.log" &
  COFFER_PID=$!
  SERVER_PIDS+=("$COFFER_PID")
  COFFER_ADDR=http://$COFFER_BIND
  if ((fresh)); then
    COFFER_ADMIN=$(helper admin-token "$dir/stderr.log" "$COFFER_PID" --timeout 60) ||
      { tail -n 20 "$dir/stderr.log" >&2; return 1; }
  fi
  helper wait-http "$COFFER_ADDR/health" --pid "$COFFER_PID" --timeout 120
  echo "Coffer pid $COFFER_PID at $COFFER_ADDR (data in $COFFER_DATA)"
}

# forget_pid PID: the trap need not stop PID any more (it has been stopped and waited for).
forget_pid() {
  local pid keep=()
  for pid in "${SERVER_PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
  SERVER_PIDS=("${keep[@]}")
}

# stop_coffer: stop the Coffer started last.
stop_coffer() {
  stop_pid "$COFFER_PID"
  forget_pid "$COFFER_PID"
}

# run_wrk SCENARIO LUA: warm-up, then one measured run against $COFFER_ADDR, recorded in
# $RESULTS as server "coffer".
run_wrk() {
  local scenario=$1 script=$HERE/lua/$2 out=$TMP/wrk-$1.txt rc=0
  if ((WARMUP > 0)); then
    COMPARE_NONCE=w$RANDOM timeout $((WARMUP + 30)) \
      wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 5s -s "$script" "$COFFER_ADDR" >/dev/null 2>&1 || true
  fi
  COMPARE_NONCE=m$RANDOM timeout $((DURATION + 60)) \
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$script" "$COFFER_ADDR" >"$out" 2>&1 || rc=$?
  helper record --scenario "$scenario" --server coffer --wrk-output "$out" \
    --results "$RESULTS" --exit-code "$rc"
}
