#!/bin/sh
# manifests-rules.sh — the PromQL we ship, checked offline with promtool:
#   - the PrometheusRule's groups (k8s/manifests/ollama-scaling-k8s.yaml) pass `promtool check
#     rules` and the unit tests in test/rules/alerts.test.yml (each alert fires and stays silent
#     when it should);
#   - every deliberate breakage in ALERT_MUTANTS (test/rules/manifests-lib.mjs) makes those unit
#     tests fail, so no threshold, window or filter goes untested;
#   - every dashboard query (k8s/dashboards/litebrain.json) and the prometheus-adapter queries
#     parse (`promtool check rules` on them as recording rules).
# Ends with "manifests-rules: N passed, M failed".
cd "$(dirname "$0")/../.." || exit 2
LIB=test/rules/manifests-lib.mjs
PROMTOOL=${PROMTOOL:-promtool}
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "$2" ] && sed 's/^/     /' "$2"; }

if ! command -v "$PROMTOOL" >/dev/null 2>&1 || [ ! -d test/node_modules/yaml ]; then
    echo "FAIL promtool (Debian package prometheus) and test/node_modules (make test) are needed"
    echo "manifests-rules: 0 passed, 1 failed"; exit 1
fi
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
cp test/rules/alerts.test.yml "$tmp/"

if node "$LIB" alert-rules "$tmp/alerts.rules.yml" >"$tmp/out" 2>&1 \
   && "$PROMTOOL" check rules "$tmp/alerts.rules.yml" >>"$tmp/out" 2>&1; then
    ok "alert rules: promtool check rules ($(grep -c '^ *- alert:' "$tmp/alerts.rules.yml") alerts)"
else bad "alert rules: promtool check rules" "$tmp/out"; fi

if (cd "$tmp" && "$PROMTOOL" test rules alerts.test.yml) >"$tmp/out" 2>&1; then
    ok "alert rules: promtool test rules (test/rules/alerts.test.yml)"
else bad "alert rules: promtool test rules" "$tmp/out"; fi

n=$(node "$LIB" mutant-count) || n=0
[ "$n" -gt 0 ] || bad "alert mutants: none defined"
i=0
while [ "$i" -lt "$n" ]; do
    what=$(node "$LIB" alert-mutant "$tmp/alerts.rules.yml" "$i" 2>&1)
    if [ $? -ne 0 ]; then bad "alert mutant $i does not apply: $what"
    elif (cd "$tmp" && "$PROMTOOL" test rules alerts.test.yml) >/dev/null 2>&1; then
        bad "alert mutant $i survived the unit tests: $what"
    else ok "alert mutant caught: $what"; fi
    i=$((i + 1))
done

if node "$LIB" expr-rules "$tmp/exprs.yml" >"$tmp/count" 2>&1 \
   && "$PROMTOOL" check rules "$tmp/exprs.yml" >"$tmp/out" 2>&1; then
    ok "dashboard and adapter queries parse ($(cat "$tmp/count"))"
else cat "$tmp/count" >>"$tmp/out" 2>/dev/null; bad "dashboard and adapter queries parse" "$tmp/out"; fi

echo "manifests-rules: $pass passed, $fail failed"
[ "$fail" = 0 ]
