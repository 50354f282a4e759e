#!/bin/bash
# soak.sh — SOAK_REQUESTS (default 1,000,000) mixed requests through litebrain-proxy in front of
# ollama-sim: 6 of 10 answered whole, 3 streamed to the end, 1 abandoned after the first byte
# (counted 499).  Reports RSS after a warm-up vs at the end, the rate, that
# litebrain_active_requests returns to 0 and that every request is counted with the status it
# should have.  Started by `make soak`; exit 0 only when all of that holds.
set -u
cd "$(dirname "$0")/.." || exit 2
. bench/lib.sh
B=${LB_BUILD:-build}
PROXY=$B/litebrain-proxy SIM=$B/ollama-sim LOAD=$B/lbload
N=${SOAK_REQUESTS:-1000000}
WARM=10000              # warm-up requests before the first RSS sample
CONNS=32                # client connections
ulimit -n 65536 2>/dev/null
tmp=$(mktemp -d /tmp/lbsoak.XXXXXX) || exit 2
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }
rss() { awk '/^VmRSS:/ {print $2}' /proc/$PPID_/status; }

start_sim --parallel 4096 --max-queue 65536 \
    --model "qwen2.5:3b:0:1000000:8" --model "llama3.2:latest:0:100000:20" \
    --model "codellama:7b:0:50:1000"
PORT=$(freeport) MPORT=$(freeport)
"$PROXY" --listen 127.0.0.1:$PORT --metrics-listen 127.0.0.1:$MPORT --upstream http://127.0.0.1:$SIMPORT \
    --log-level warn 2>"$tmp/proxy.log" &
PPID_=$!
pids+=($PPID_)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$MPORT/healthz" && break; sleep 0.05; done

printf '{"model":"qwen2.5:3b","prompt":"Why is the sky blue?","stream":false}' >"$tmp/small.json"
printf '{"model":"llama3.2","prompt":"Write a haiku.","stream":true}' >"$tmp/stream.json"
printf '{"model":"codellama:7b","prompt":"Explain this code.","stream":true}' >"$tmp/cancel.json"

soak() {   # requests -> the lbload summary line
    "$LOAD" soak --port $PORT --conns $CONNS --requests "$1" --body "$tmp/small.json" \
        --stream "$tmp/stream.json" --cancel "$tmp/cancel.json"
}
settle() {   # wait (bounded) until the proxy has nothing in flight; prints the gauge
    local a
    for _ in $(seq 1 100); do
        a=$(metric litebrain_active_requests)
        [ "$a" = 0 ] && break
        sleep 0.1
    done
    echo "$a"
}
warm=$(soak $WARM) || bad "warm-up: $warm"
settle >/dev/null
rss0=$(rss)
echo "soak: $N requests over $CONNS connections (6 whole : 3 streamed : 1 cancelled), RSS after $WARM warm-up: $rss0 KiB" >&2
out=$(soak "$N"); rc=$?
echo "$out"
active=$(settle)
rss1=$(rss)
total=$((N + WARM))
n200=$(metric 'litebrain_requests_total{complexity="low",status="200"}')
n200=$((n200 + $(metric 'litebrain_requests_total{complexity="medium",status="200"}') + $(metric 'litebrain_requests_total{complexity="high",status="200"}')))
n499=$(metric 'litebrain_requests_total{complexity="low",status="499"}')
n499=$((n499 + $(metric 'litebrain_requests_total{complexity="medium",status="499"}') + $(metric 'litebrain_requests_total{complexity="high",status="499"}')))
nall=$(metric 'litebrain_requests_total{')
cancels=$(echo "$out $warm" | awk '{for (i = 1; i < NF; i++) if ($i == "cancel") s += $(i + 1)} END {print s + 0}')

[ $rc = 0 ] && ok "every answer was 200 ($out)" || bad "client: $out"
[ "$active" = 0 ] && ok "litebrain_active_requests back to 0" || bad "litebrain_active_requests is $active"
[ "$nall" = "$total" ] && ok "every request counted once ($nall)" || bad "requests_total $nall, sent $total"
[ "$n499" = "$cancels" ] && ok "499 = the $cancels cancelled streams" || bad "499 count $n499, cancelled $cancels"
[ $((n200 + n499)) = "$nall" ] && ok "no status other than 200 and 499" || bad "other statuses: $((nall - n200 - n499))"
echo "soak: RSS $rss0 KiB after warm-up -> $rss1 KiB after $N requests ($((rss1 - rss0)) KiB)"
echo "soak: $pass passed, $fail failed"
[ $fail = 0 ]
