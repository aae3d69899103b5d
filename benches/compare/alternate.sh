#!/usr/bin/env bash
# Alternating rounds of run.sh in one sitting, and the medians per configuration.
#
#   benches/compare/alternate.sh
#   COMPARE_ROUNDS=5 COMPARE_COFFER_BIN=target/release/coffer benches/compare/alternate.sh
#   COMPARE_COFFER_BIN=old/coffer COMPARE_COFFER_BIN_B=new/coffer benches/compare/alternate.sh
#
# Each round runs both configurations back to back:
#   policy  OpenBao with policy-scoped tokens, wrk 2 threads
#   root    OpenBao with its root token (no policy evaluation), wrk 1 thread
# (COMPARE_CONNS connections each, default 16). With COMPARE_COFFER_BIN_B, each
# configuration also runs that second Coffer binary (Coffer only), alternating which
# binary goes first from round to round. Every run's output and results.jsonl are kept
# in COMPARE_OUT (default target/compare-rounds/<UTC time>/); at the end, per
# configuration, the median of each figure over the rounds and the goals on the medians
# (also in summary.txt there).
#
# Knobs: COMPARE_ROUNDS (default 3), COMPARE_OUT, COMPARE_COFFER_BIN (default: build
# target/release/coffer once), COMPARE_COFFER_BIN_B, and run.sh's COMPARE_DURATION,
# COMPARE_WARMUP, COMPARE_CONNS, COMPARE_STORAGE... which are passed on. The memory part
# of run.sh is skipped (COMPARE_BULK=0). See benches/compare/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

ROUNDS=${COMPARE_ROUNDS:-3}
OUT=${COMPARE_OUT:-$ROOT/target/compare-rounds/$(date -u +%Y%m%dT%H%M%SZ)}
BIN_A=${COMPARE_COFFER_BIN:-}
BIN_B=${COMPARE_COFFER_BIN_B:-}
CONFIGS=("policy 2" "root 1") # name = COMPARE_BAO_TOKEN, then wrk threads

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "COMPARE_ROUNDS must be a positive integer" >&2; exit 2; }
if [[ -z $BIN_A ]]; then
  echo "== building Coffer once (cargo build --release)"
  timeout 3600 cargo build --release
  BIN_A=$ROOT/target/release/coffer
fi
for bin in "$BIN_A" ${BIN_B:+"$BIN_B"}; do
  [[ -x $bin ]] || { echo "not an executable: $bin" >&2; exit 2; }
done
mkdir -p "$OUT"

{
  echo "machine: $(uname -n), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
  echo "started: $(date -u +%FT%TZ); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rounds: $ROUNDS; configurations: OpenBao policy token + wrk 2 threads, OpenBao root token + wrk 1 thread; ${COMPARE_CONNS:-16} connections"
  echo "Coffer: $BIN_A${BIN_B:+ (A), $BIN_B (B)}; results in $OUT"
} | tee "$OUT/sitting.txt"

# one_run ROUND CONFIG THREADS WHICH BIN: one run.sh, its output in OUT; returns run.sh's status.
one_run() {
  local round=$1 config=$2 threads=$3 which=$4 bin=$5 only=${COMPARE_ONLY:-both}
  local name=round$round-$config-$which
  [[ $which == b ]] && only=coffer
  echo
  echo "== round $round/$ROUNDS: $config token, wrk $threads thread(s), Coffer $which ($(date -u +%T))"
  if COMPARE_COFFER_BIN=$bin COMPARE_ONLY=$only COMPARE_BAO_TOKEN=$config \
    COMPARE_WRK_THREADS=$threads COMPARE_BULK=0 COMPARE_RESULTS_OUT=$OUT/$name.jsonl \
    "$HERE/run.sh" >"$OUT/$name.log" 2>&1; then
    grep -E '^  (read|create|update|health) +(coffer|openbao)[0-9]* ' "$OUT/$name.log" || true
  else
    echo "run.sh failed (status $?); see $OUT/$name.log" >&2
    tail -n 5 "$OUT/$name.log" >&2
    return 1
  fi
}

FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
  for cfg in "${CONFIGS[@]}"; do
    read -r config threads <<<"$cfg"
    order=(a)
    if [[ -n $BIN_B ]]; then
      if ((round % 2)); then order=(a b); else order=(b a); fi
    fi
    for which in "${order[@]}"; do
      bin=$BIN_A
      [[ $which == b ]] && bin=$BIN_B
      one_run "$round" "$config" "$threads" "$which" "$bin" || FAILED=$((FAILED + 1))
    done
  done
done

echo
{
  echo "== medians over $ROUNDS round(s); finished $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for cfg in "${CONFIGS[@]}"; do
    read -r config threads <<<"$cfg"
    a_files=("$OUT"/round*-"$config"-a.jsonl)
    b_files=()
    if [[ -n $BIN_B ]]; then b_files=("$OUT"/round*-"$config"-b.jsonl); fi
    echo
    if [[ ! -e ${a_files[0]} ]]; then
      echo "$config: no run finished"
      continue
    fi
    args=(--label "OpenBao $config token, wrk $threads thread(s), ${COMPARE_CONNS:-16} connections"
      --results "${a_files[@]}")
    if [[ -e ${b_files[0]:-} ]]; then args+=(--results-b "${b_files[@]}"); fi
    python3 "$HERE/compare.py" medians "${args[@]}"
  done
  if ((FAILED)); then echo; echo "WARNING: $FAILED run(s) failed; their logs are in $OUT"; fi
} | tee "$OUT/summary.txt"
((FAILED == 0))
