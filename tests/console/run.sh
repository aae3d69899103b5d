#!/usr/bin/env bash
# Drives the web console in headless Chromium against a real `coffer serve` on a
# temporary data directory and a loopback port. Builds nothing.
# Usage: tests/console/run.sh path/to/coffer
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 path/to/coffer" >&2; exit 2; }
binary=$(realpath "$1")
[ -x "$binary" ] || { echo "not an executable: $1" >&2; exit 2; }
[ -x /usr/bin/chromium ] || { echo "Chromium is missing at /usr/bin/chromium" >&2; exit 1; }
[ -d "$here/node_modules/playwright-core" ] || { echo "run 'npm ci' in $here first" >&2; exit 1; }

data=$(mktemp -d)
log="$data/serve.log"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$binary" serve --data-dir "$data/db" --bind "127.0.0.1:$port" --log-level warn \
  --auth-failure-limit 1000000 --changes-max-wait 5 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  grep -q "Coffer listening on" "$log" 2>/dev/null && break
  sleep 0.1
done
token=$(sed -n 's/^Admin token: //p' "$log")
[ -n "$token" ] || { cat "$log" >&2; echo "server did not start" >&2; exit 1; }

cd "$here"
# One browser at a time: each test file starts its own Chromium. CONSOLE_FLOWS picks
# some of the files (e.g. CONSOLE_FLOWS=flows/secrets.test.mjs).
# shellcheck disable=SC2086
COFFER_URL="http://127.0.0.1:$port" COFFER_ADMIN_TOKEN="$token" \
  node --test --test-concurrency=1 ${CONSOLE_FLOWS:-flows/*.test.mjs}
