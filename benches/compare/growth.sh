#!/usr/bin/env bash
# Coffer (embedded store) as it grows: reads of one key with 1,000 secrets and with
# 1,000,000 (1,000 environments of 1,000), RSS, data directory, start-up on the loaded
# data, and a bulk import of 100,000 secrets on a fresh server.
#
#   benches/compare/growth.sh
#   GROWTH_ENVS=20 COMPARE_DURATION=3 benches/compare/growth.sh   # a small try
#
# Knobs (all optional):
#   GROWTH_ENVS        environments loaded                       (default 1000)
#   GROWTH_PER_ENV     secrets in each                           (default 1000)
#   GROWTH_CLIENTS     concurrent loading clients                (default 4)
#   GROWTH_IMPORT      secrets of the timed bulk import          (default 100000)
#   GROWTH_IMPORT_CLIENTS  its concurrent clients                (default 4)
#   GROWTH_IMPORT_ENVS     environments it is spread over         (default 1)
#   COMPARE_DURATION, COMPARE_WARMUP, COMPARE_WRK_THREADS, COMPARE_CONNS (10, 2, 2, 16),
#   COMPARE_COFFER_BIN, COMPARE_KEEP_TMP: as for run.sh.
# See benches/compare/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" growth

ENVS=${GROWTH_ENVS:-1000}
PER_ENV=${GROWTH_PER_ENV:-1000}
CLIENTS=${GROWTH_CLIENTS:-4}
IMPORT=${GROWTH_IMPORT:-100000}
IMPORT_CLIENTS=${GROWTH_IMPORT_CLIENTS:-4}
IMPORT_ENVS=${GROWTH_IMPORT_ENVS:-1}
for v in ENVS PER_ENV CLIENTS IMPORT IMPORT_CLIENTS IMPORT_ENVS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "GROWTH_$v must be a positive integer" >&2; exit 2; }
done
if ((IMPORT % IMPORT_ENVS)); then
  echo "GROWTH_IMPORT must be a multiple of GROWTH_IMPORT_ENVS" >&2
  exit 2
fi
TOTAL=$((ENVS * PER_ENV))
WIDTH=$((${#PER_ENV} > 4 ? ${#PER_ENV} : 4))
READ_KEY=$(printf 'KEY_%0*d' "$WIDTH" $(((PER_ENV + 1) / 2)))
export COMPARE_READ_ENV=E0001 COMPARE_READ_KEY=$READ_KEY

echo
machine
echo "growth: $ENVS environments of $PER_ENV secrets ($TOTAL in all), $CLIENTS loading clients;"
echo "reads: wrk -t$THREADS -c$CONNS -d${DURATION}s (+${WARMUP}s warm-up) of $READ_KEY in E0001, read-only service token"
echo "bulk import: $IMPORT secrets in $IMPORT_ENVS environment(s), batches of 1000 from $IMPORT_CLIENTS clients"
echo "temp dir $TMP"

# ------------------------------------------------------------------ 1. one environment
log "starting Coffer; loading E0001 ($PER_ENV secrets)"
start_coffer growth
helper coffer-setup --addr "$COFFER_ADDR" --admin-token "$COFFER_ADMIN" --env E0001 --tokens \
  --app-name growth --out "$TMP/growth/setup.json"
APP_ID=$(jq_get "$TMP/growth/setup.json" app_id)
COFFER_READ_TOKEN=$(jq_get "$TMP/growth/setup.json" read_token)
export COFFER_APP_ID=$APP_ID COFFER_READ_TOKEN
helper load-envs --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" --app-id "$APP_ID" \
  --first 1 --last 1 --per-env "$PER_ENV" --clients "$CLIENTS"
log "reads with $PER_ENV secrets"
run_wrk read-small coffer_read.lua

# ------------------------------------------------------------------ 2. all of them
LOAD_JSON='{"envs": 0, "secrets": 0, "seconds": 0, "per_second": 0, "clients": '$CLIENTS', "env_seconds": 0}'
if ((ENVS > 1)); then
  log "loading E0002..E$(printf '%04d' "$ENVS") ($((TOTAL - PER_ENV)) secrets)"
  LOAD_JSON=$(helper load-envs --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" --app-id "$APP_ID" \
    --first 2 --last "$ENVS" --per-env "$PER_ENV" --clients "$CLIENTS")
  echo "$LOAD_JSON"
fi
sleep 1
RSS_LOAD=$(helper rss "$COFFER_PID")
DATA_LOAD_KIB=$(du -sk "$COFFER_DATA" | cut -f1)
echo "RSS after loading: $(mib "$RSS_LOAD") MiB; data directory: $(mib "$DATA_LOAD_KIB") MiB"
log "reads with $TOTAL secrets"
run_wrk read-large coffer_read.lua
RSS_READ=$(helper rss "$COFFER_PID")
echo "RSS after the reads: $(mib "$RSS_READ") MiB"
stop_coffer
DATA_KIB=$(du -sk "$COFFER_DATA" | cut -f1)
echo "data directory after the reads (their audit entries included): $(mib "$DATA_KIB") MiB"

# ------------------------------------------------------------------ 3. start-up
log "start-up: restarting Coffer on the loaded data dir, polling GET /health every 2 ms"
STARTS=()
for i in 1 2 3; do
  port=$(helper freeport 1)
  out=$(timeout 300 "$PY" "$HELPER" startup --bin "$COFFER" --data-dir "$COFFER_DATA" \
    --bind "127.0.0.1:$port" --log "$TMP/growth/restart.log" --pidfile "$TMP/coffer-restart.pid" \
    --admin-token "$COFFER_ADMIN" --app-id "$APP_ID" --env E0001 --check-key "$READ_KEY" --timeout 240)
  echo "  restart $i: $out"
  STARTS+=("$out")
done
STARTUPS_JSON="[$(IFS=,; echo "${STARTS[*]}")]"
rm -rf "$COFFER_DATA" # the import below gets the disk to itself

# ------------------------------------------------------------------ 4. bulk import
log "bulk import: $IMPORT secrets into $IMPORT_ENVS environment(s) of a fresh Coffer, batches of 1000, $IMPORT_CLIENTS clients"
start_coffer import
helper coffer-setup --addr "$COFFER_ADDR" --admin-token "$COFFER_ADMIN" --env E0001 \
  --app-name import --out "$TMP/import/setup.json"
IMPORT_JSON=$(helper load-envs --addr "$COFFER_ADDR" --token "$COFFER_ADMIN" \
  --app-id "$(jq_get "$TMP/import/setup.json" app_id)" --first 1 --last "$IMPORT_ENVS" \
  --per-env $((IMPORT / IMPORT_ENVS)) \
  --clients "$IMPORT_CLIENTS")
echo "$IMPORT_JSON"
stop_coffer

# ------------------------------------------------------------------ 5. table
log "results: $TOTAL secrets; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
helper growth-report --results "$RESULTS" --envs "$ENVS" --per-env "$PER_ENV" \
  --rss-load-kib "$RSS_LOAD" --rss-read-kib "$RSS_READ" --data-load-kib "$DATA_LOAD_KIB" --data-kib "$DATA_KIB" \
  --startups "$STARTUPS_JSON" --import-json "$IMPORT_JSON" --load-json "$LOAD_JSON"
