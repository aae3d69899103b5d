#!/usr/bin/env bash
# Measures `coffer backup`, `coffer restore` and `coffer rekey` on a store of N secrets
# (default 10000, in batches of 100): the time of each, how long the backup held writes
# off (the server logs it), and the backup's size.
#
#   benches/backup.sh [N] [path/to/coffer]   # default target/release/coffer
set -euo pipefail
n=${1:-10000}
bin=$(realpath "${2:-target/release/coffer}")
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
port=18251
"$bin" serve --data-dir data --bind 127.0.0.1:$port --log-level info 2>serve.log &
server=$!
until grep -q "Coffer listening on" serve.log 2>/dev/null; do sleep 0.1; done
export COFFER_ADDR=http://127.0.0.1:$port
export COFFER_TOKEN=$(sed -n 's/^Admin token: //p' serve.log)
auth="Authorization: Bearer User $COFFER_TOKEN"
app=$(curl -sf -X POST $COFFER_ADDR/v1/apps/ -H "$auth" -d '{"name": "bench"}' | jq -r .id)
for ((b = 0; b < n / 100; b++)); do
  jq -nc --argjson b $b '{secrets: [range(100) | {key: "KEY_\($b)_\(.)",
    value: "value-\($b)-\(.)-0123456789abcdef0123456789abcdef", path: "/svc\($b % 10)"}]}' |
    curl -sf -o /dev/null -X POST "$COFFER_ADDR/v1/secrets/?app_id=$app&env=Development" \
      -H "$auth" --data-binary @-
done
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
t=$(date +%s%N); "$bin" backup --out store.backup 2>/dev/null; backup_ms=$(ms $t)
paused=$(grep -o 'writes_paused_us=[0-9]*' serve.log | tail -1 | cut -d= -f2)
records=$(grep -o 'records=[0-9]*' serve.log | tail -1 | cut -d= -f2)
kill -TERM "$server"; wait "$server"
t=$(date +%s%N)
"$bin" restore store.backup --data-dir restored --master-key-file data/master.key >/dev/null
restore_ms=$(ms $t)
(umask 077; head -c 32 /dev/urandom | od -An -vtx1 | tr -d ' \n' > new.key)
t=$(date +%s%N); "$bin" rekey --data-dir data --new-master-key-file new.key >/dev/null
rekey_ms=$(ms $t)
echo "secrets: $n, records: $records, data dir: $(du -sh data | cut -f1)"
echo "backup: ${backup_ms} ms, writes paused: ${paused} µs, size: $(stat -c %s store.backup) bytes"
echo "restore: ${restore_ms} ms (with its audit verification), rekey: ${rekey_ms} ms"
