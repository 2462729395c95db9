#!/usr/bin/env bash
# Regenerates the relay figures in BENCHMARKS.md: the load tool against an
# in-process relay (1 worker pinned to CPU 0, the load generator on the
# other CPUs), both backends, with the bare sendmmsg / GSO-train baselines
# measured in the same run, and GStreamer's multiudpsink as a reference at
# the maximum. Usage: bench/run-all.sh [OUT_DIR] [DURATION]
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
  # Near the maximum on this machine (issue 19's command), and half of it.
  run "$backend-1000-12mbit" --backend "$backend" --viewers 1000 --bitrate 12Mbit --duration 4s --baseline --reference multiudpsink
  run "$backend-1000-6mbit" --backend "$backend" --viewers 1000 --bitrate 6Mbit
  # Capacity: the most viewers at 3 Mbit/s with no loss and one-way p99 under
  # 50 ms, with the serialization bound beside each step.
  run "$backend-find-max-3mbit" --backend "$backend" --viewers 250 --bitrate 3Mbit --find-max --duration 2s --warmup 1s --baseline
done
