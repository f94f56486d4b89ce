#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of fuzz/ for FUZZ_SECONDS each (default 600), one at a
# time, at the lowest CPU priority, and writes the figures (executions, crashes) to
# target/reliability/fuzz.json for RELIABILITY.md. Crashing inputs are copied to
# fuzz/regressions/<target>/, where tests/fuzz_regressions.rs (in `make test`) replays them: fix
# the crash, keep the input.
#
# cargo-fuzz drives libFuzzer, which needs nightly-only compiler flags; on a stable toolchain
# they are enabled with RUSTC_BOOTSTRAP=1, and with `-s none` (no sanitizer: the provider's code
# is safe Rust, so AddressSanitizer adds nothing but cost). Coverage-guided, not a random driver.
#   FUZZ_SECONDS=60 FUZZ_TARGETS="codec import_id" ./scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
command -v cargo-fuzz >/dev/null || {
  echo "make fuzz: cargo-fuzz is missing: cargo install --locked cargo-fuzz" >&2
  exit 1
}
export RUSTC_BOOTSTRAP=1
targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
# FUZZ_NO_BUILD=1 runs the binaries built last time (fuzz/target) as they are.
[[ ${FUZZ_NO_BUILD:-} == 1 ]] || nice -n 19 cargo fuzz build -s none
bin=fuzz/target/x86_64-unknown-linux-gnu/release
out=target/reliability
mkdir -p "$out" fuzz/regressions
# Figures of earlier runs of other targets are kept (one target can be re-run alone).
results=()
if [[ -f $out/fuzz.json ]]; then
  while IFS= read -r line; do results+=("$line"); done < <(jq -c '.targets[]' "$out/fuzz.json")
fi
for target in $targets; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus" "fuzz/regressions/$target"
  log=$out/fuzz-$target.log
  echo "fuzzing $target for ${seconds}s (log: $log)" >&2
  set +e
  # Crashes of earlier runs are already kept in fuzz/regressions/<target>/: count this run's only.
  rm -rf "fuzz/artifacts/$target"
  mkdir -p "fuzz/artifacts/$target"
  nice -n 19 "$bin/$target" "$corpus" "fuzz/seeds/$target" \
    -artifact_prefix="fuzz/artifacts/$target/" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  crashes=0
  for artifact in fuzz/artifacts/"$target"/*; do
    [[ -f $artifact ]] || continue
    cp "$artifact" "fuzz/regressions/$target/"
    crashes=$((crashes + 1))
  done
  kept=()
  for r in "${results[@]}"; do [[ $(jq -r .target <<<"$r") == "$target" ]] || kept+=("$r"); done
  results=("${kept[@]}")
  results+=("$(jq -n --arg t "$target" --argjson s "$seconds" --argjson r "${runs:-0}" \
    --argjson c "$crashes" --argjson x "$status" \
    '{target: $t, seconds: $s, executions: $r, crashes: $c, exit: $x}')")
  echo "$target: ${runs:-0} executions, $crashes crashing inputs (exit $status)" >&2
done
printf '%s\n' "${results[@]}" | jq -s '{engine: "cargo-fuzz (libFuzzer, RUSTC_BOOTSTRAP=1, no sanitizer)", targets: .}' \
  >"$out/fuzz.json"
