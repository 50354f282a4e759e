#!/bin/sh
# scalesim.sh — the scaling simulator ($LB_BUILD/scalesim, bench/scalesim.c) on the first
# minutes of the Azure code trace: every strategy reported with non-negative numbers, the SVG
# written and well formed, a policy file's maxReplicas respected, a minReplicas of 0 run with one
# pod, bad input (malformed or unordered trace, bad flags) refused with one line and exit 2.
cd "$(dirname "$0")/../.." || exit 2
: "${LB_BUILD:=build}"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
SIM=$LB_BUILD/scalesim
dir=$(mktemp -d) || exit 2
trap 'rm -rf "$dir"' EXIT

if [ ! -x "$SIM" ]; then
    bad "$SIM built (make test-build)"
else
    if "$SIM" --minutes 5 --svg "$dir/a.svg" >"$dir/out" 2>"$dir/err"; then
        ok "runs on the first 5 minutes"
    else
        bad "runs on the first 5 minutes: $(cat "$dir/err")"
    fi
    for s in "fixed (10)" hpa-cpu engine-floor litebrain; do
        if grep -q "^| $s |" "$dir/out"; then ok "strategy $s reported"; else bad "strategy $s reported"; fi
    done
    # every cell of every strategy row is a number >= 0 (or "a / b" of such)
    if awk -F'|' '/^\| (fixed|hpa-cpu|engine-floor|litebrain)/ {
            rows++
            for (i = 3; i < NF; i++) { v = $i; gsub(/[ \/]/, "", v)
                if (v !~ /^[0-9.]+$/) { print "bad cell: " $i; bad = 1 } } }
            END { exit (bad || rows != 4) }' "$dir/out"; then
        ok "4 rows, every number non-negative"
    else
        bad "4 rows, every number non-negative"
    fi
    if grep -q "Patel et al" "$dir/out"; then ok "attribution printed"; else bad "attribution printed"; fi
    if [ -s "$dir/a.svg" ] && head -c 200 "$dir/a.svg" | grep -q "<svg" && tail -n 1 "$dir/a.svg" | grep -q "</svg>" \
       && [ "$(grep -c '<polyline' "$dir/a.svg")" -ge 9 ]; then
        ok "SVG written: 1 rate line, 4 wait lines, 4 replica lines"
    else
        bad "SVG written: 1 rate line, 4 wait lines, 4 replica lines"
    fi

    printf '{"complexityThresholds":{"low":30,"medium":50,"high":80},"maxReplicas":3}\n' >"$dir/p.json"
    if "$SIM" --minutes 5 --policy "$dir/p.json" --svg "$dir/b.svg" >"$dir/out2" 2>&1 \
       && awk -F'|' '/^\| (hpa-cpu|engine-floor|litebrain)/ { v = $10; gsub(/ /, "", v); if (v + 0 > 3) bad = 1; n++ }
                     END { exit (bad || n != 3) }' "$dir/out2"; then
        ok "--policy maxReplicas 3 caps every autoscaled strategy at 3 pods"
    else
        bad "--policy maxReplicas 3 caps every autoscaled strategy at 3 pods"
    fi

    printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:00.0,100,10\n2024-01-01 00:00:01.5,5000,50\n' >"$dir/t.csv"
    if "$SIM" --trace "$dir/t.csv" --svg "$dir/c.svg" >"$dir/out3" 2>&1 && grep -q "^scalesim: 2 requests" "$dir/out3"; then
        ok "--trace reads another file of the same format"
    else
        bad "--trace reads another file of the same format"
    fi
    printf 'TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\n' >"$dir/bad.csv"
    "$SIM" --trace "$dir/bad.csv" --svg "$dir/d.svg" >/dev/null 2>&1; rc=$?
    if [ "$rc" = 2 ]; then ok "a malformed trace exits 2"; else bad "a malformed trace exits 2 (got $rc)"; fi
    printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:00.0,100,10\n2024-01-01 00:01:40.0,100,10\n2024-01-01 00:00:10.0,100,10\n' >"$dir/ooo.csv"
    "$SIM" --trace "$dir/ooo.csv" --svg "$dir/e.svg" >/dev/null 2>"$dir/err4"; rc=$?
    if [ "$rc" = 2 ] && grep -q ':4: rows must be in time order' "$dir/err4"; then
        ok "a row earlier than the one before it exits 2, naming the line"
    else
        bad "a row earlier than the one before it exits 2, naming the line (got $rc: $(cat "$dir/err4"))"
    fi
    # bad flags: exit 2 and exactly one line naming the flag (no usage dump)
    for args in "--slo nope" "--parallel 1e10" "--parallel 2.5" "--parallel 65" "--fixed 1e10" "--dt 2" "--bogus" "stray"; do
        # shellcheck disable=SC2086
        "$SIM" $args >/dev/null 2>"$dir/err5"; rc=$?
        if [ "$rc" = 2 ] && [ "$(wc -l <"$dir/err5")" = 1 ] && grep -qF -- "${args%% *}" "$dir/err5"; then
            ok "bad flag '$args': exit 2, one line naming it"
        else
            bad "bad flag '$args': exit 2, one line naming it (got $rc: $(cat "$dir/err5"))"
        fi
    done
    # minReplicas 0 is a valid policy (the engine keeps at least 1 pod): it must run
    printf '{"minReplicas":0}\n' >"$dir/m0.json"
    if "$SIM" --minutes 3 --policy "$dir/m0.json" --svg "$dir/f.svg" >"$dir/out6" 2>&1 && grep -q '^| litebrain |' "$dir/out6"; then
        ok "a policy with minReplicas 0 runs (at least 1 pod)"
    else
        bad "a policy with minReplicas 0 runs (at least 1 pod): $(tail -3 "$dir/out6")"
    fi
fi
echo "scalesim: $pass passed, $fail failed"
[ "$fail" = 0 ]
