#!/usr/bin/env bash
# How much the data directory grows per read: a fresh data directory, one secret of 64
# bytes read by key with a read-only service token (lua/coffer_read.lua) under wrk, the
# data directory's size (du -sb) before and after, the audit entries counted from
# /metrics.
#
#   benches/compare/audit_growth.sh [BINARY [CONNECTIONS [SECONDS [SERVE ARGS...]]]]
#   benches/compare/audit_growth.sh target/release/coffer 16 10 --audit-retention 3s
#
# Needs wrk, curl and jq. Defaults: target/release/coffer, 16 connections, 10 s.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-$HERE/../../target/release/coffer}
CONNS=${2:-16}
SECS=${3:-10}
shift $(($# < 3 ? $# : 3))
PORT=18377
D=$(mktemp -d)
"$BIN" serve --data-dir "$D/data" --bind 127.0.0.1:$PORT --log-level warn "$@" 2>"$D/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
until curl -sf http://127.0.0.1:$PORT/health >/dev/null; do sleep 0.1; done
A=http://127.0.0.1:$PORT
H="Authorization: Bearer User $(sed -n 's/^Admin token: //p' "$D/log")"
J='Content-Type: application/json'
APP=$(curl -s -X POST $A/v1/apps/ -H "$H" -H "$J" -d '{"name":"growth"}' | jq -r .id)
curl -sf -o /dev/null -X POST "$A/v1/secrets/?app_id=$APP&env=Development" -H "$H" -H "$J" \
  -d "{\"secrets\":[{\"key\":\"KEY_0500\",\"value\":\"$(printf '%064d' 0)\"}]}"
READ_TOKEN=$(curl -s -X POST $A/v1/tokens/ -H "$H" -H "$J" -d "{\"name\":\"reader\",\"type\":\"service\",
  \"appId\":\"$APP\",\"environments\":[\"Development\"],\"permissions\":[\"read\"]}" | jq -r .token)
entries() { curl -s $A/metrics | awk '/^coffer_store_records\{kind="audit_entries"\}/ {print $2}'; }
sleep 1
before=$(du -sb "$D/data" | cut -f1)
e0=$(entries)
COFFER_APP_ID=$APP COFFER_READ_TOKEN=$READ_TOKEN COMPARE_LUA_DIR=$HERE/lua \
  wrk -t$((CONNS >= 2 ? 2 : 1)) -c"$CONNS" -d"${SECS}s" -s "$HERE/lua/coffer_read.lua" $A >"$D/wrk.txt"
sleep 1
after=$(du -sb "$D/data" | cut -f1)
reads=$(($(entries) - e0))
grep -E "Requests/sec|Non-2xx" "$D/wrk.txt" || true
echo "reads: $reads; data directory: $before -> $after bytes; $(((after - before) / (reads > 0 ? reads : 1))) bytes per read"
