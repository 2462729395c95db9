#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer coverage instrumentation on stable
# Rust (no sanitizer, no cargo-fuzz needed) and runs each for SECONDS
# (default 10) over its seed corpus. Exits non-zero if any target crashes,
# times out or runs out of memory; the input is saved in artifacts/<target>/.
# Inputs already in artifacts/<target>/ are replayed first and fail the run
# while they still crash: delete them once fixed.
#
#   proto/fuzz/run.sh [SECONDS] [TARGET...]
#
# New inputs a run discovers go to target/corpus/<target>/ (not committed);
# the seed corpus in corpus/<target>/ is only read.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${1:-10}"
shift || true

# The flags cargo-fuzz passes for `--sanitizer none`, minus the nightly ones.
# Debug assertions and overflow checks come from [profile.release].
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-sanitizer-coverage-stack-depth \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 -Ccodegen-units=1 \
 --cfg fuzzing"
# Its own target dir, so these flags never invalidate a cargo-fuzz build.
export CARGO_TARGET_DIR="$PWD/target/stable"
triple="$(rustc -vV | sed -n 's/^host: //p')"

# --target keeps RUSTFLAGS away from build scripts and proc macros.
cargo build --release --bins --target "$triple"
bin="$CARGO_TARGET_DIR/$triple/release"

if [ "$#" -eq 0 ]; then
    set -- $(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^shoal-proto-fuzz$')
fi

failed=()
for target in "$@"; do
    case "$target" in
        ts_chunker | window_ingest | relay | viewer | client_session | peer | publisher)
            max_len=8192 ;;
        *) max_len=1500 ;;
    esac
    mkdir -p "target/corpus/$target" "artifacts/$target"
    echo "=== $target: ${seconds}s"
    log="target/logs/$target.log"
    mkdir -p target/logs
    # Crashes found earlier must stay fixed: replay them first.
    shopt -s nullglob
    old=("artifacts/$target"/crash-* "artifacts/$target"/timeout-* "artifacts/$target"/oom-*)
    shopt -u nullglob
    if [ "${#old[@]}" -ne 0 ] && ! "$bin/$target" -timeout=10 "${old[@]}" >"$log" 2>&1; then
        echo "--- $target: an earlier crash still reproduces; full log: proto/fuzz/$log"
        grep -E '^Running:|panicked' -A1 "$log" | head -n 6 || true
        failed+=("$target")
        continue
    fi
    status=0
    "$bin/$target" \
        -max_total_time="$seconds" \
        -max_len="$max_len" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" \
        "target/corpus/$target" "corpus/$target" >"$log" 2>&1 || status=$?
    grep -E '^(INFO: seed corpus|Done |stat::number_of_executed_units|==[0-9]+== ERROR|thread .* panicked|SUMMARY|artifact_prefix)' "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "--- $target failed (exit $status); full log: proto/fuzz/$log"
        grep -A3 'panicked' "$log" || true
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "CRASHED: ${failed[*]} (inputs in proto/fuzz/artifacts/)" >&2
    exit 1
fi
echo "all targets ran ${seconds}s without a crash"
