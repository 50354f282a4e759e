#!/bin/sh
# promtool-metrics.sh — the exposition after a workload that touches every family and label
# ($LB_BUILD/mx-dump, see metrics/tools/mx_dump.c) must pass `promtool check metrics`;
# a deliberately broken exposition must fail it (so a silent promtool cannot pass this check).
# The live proxy's /metrics goes through promtool in test/integration/metrics.test.mjs.
cd "$(dirname "$0")/../.." || exit 2
: "${LB_BUILD:=build}"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }

if ! command -v promtool >/dev/null 2>&1; then
    bad "promtool installed (Debian package prometheus)"
elif [ ! -x "$LB_BUILD/mx-dump" ]; then
    bad "$LB_BUILD/mx-dump built (make test-build)"
else
    out=$(mktemp) || exit 2
    trap 'rm -f "$out"' EXIT
    if "$LB_BUILD/mx-dump" >"$out"; then ok "mx-dump renders"; else bad "mx-dump renders"; fi
    if msg=$(promtool check metrics <"$out" 2>&1); then
        ok "promtool check metrics accepts the exposition ($(wc -l <"$out") lines)"
    else
        bad "promtool check metrics: $msg"
    fi
    for fam in litebrain_complexity_score litebrain_active_requests \
               litebrain_request_duration_seconds litebrain_requests_total \
               litebrain_prompt_tokens_total process_resident_memory_bytes; do
        if grep -q "^# TYPE $fam " "$out"; then ok "family $fam present"; else bad "family $fam present"; fi
    done
    if printf '# TYPE x_total counter\nx_total{a="b} 1\n' | promtool check metrics >/dev/null 2>&1; then
        bad "promtool rejects a broken exposition"
    else
        ok "promtool rejects a broken exposition"
    fi
fi
echo "promtool-metrics: $pass passed, $fail failed"
[ "$fail" = 0 ]
