#!/usr/bin/env bash
# The soak: CYCLES (default 1000) SIGKILL-and-restart cycles of the real server under
# concurrent writes; every cycle checks that no acknowledged write is lost and that
# `coffer audit verify` finds the chain intact (tests/e2e/reliability/soak.rs).
# Usage: scripts/soak.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-1000}
case $cycles in
  '' | *[!0-9]*) echo "usage: $0 [CYCLES]" >&2; exit 2 ;;
esac
COFFER_SOAK_CYCLES=$cycles exec cargo test --test e2e -- --ignored --exact \
  reliability::soak::soak_sigkill_cycles_lose_nothing_and_keep_the_audit_chain --nocapture
