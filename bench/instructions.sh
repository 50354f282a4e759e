#!/bin/bash
# instructions.sh — user-space instructions per request of litebrain-proxy and nginx on the
# bench's small case (non-streamed /api/generate, scoring on), counted by callgrind: exact and
# repeatable where timings are not, so this is the yardstick for user-space work.  Each server
# runs under `valgrind --tool=callgrind` (nginx as one process, master_process off); counters
# are zeroed after a warm-up request and dumped after INSTR_CONNS x INSTR_REQUESTS requests of
# `lbload run`.  Prints markdown: the totals, and litebrain's own cost by area.
# Started by `make bench-instructions`.
#   INSTR_CONNS (64)  INSTR_REQUESTS (50 per connection)  LB_BUILD (build)
set -u
cd "$(dirname "$0")/.." || exit 2
. bench/lib.sh
B=${LB_BUILD:-build}
PROXY=$B/litebrain-proxy SIM=$B/ollama-sim LOAD=$B/lbload
CONNS=${INSTR_CONNS:-64} PER=${INSTR_REQUESTS:-50}
DUMP_TRIES=100          # 0.1 s polls for callgrind's dump file (10 s)

tmp=$(mktemp -d /tmp/lbinstr.XXXXXX) || exit 2
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
command -v callgrind_control >/dev/null || die "valgrind (callgrind_control) is not installed"

start_sim --parallel 8192 --max-queue 65536 --model "qwen2.5:3b:0:1000000:8" || die "simulator did not start"
printf '{"model":"qwen2.5:3b","prompt":"Why is the sky blue?","stream":false}' >"$tmp/small.json"

count() {  # name port pid: warm up, zero the counters of valgrind process pid, run the load,
    # dump; prints the dump's path
    local name=$1 port=$2 pid=$3 out n
    waitport "$port"
    "$LOAD" run --port "$port" --body "$tmp/small.json" >/dev/null || die "$name: warm-up failed"
    callgrind_control -z "$pid" >/dev/null 2>&1 || die "$name: callgrind_control -z failed"
    out=$("$LOAD" run --port "$port" --body "$tmp/small.json" --conns "$CONNS" --requests "$PER") ||
        die "$name: lbload failed"
    n=$(echo "$out" | tr ' ' '\n' | awk 'p {print; exit} $0 == "answers" {p = 1}')
    [ "$n" = $((CONNS * PER)) ] || die "$name: $n answers of $((CONNS * PER)) ($out)"
    callgrind_control -d "$pid" >/dev/null 2>&1 || die "$name: callgrind_control -d failed"
    for _ in $(seq 1 $DUMP_TRIES); do
        ls "$tmp/$name.cg".* >/dev/null 2>&1 && break
        sleep 0.1
    done
    ls "$tmp/$name.cg".* 2>/dev/null | head -1
}
total() {  # dump: instructions in it
    callgrind_annotate --auto=no "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}'
}

LBPORT=$(freeport)
valgrind --tool=callgrind --callgrind-out-file="$tmp/litebrain.cg" "$PROXY" \
    --listen 127.0.0.1:$LBPORT --metrics-listen 127.0.0.1:$(freeport) \
    --upstream http://127.0.0.1:$SIMPORT --log-level warn 2>"$tmp/proxy.log" &
pids+=($!)
LBDUMP=$(count litebrain $LBPORT $!) || exit 1
[ -n "$LBDUMP" ] || die "litebrain: callgrind wrote no dump"

NGPORT=$(freeport)
mkdir -p "$tmp/ng" && chmod 777 "$tmp" "$tmp/ng"   # why: nginx may write as its worker user
nginx_conf "$tmp/ng" $NGPORT "master_process off;" "daemon off;"
valgrind --tool=callgrind --callgrind-out-file="$tmp/nginx.cg" nginx -p "$tmp/ng" \
    -c "$tmp/ng/nginx.conf" 2>"$tmp/nginx.log" &
pids+=($!)
NGDUMP=$(count nginx $NGPORT $!) || exit 1
[ -n "$NGDUMP" ] || die "nginx: callgrind wrote no dump"

N=$((CONNS * PER))
LBI=$(total "$LBDUMP") NGI=$(total "$NGDUMP")
[ -n "$LBI" ] && [ -n "$NGI" ] || die "callgrind_annotate read no totals"
echo "#### User-space instructions per small request (callgrind) — $(date -u +%Y-%m-%d)"
echo
echo "$N requests of \`lbload run --conns $CONNS --requests $PER\` (keep-alive, non-streamed /api/generate, scoring on), counted after one warm-up request; every instruction of the server process in user space (its code, libevent, libc; all threads)."
echo
echo "| per request | litebrain | nginx | litebrain / nginx |"
echo "|---|---:|---:|---:|"
echo "| instructions | $((LBI / N)) | $((NGI / N)) | $(ratio "$LBI" "$NGI") |"
echo
echo "litebrain-proxy's instructions per request by area (self cost):"
echo
echo "| area | instructions | % |"
echo "|---|---:|---:|"
# why by file: callgrind names each function by its source file and binary, which is the area.
# Why the half-total cut: a dump taken while the loop runs books the whole run to the frames then
# on the stack (main, event_base_dispatch, below main), which no real function comes near; the
# controller thread's frames (clone, start_thread) likewise hold its whole cost.
callgrind_annotate --auto=no --inclusive=no --threshold=100 "$LBDUMP" 2>/dev/null |
    awk -v n="$N" -v tot="$LBI" '
    /^ *[0-9,]+ +\(/ && !/PROGRAM TOTALS/ {
        v = $1; gsub(",", "", v); v += 0; f = $0   # why += 0: a number, not a string, compares
        if (v > tot / 2 || f ~ /:clone |:start_thread /) next   # stack frames (see above)
        if (f ~ /llhttp/) a = "llhttp (both messages)"
        else if (f ~ /mx_usage/) a = "token-usage scan of the answer (metrics/mx_usage.c)"
        else if (f ~ /scoring\//) a = "scoring the body (scoring/)"
        else if (f ~ /metrics\/|k8s\//) a = "metrics and hints (metrics/, k8s/)"
        else if (f ~ /proxy\//) a = "the proxy (proxy/)"
        else if (f ~ /libevent/) a = "libevent"
        else if (f ~ /malloc/) a = "malloc / free"
        else if (f ~ /libm\.so/) a = "libm (the history decay in scoring)"
        else if (f ~ /libc\.so/) a = "libc: memcpy, strlen, string compares, clock"
        else a = "other"
        s[a] += v; sum += v
    }
    END {
        for (a in s) printf "| %s | %d | %.1f |\n", a, s[a] / n, 100 * s[a] / tot
        r = tot - sum; pct = 100 * r / tot; if (pct > -0.05 && pct < 0.05) pct = 0
        printf "| (below the 100-instruction threshold, or the frames on the stack) | %d | %.1f |\n", r / n, pct
    }' | sort -t'|' -k3 -rn
