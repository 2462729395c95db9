#!/usr/bin/env bash
# Regenerates the relay figures in BENCHMARKS.md: the load tool against an
# in-process relay (1 worker pinned to CPU 0, the load generator on the
# other CPUs), both backends, with the bare sendmmsg / GSO-train baselines
# measured in the same run. Usage: bench/run-all.sh [OUT_DIR] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-results}
dur=${2:-3s}
mkdir -p "$out"
cargo build --release -p shoal-bench
bench=target/release/shoal-bench

run() { # name, args... (3 s measurements unless the args set --duration)
  local name=$1; shift
  local d=(--duration "$dur")
  [[ " $* " == *" --duration "* ]] && d=()
  echo "== $name: $*"
  "$bench" "${d[@]}" --json "$out/$name.json" "$@" 2>&1 | grep -v '^measuring\|^subscribing\|^warm-up\|^baseline:\|^step' | tee "$out/$name.txt"
}

for backend in uring mmsg; do
  for viewers in 1 1000 5000; do
    run "$backend-$viewers-3mbit" --backend "$backend" --viewers "$viewers" --bitrate 3Mbit --baseline
  done
  # Near the maximum on this machine, and half of it.
  run "$backend-1000-12mbit" --backend "$backend" --viewers 1000 --bitrate 12Mbit --baseline
  run "$backend-1000-6mbit" --backend "$backend" --viewers 1000 --bitrate 6Mbit
  # The most viewers at 3 Mbit/s with loss <= 0.1% and one-way p99 <= 5 ms.
  run "$backend-find-max-3mbit" --backend "$backend" --viewers 50 --bitrate 3Mbit --find-max --duration 1s --warmup 0.5s
done
