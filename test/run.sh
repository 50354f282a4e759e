#!/bin/sh
# run.sh — every suite of `make test`, each ending with its own summary line, then one total.
# Suites: $LB_BUILD/unit/test_* (cmocka), test/integration/*.test.mjs (node --test),
# test/checks/*.sh (offline checks such as promtool and manifests); the proxy's integration
# suites run twice, with and without io_uring.
cd "$(dirname "$0")/.." || exit 2
: "${LB_BUILD:=build}"
export LB_BUILD
failed=0; suites=0; bad=""
run_suite() {   # name, command...
    name=$1; shift
    suites=$((suites + 1))
    echo "=== $name"
    if "$@"; then :; else failed=$((failed + 1)); bad="$bad $name"; fi
}
for t in "$LB_BUILD"/unit/test_*; do
    [ -x "$t" ] && run_suite "unit/$(basename "$t")" "$t"
done
set -- test/integration/*.test.mjs
if [ -e "$1" ]; then
    run_suite "integration" node --test --test-concurrency=1 --test-timeout=120000 "$@"
    # the proxy's own suites again with plain system calls, the path a kernel (or a seccomp
    # profile) without io_uring takes; the run above took the batched one where it could
    run_suite "integration-no-io-uring" env LITEBRAIN_IO_URING=off \
        node --test --test-concurrency=1 --test-timeout=120000 test/integration/proxy_*.test.mjs
fi
for c in test/checks/*.sh; do
    [ -x "$c" ] && run_suite "checks/$(basename "$c" .sh)" "$c"
done
echo "make test: $((suites - failed)) suites passed, $failed failed${bad:+ (failed:$bad)}"
[ "$failed" = 0 ]
