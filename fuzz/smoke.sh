#!/usr/bin/env bash
# Builds every fuzz target on stable Rust (the coverage flags cargo-fuzz
# passes with `-s none`, no sanitizer, no cargo-fuzz needed) and runs each
# for SECONDS (default 20) from a scratch copy of its committed inputs
# (regressions/<target>/). Exits non-zero on the first crash, leaving the
# input under $SCRATCH/artifacts/.
#   bash fuzz/smoke.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps RUSTFLAGS off build scripts, as cargo-fuzz does.
cargo build --release --bins --target "$triple"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in $(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v semid-fuzz); do
  mkdir -p "$scratch/corpus/$t" "$scratch/artifacts"
  find "regressions/$t" -type f ! -name '*.md' -exec cp {} "$scratch/corpus/$t/" \;
  echo "--- $t: ${secs} s"
  "target/$triple/release/$t" -max_total_time="$secs" -artifact_prefix="$scratch/artifacts/" \
    -print_final_stats=1 "$scratch/corpus/$t" 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY)" || true
  # libFuzzer's exit status is lost in the pipe above: re-check for artifacts.
  if compgen -G "$scratch/artifacts/*" > /dev/null; then
    echo "fuzz target $t crashed; input(s):"; ls -l "$scratch/artifacts"
    for f in "$scratch/artifacts"/*; do echo "$f"; od -A d -t x1 "$f" | head -20; done
    exit 1
  fi
done
echo "fuzz smoke passed"
