#!/usr/bin/env bash
# Whether writes elsewhere stall Coffer's reads: reads of one secret of one environment
# under wrk, alone, then while another environment takes a stream of 1,000-entry
# batches (create, delete, repeat), then while tokens are created and revoked in a loop.
#
#   benches/compare/stalls.sh
#   COMPARE_DURATION=3 benches/compare/stalls.sh   # a short try
#
# Knobs: COMPARE_DURATION, COMPARE_WARMUP, COMPARE_WRK_THREADS, COMPARE_CONNS (10, 2, 2,
# 16), COMPARE_COFFER_BIN, COMPARE_KEEP_TMP: as for run.sh; STALLS_BATCH (1000) entries
# per background batch. See benches/compare/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" stalls

BATCH=${STALLS_BATCH:-1000}
[[ $BATCH =~ ^[1-9][0-9]*$ ]] || { echo "STALLS_BATCH must be a positive integer" >&2; exit 2; }

echo
machine
echo "reads: wrk -t$THREADS -c$CONNS -d${DURATION}s (+${WARMUP}s warm-up) of KEY_0500 in Development, read-only service token"
echo "background: one client, $BATCH-entry batches into Staging; then token create/revoke; temp dir $TMP"

log "starting Coffer and loading 1000 secrets into Development"
start_coffer stalls
helper coffer-setup --addr "$COFFER_ADDR" --admin-token "$COFFER_ADMIN" --tokens --out "$TMP/stalls/setup.json"
COFFER_APP_ID=$(jq_get "$TMP/stalls/setup.json" app_id)
COFFER_READ_TOKEN=$(jq_get "$TMP/stalls/setup.json" read_token)
export COFFER_APP_ID COFFER_READ_TOKEN
helper load-coffer --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" --app-id "$COFFER_APP_ID" \
  --count 1000 --prefix KEY_ --width 4 --timeout 300

# under KIND: the reads while `compare.py churn --kind KIND` runs in the background; its
# report goes to $TMP/KIND.json. Fails if the background loop failed.
under() {
  local kind=$1 pid rc=0
  log "reads while the background loop does $kind"
  "$PY" "$HELPER" churn --kind "$kind" --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" \
    --app-id "$COFFER_APP_ID" --env Staging --batch "$BATCH" --out "$TMP/$kind.json" &
  pid=$!
  SERVER_PIDS+=("$pid")
  sleep 1 # the loop is under way before the warm-up begins
  kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; echo "the $kind loop stopped at once" >&2; return 1; }
  run_wrk "$kind" coffer_read.lua
  kill -TERM "$pid" 2>/dev/null || true # it may have stopped by itself, on an error
  wait "$pid" || rc=$?
  forget_pid "$pid"
  if ((rc != 0)) || [[ ! -s $TMP/$kind.json ]]; then
    echo "the $kind loop failed (status $rc)" >&2
    return 1
  fi
  echo "  background: $(cat "$TMP/$kind.json")"
}

log "reads alone"
run_wrk alone coffer_read.lua
under batches
under tokens

log "results: wrk -t$THREADS -c$CONNS -d${DURATION}s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
helper stalls-report --results "$RESULTS" --batches "$TMP/batches.json" --tokens "$TMP/tokens.json"
