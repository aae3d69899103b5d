#!/usr/bin/env bash
# Whether the server's resident memory stays flat under a long mixed load: a release
# server on a fresh data directory with audit retention on, 1,000 secrets loaded, then
# lua/coffer_mixed.lua under wrk for RSS_DURATION seconds (80 % reads of one secret or
# of the list, 20 % creates, updates and deletes of secrets the load made itself). Every
# RSS_INTERVAL seconds the server's VmRSS and the requests served so far (from /metrics)
# go to a CSV; at the end a summary, and a check of the server log for secret values.
# Then the server is restarted on the same data directory and serves the same load for
# RSS_RESTART_LOAD seconds: the RSS that comes back is what the store holds, not what
# serving left behind.
#
#   nice -n 5 benches/compare/rss_hour.sh
#   RSS_DURATION=120 nice -n 5 benches/compare/rss_hour.sh     # a short try
#
# Environment knobs (all optional):
#   RSS_DURATION         seconds of load                                  (default 3600)
#   RSS_WARMUP           seconds of load before the RSS baseline: past the
#                        audit retention, when trimming holds the audit
#                        tree at its steady size                          (default 900)
#   RSS_INTERVAL         seconds between samples                          (default 30)
#   RSS_CONNECTIONS      wrk connections, one wrk thread each             (default 4)
#   RSS_MAX_GROWTH_PCT   fail if RSS at the end is this much above the
#                        baseline, in percent                             (default 10)
#   RSS_AUDIT_RETENTION  --audit-retention of the server                  (default 10m)
#   RSS_LOG_LEVEL        --log-level of the server                        (default info)
#   RSS_RESTART_LOAD     seconds of the same load on the restarted server
#                        before its RSS is read                           (default 30)
#   RSS_OUT              directory for rss.csv, server.log, wrk.txt, summary.txt
#                        (default target/rss-hour/<UTC time>)
#   RSS_KEEP_DATA        1 = keep the data directory (under RSS_OUT)       (default 0)
#   COMPARE_COFFER_BIN   use this coffer binary instead of building target/release/coffer
#
# Exits non-zero if RSS grew past the limit, a response was not 2xx, wrk saw a socket
# error, or a secret value or token appears in the server log. Needs wrk, curl, python3.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

DURATION=${RSS_DURATION:-3600}
WARMUP=${RSS_WARMUP:-900}
INTERVAL=${RSS_INTERVAL:-30}
CONNS=${RSS_CONNECTIONS:-4}
MAX_GROWTH_PCT=${RSS_MAX_GROWTH_PCT:-10}
RETENTION=${RSS_AUDIT_RETENTION:-10m}
LOG_LEVEL=${RSS_LOG_LEVEL:-info}
RESTART_LOAD=${RSS_RESTART_LOAD:-30}
OUT=${RSS_OUT:-$ROOT/target/rss-hour/$(date -u +%Y%m%dT%H%M%SZ)}
COFFER=${COMPARE_COFFER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/coffer}
HELPER=$HERE/compare.py
export COMPARE_LUA_DIR=$HERE/lua
helper() { python3 "$HELPER" "$@"; }
log() { printf '== %s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DATA=$OUT/data
CSV=$OUT/rss.csv
SERVER_LOG=$OUT/server.log
if [[ -e $DATA ]]; then echo "$DATA exists: give RSS_OUT a fresh directory" >&2; exit 2; fi

# ------------------------------------------------------------------ cleanup (always)
PID=""
SAMPLER=""
stop_server() { # SIGTERM, and SIGKILL if it has not stopped within 15 s
  local i
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $SAMPLER ]]; then kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; fi
  stop_server
  if [[ ${RSS_KEEP_DATA:-0} != 1 ]]; then rm -rf "$DATA" "$OUT/master.key"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ build, start
if [[ -n ${COMPARE_COFFER_BIN:-} ]]; then
  log "using COMPARE_COFFER_BIN=$COFFER (no build)"
else
  log "building Coffer (cargo build --release)"
  timeout 3600 cargo build --release
fi

PORT=$(helper freeport)
A=http://127.0.0.1:$PORT
# A key file of its own, as an operator would keep it apart from the data.
(umask 077 && head -c 32 /dev/urandom >"$OUT/master.key")
# Retention bounds the audit tree (reads are audited, so it would grow with every
# request otherwise); 10 minutes is short for production but long against the run's
# sampling, so trimming happens many times over an hour.
start_server() { # log file
  "$COFFER" serve --data-dir "$DATA" --master-key-file "$OUT/master.key" --bind "127.0.0.1:$PORT" \
    --log-level "$LOG_LEVEL" --audit-retention "$RETENTION" 2>"$1" &
  PID=$!
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
rss_mib() { awk -v kib="$(rss_kib)" 'BEGIN {printf "%.1f", kib / 1024}'; }
start_server "$SERVER_LOG"
ADMIN=$(helper admin-token "$SERVER_LOG" "$PID")
helper wait-http "$A/health" --pid "$PID"
log "server pid $PID on $A, data directory $DATA, --audit-retention $RETENTION"

# ------------------------------------------------------------------ app, tokens, secrets
H="Authorization: Bearer User $ADMIN"
J='Content-Type: application/json'
helper coffer-setup --addr "$A" --admin-token "$ADMIN" --out "$OUT/setup.json" --app-name rss-hour
APP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["app_id"])' "$OUT/setup.json")
rm "$OUT/setup.json"
service_token() { # name, JSON list of permissions
  curl -sf -X POST "$A/v1/tokens/" -H "$H" -H "$J" -d "{\"name\":\"$1\",\"type\":\"service\",
    \"appId\":\"$APP\",\"environments\":[\"Development\"],\"permissions\":$2}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
READ_TOKEN=$(service_token rss-read '["read"]')
WRITE_TOKEN=$(service_token rss-write '["create","update","delete"]')
helper load-coffer --addr "$A" --token "$ADMIN" --app-id "$APP" --count 1000

# ------------------------------------------------------------------ samples
metrics() { # requests served (the sampler's own /metrics scrapes left out), non-2xx, secrets, audit entries
  curl -sf "$A/metrics" | awk '
    /^coffer_http_requests_total\{/ && !/route="\/metrics"/ {
      n += $NF; if ($0 !~ /status="2[0-9][0-9]"/) bad += $NF }
    /^coffer_store_records\{kind="secrets"\}/ { secrets = $NF }
    /^coffer_store_records\{kind="audit_entries"\}/ { audit = $NF }
    END { printf "%d,%d,%d,%d", n, bad, secrets, audit }'
}
sample() { # elapsed seconds
  echo "$1,$(metrics),$(rss_kib),$(du -sb "$DATA" | cut -f1)" >>"$CSV"
}
echo "elapsed_s,requests,non2xx,secrets,audit_entries,rss_kib,data_dir_bytes" >"$CSV"
START=$(date +%s)
sample 0
(
  k=1
  while :; do
    sleep $((START + k * INTERVAL - $(date +%s))) 2>/dev/null || true
    sample $((k * INTERVAL))
    k=$((k + 1))
  done
) &
SAMPLER=$!

# ------------------------------------------------------------------ load
log "mixed load: $CONNS connections for $DURATION s, a sample every $INTERVAL s into $CSV"
run_load() { # seconds, wrk output file
  COFFER_APP_ID=$APP COFFER_READ_TOKEN=$READ_TOKEN COFFER_WRITE_TOKEN=$WRITE_TOKEN \
    COMPARE_NONCE=$(date +%s) timeout $(($1 + 120)) \
    wrk -t"$CONNS" -c"$CONNS" -d"${1}s" --timeout 10s -s "$HERE/lua/coffer_mixed.lua" "$A" \
    >"$2" 2>&1
}
set +e
run_load "$DURATION" "$OUT/wrk.txt"
WRK_RC=$?
set -e
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=""
sample $(($(date +%s) - START))
log "load done (wrk exit $WRK_RC); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ restart
FAILED=0
# Memory that tracks what the store holds (sled keeps an entry in memory for every page
# of the data directory, paged out or not) comes back when the server opens the same
# data directory again; memory that tracked the requests served does not.
END_RSS=$(rss_mib)
log "restarting the server on the same data directory (RSS at the end of the load: $END_RSS MiB)"
stop_server
start_server "$OUT/restart.log"
helper wait-http "$A/health" --pid "$PID"
OPEN_RSS=$(rss_mib)
# The same load for a short while, so the page cache and the workers' buffers fill as
# they had: what stays apart from the end of the long run is what serving accumulated.
set +e
run_load "$RESTART_LOAD" "$OUT/wrk-restart.txt"
RESTART_WRK_RC=$?
set -e
RESTART_RSS=$(rss_mib)

# ------------------------------------------------------------------ results
grep -E "Requests/sec|Latency|Socket errors|Non-2xx" "$OUT/wrk.txt" || true
check_wrk() { # wrk exit code, wrk output file
  if [[ $1 != 0 ]] || ! grep -q '^COMPARE_RESULT ' "$2"; then
    echo "wrk failed (exit $1); see $2"; FAILED=1
  elif grep '^COMPARE_RESULT ' "$2" | grep -qv '"connect":0,"read":0,"write":0,"timeout":0'; then
    echo "wrk saw socket errors: $(grep '^COMPARE_RESULT ' "$2")"; FAILED=1
  elif ! grep -q '^COMPARE_RESULT .*"non2xx":0,' "$2"; then
    echo "wrk saw non-2xx responses: $(grep '^COMPARE_RESULT ' "$2")"; FAILED=1
  fi
}
check_wrk "$WRK_RC" "$OUT/wrk.txt"
check_wrk "$RESTART_WRK_RC" "$OUT/wrk-restart.txt"
helper rss-summary "$CSV" --warmup "$WARMUP" --max-growth-pct "$MAX_GROWTH_PCT" | tee "$OUT/summary.txt" ||
  FAILED=1
echo "restart on the same data directory ($(du -sh "$DATA" | cut -f1)): RSS $OPEN_RSS MiB once it answers, $RESTART_RSS MiB after $RESTART_LOAD s of the same load; $END_RSS MiB at the end of the long load" |
  tee -a "$OUT/summary.txt"
for server_log in "$SERVER_LOG" "$OUT/restart.log"; do
  helper log-leaks "$server_log" --token "$ADMIN" --token "$READ_TOKEN" --token "$WRITE_TOKEN" |
    tee -a "$OUT/summary.txt" || FAILED=1
done
echo "server log: $SERVER_LOG ($(du -h "$SERVER_LOG" | cut -f1)); samples: $CSV"
exit "$FAILED"
