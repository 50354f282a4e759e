#!/bin/sh
# fuzz-smoke.sh — a short libFuzzer run over the scorer (FUZZ_SMOKE_SECONDS, default 30) from
# the seed corpus.  Fails on any crash, leak, timeout or broken invariant; prints one summary.
cd "$(dirname "$0")/../.." || exit 2
: "${LB_BUILD:=build}"
: "${FUZZ_SMOKE_SECONDS:=30}"
name=fuzz-smoke
if ! command -v clang >/dev/null 2>&1; then
    echo "$name: 0 passed, 1 failed (clang not installed)"; exit 1
fi
mkdir -p "$LB_BUILD" || exit 2
if ! make -s --no-print-directory BUILD="$LB_BUILD" fuzz-build >"$LB_BUILD/fuzz-build.log" 2>&1; then
    cat "$LB_BUILD/fuzz-build.log"
    echo "$name: 0 passed, 1 failed (build)"; exit 1
fi
dir="$LB_BUILD/fuzz/smoke"
rm -rf "$dir" && mkdir -p "$dir/corpus"
log="$dir/log"
"$LB_BUILD/fuzz/fuzz_scoring" -dict=test/fuzz/json.dict -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$dir/" -max_total_time="$FUZZ_SMOKE_SECONDS" \
    -print_final_stats=1 "$dir/corpus" test/fuzz/corpus >"$log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
inputs=$(ls "$dir/corpus" | wc -l)
if [ "$rc" != 0 ]; then
    grep -E "invariant|ERROR|SUMMARY|^artifact|Test unit written" "$log" | head -20
    echo "$name: 0 passed, 1 failed (exit $rc after ${runs:-?} runs; artifacts in $dir)"; exit 1
fi
echo "$name: 1 passed, 0 failed (${runs:-?} runs in ${FUZZ_SMOKE_SECONDS} s, $inputs new corpus inputs, no crash/leak/timeout)"
