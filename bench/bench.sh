#!/bin/bash
# bench.sh — litebrain-proxy vs nginx vs direct, same machine, same upstream (ollama-sim), one
# run, rounds interleaved, medians printed as ratios.  Started by `make bench` (which builds
# everything first); see bench/README.md for what each case measures and how it is pinned.
#   BENCH_ROUNDS (6)  BENCH_SECONDS (5)  LB_BUILD (build)  BENCH_SCORING (file with the output
#   of `make bench-scoring`, optional)
set -u
cd "$(dirname "$0")/.." || exit 2
. bench/lib.sh
B=${LB_BUILD:-build}
PROXY=$B/litebrain-proxy SIM=$B/ollama-sim LOAD=$B/lbload
ROUNDS=${BENCH_ROUNDS:-6} SECS=${BENCH_SECONDS:-5}
HZ=$(getconf CLK_TCK)   # /proc/*/stat ticks per second
SMALL_CONNS=64          # wrk connections for the small case
STREAM_CONNS=32         # concurrent streams in the streaming case
STREAM_REQS=10          # streams per connection per round
STREAM_TOKENS=100       # lines per stream
STREAM_TPS=500          # the sim's token rate: one line every 2 ms
SOLO_REQS=50            # streams one after another (TTFB without a burst in front of it)
SOLO_TOKENS=10          # lines per such stream
BIG_REQS=${BENCH_BIG_REQS:-10}  # 10 MiB bodies per target per round (paired)
LONG_STREAMS=1000       # concurrent long streams (memory)
IDLE_CONNS=5000         # idle keep-alive connections (memory)
HOLD_BATCH=64           # requests in flight while the held connections are opened
MEM_WARM_REQS=10000     # requests a fresh server answers before its memory baseline
MEM_WARM_PER_CONN=1000  # ... on each connection (nginx's keepalive_requests default)
SERVER_CPU=0 CLIENT_CPU=1
CAP_PCT=${BENCH_CAP_PCT:-40}    # capped small case: each server held to this % of one core

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d /tmp/lbbench.XXXXXX) || exit 2
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    cap_done
    rm -rf "$tmp"
}
trap cleanup EXIT
rss_kib() { awk '/^VmRSS:/ {s += $2} END {print s + 0}' "${@/#//proc/}" 2>/dev/null; }
rss_of() { local s=0; for p in "$@"; do s=$((s + $(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status))); done; echo $s; }
per_req() {  # ticks: CPU µs per request of the last wrk run ($nreq requests)
    awk -v c="$1" -v n="$nreq" -v hz="$HZ" 'BEGIN { printf "%.1f", c * 1e6 / hz / n }'
}
core_ticks() {  # cpu: "busy all" clock ticks of that core so far
    awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat
}
box_ticks() {  # "busy all" clock ticks of the whole box so far (busy: user nice system irq softirq steal)
    awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat
}
server_pids() { case $1 in litebrain) echo $LBPID ;; nginx) echo $NGPID $NGWORKER ;; esac; }  # target

# ---- the upstream: one simulator for every case, unpinned (it serves all three) but for the
# sidecar-layout case ----
start_sim --parallel 8192 --max-queue 65536 \
    --model "qwen2.5:3b:0:1000000:8" \
    --model "llama3.2:latest:0:$STREAM_TPS:$STREAM_TOKENS" \
    --model "llama3.2:1b:0:$STREAM_TPS:$SOLO_TOKENS" \
    --model "codellama:7b:0:2:100000" || die "simulator did not start"
SIMPID=${pids[${#pids[@]} - 1]}
SIM_CPUS=$(taskset -pc $SIMPID | awk '{print $NF}')     # its affinity, restored after pinning

start_proxy
start_nginx
# why a capped case: unconstrained, the 2 cores are shared by wrk, the sim and the kernel's
# loopback work, and the box, not the proxy, sets the rate; a server held to a CPU quota (as
# a sidecar with a CPU limit is) is the bottleneck itself, so its rate is its CPU cost
# why the sim gets a group too (never capped): in a pod, Ollama and the sidecar are two
# containers, each its own cgroup; with the servers in groups and the sim left in the root,
# the scheduler treats the pair unlike any pod (measured: litebrain / nginx 1.17 that way,
# 1.27 with all three in groups, 1.28 with none, sim beside the server)
if cap_init && cap_join litebrain $LBPID && cap_join nginx $NGPID $NGWORKER && cap_join sim $SIMPID; then
    cap_set litebrain off && cap_set nginx off && cap_set sim off || die "cannot set a CPU quota under $CAP_ROOT"
else
    [ -n "$CAP_WHY" ] || CAP_WHY="cannot move the servers into cgroups under $CAP_ROOT"
    CAP_ROOT=
    echo "bench: no capped case: $CAP_WHY" >&2
fi

declare -A PORT=([direct]=$SIMPORT [litebrain]=$LBPORT [nginx]=$NGPORT)
TARGETS="direct litebrain nginx"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
R="$tmp/results"    # lines: case target metric value
: >"$R"

# ---- bodies ----
printf '{"model":"qwen2.5:3b","prompt":"Why is the sky blue?","stream":false}' >"$tmp/small.json"
printf '{"model":"llama3.2","prompt":"Write a haiku about the sea.","stream":true}' >"$tmp/stream.json"
printf '{"model":"codellama:7b","prompt":"Explain this code.","stream":true}' >"$tmp/long.json"
printf '{"model":"llama3.2:1b","prompt":"Write a haiku about the sea.","stream":true}' >"$tmp/solo.json"
{
    printf '{"model":"qwen2.5:3b","prompt":"What is in this picture?","stream":false,"images":["'
    head -c $((10 * 1024 * 1024 * 3 / 4 - 200)) /dev/urandom | base64 -w0
    printf '"]}'
} >"$tmp/big.json"
cat >"$tmp/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$(cat "$tmp/small.json")'
EOF

sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
kv() { echo "$1" | awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; print n }'; }

paired() {  # case body requests metric=key...: one `lbload pair` over the three targets; each
    # metric gets its key's value per target
    local c=$1 body=$2 n=$3 out line t m
    shift 3
    out=$(taskset -c $CLIENT_CPU "$LOAD" pair --ports "${PORT[direct]},${PORT[litebrain]},${PORT[nginx]}" \
          --body "$body" --requests "$n") || die "$c case failed"
    for t in $TARGETS; do
        line=$(echo "$out" | grep "^port ${PORT[$t]} ")
        for m in "$@"; do echo "$c $t ${m%%=*} $(kv "$line" "${m#*=}")" >>"$R"; done
    done
}

# ---- warm-up: every target answers each body once ----
for t in $TARGETS; do
    for b in small stream solo big; do
        taskset -c $CLIENT_CPU "$LOAD" run --port ${PORT[$t]} --body "$tmp/$b.json" >/dev/null \
            || die "warm-up of $t with $b failed"
    done
done

run_small() {  # case target: one wrk run of the small case; its metrics go to $R under case,
    # and rps is left set
    local c=$1 t=$2 srv out p50 p99 errs c0 c1 b0 b1 s0 s1 k0 k1
    srv=$(server_pids $t)
    c0=($([ -n "$srv" ] && cpu_ticks $srv)) b0=($(box_ticks))
    s0=($(core_ticks $SERVER_CPU)) k0=($(core_ticks $CLIENT_CPU))
    out=$(taskset -c $CLIENT_CPU wrk -t1 -c$SMALL_CONNS -d${SECS}s --latency -s "$tmp/post.lua" \
          "http://127.0.0.1:${PORT[$t]}/api/generate") || die "wrk on $t failed"
    b1=($(box_ticks)) s1=($(core_ticks $SERVER_CPU)) k1=($(core_ticks $CLIENT_CPU))
    echo "$c $t core_srv $(awk -v b=$((s1[0] - s0[0])) -v a=$((s1[1] - s0[1])) 'BEGIN { printf "%.0f", a ? 100 * b / a : 0 }')" >>"$R"
    echo "$c $t core_cli $(awk -v b=$((k1[0] - k0[0])) -v a=$((k1[1] - k0[1])) 'BEGIN { printf "%.0f", a ? 100 * b / a : 0 }')" >>"$R"
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
    p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
    nreq=$(echo "$out" | awk '/ requests in / {print $1}')
    echo "$c $t box_us $(per_req $((b1[0] - b0[0])))" >>"$R"   # every process and the kernel
    echo "$c $t box_busy $(awk -v b=$((b1[0] - b0[0])) -v a=$((b1[1] - b0[1])) 'BEGIN { printf "%.0f", a ? 100 * b / a : 0 }')" >>"$R"
    if [ -n "$srv" ]; then   # the server's own CPU time per answered request, in µs
        c1=($(cpu_ticks $srv))
        echo "$c $t user_us $(per_req $((c1[0] - c0[0])))" >>"$R"
        echo "$c $t sys_us $(per_req $((c1[1] - c0[1])))" >>"$R"
        echo "$c $t cpu_us $(per_req $((c1[0] + c1[1] - c0[0] - c0[1])))" >>"$R"
    fi
    errs=$(echo "$out" | awk '/Non-2xx/ {print $NF} /Socket errors/ {print "sock"}' | head -1)
    echo "$c $t rps $rps" >>"$R"
    echo "$c $t p50 $p50" >>"$R"
    echo "$c $t p99 $p99" >>"$R"
    [ -n "$errs" ] && echo "$c $t errors $errs" >>"$R"
}

echo "bench: $ROUNDS rounds x ${SECS} s, targets interleaved (direct first, then litebrain and nginx, their order swapped every other round)" >&2
declare -A round_rps    # this round's small-case req/s per target
declare -A round_cap    # this round's capped small-case req/s per proxy
declare -A round_side   # this round's sidecar-layout small-case req/s per proxy
declare -A round_ttfb   # this round's 32-stream TTFB p50 per target
declare -A round_warm   # this round's back-to-back single-stream TTFB p50 per target
for round in $(seq 1 "$ROUNDS"); do
    # why swap: on 2 cores the unpinned sim is where the previous target left it, and the
    # target right after direct finds it on the clients' core (measured: ~0.1 ms more TTFB
    # for whichever proxy goes second), so each proxy goes second in half the rounds
    order=$TARGETS
    [ $((round % 2)) -eq 0 ] && order="direct nginx litebrain"
    for t in $order; do
        run_small small $t
        round_rps[$t]=$rps

        out=$(taskset -c $CLIENT_CPU "$LOAD" run --port ${PORT[$t]} --body "$tmp/stream.json" \
              --conns $STREAM_CONNS --requests $STREAM_REQS --interval-ms $((1000 / STREAM_TPS))) \
              || die "stream case on $t failed"
        echo "stream $t ttfb $(kv "$out" ttfb_p50_ms)" >>"$R"
        echo "stream $t ttfb99 $(kv "$out" ttfb_p99_ms)" >>"$R"
        echo "stream $t lag $(kv "$out" line_lag_p50_ms)" >>"$R"
        echo "stream $t lag99 $(kv "$out" line_lag_p99_ms)" >>"$R"
        echo "stream $t gap $(kv "$out" line_gap_ms)" >>"$R"
        round_ttfb[$t]=$(kv "$out" ttfb_p50_ms)
        # one stream at a time, back to back on one connection: the warm path (each server
        # relayed the previous stream's lines 2 ms before)
        out=$(taskset -c $CLIENT_CPU "$LOAD" run --port ${PORT[$t]} --body "$tmp/solo.json" \
              --conns 1 --requests $SOLO_REQS --interval-ms $((1000 / STREAM_TPS))) \
              || die "one-stream case on $t failed"
        round_warm[$t]=$(kv "$out" ttfb_p50_ms)
        echo "warm $t ttfb ${round_warm[$t]}" >>"$R"
    done
    # the same load with the server held to CAP_PCT % of a core; the two proxies back to back,
    # so the box's swings hit a round's pair alike
    for t in $order; do
        [ -n "$CAP_ROOT" ] && [ $t != direct ] || continue
        cap_set $t $CAP_PCT || die "cannot cap $t's CPU"
        run_small capped $t
        cap_set $t off || die "cannot lift $t's CPU cap"
        round_cap[$t]=$rps
    done
    # the sidecar layout (the req/s target's row): the sim pinned to the server's core, as a
    # sidecar shares its pod's CPUs with Ollama while the client is elsewhere; then the
    # clients' core is not what saturates (unpinned, the scheduler runs the sim beside wrk,
    # and that core sets the rate); direct is the sim alone on that core
    for t in $order; do
        taskset -pc $SERVER_CPU $SIMPID >/dev/null || die "cannot pin the sim"
        run_small sidecar $t
        taskset -pc "$SIM_CPUS" $SIMPID >/dev/null || die "cannot unpin the sim"
        round_side[$t]=$rps
    done
    # why pairs too: the box's speed swings between minutes, and a round's two runs are closer
    # in time than the medians of all rounds are
    echo "small pair rps_ratio $(ratio "${round_rps[litebrain]}" "${round_rps[nginx]}")" >>"$R"
    echo "sidecar pair rps_ratio $(ratio "${round_side[litebrain]}" "${round_side[nginx]}")" >>"$R"
    [ -n "$CAP_ROOT" ] && echo "capped pair rps_ratio $(ratio "${round_cap[litebrain]}" "${round_cap[nginx]}")" >>"$R"
    echo "stream pair ttfb_diff $(sub "${round_ttfb[litebrain]}" "${round_ttfb[nginx]}")" >>"$R"
    echo "warm pair ttfb_diff $(sub "${round_warm[litebrain]}" "${round_warm[nginx]}")" >>"$R"
    # one stream at a time, and 10 MiB: paired — each request goes to direct, litebrain, nginx
    # in turn, so the drift of the box's load (the sim's own JSON parse of 10 MiB varies by
    # ±0.1 s) hits all three alike, and the differences are taken request by request
    paired solo "$tmp/solo.json" $SOLO_REQS ttfb=ttfb_p50_ms add=ttfb_added_p50_ms
    paired big "$tmp/big.json" $BIG_REQS lat=lat_p50_ms add=added_p50_ms
    echo "bench: round $round done" >&2
done

# ---- memory: RSS with many streams / idle connections open, minus the idle baseline ----
hold() {  # target conns body [--idle] -> prints KiB per connection
    local t=$1 n=$2 body=$3 idle=${4:-} fifo="$tmp/hold.fifo" base now line pid
    local -a who
    if [ "$t" = litebrain ]; then who=($LBPID); else who=($NGPID $NGWORKER); fi
    base=$(rss_of "${who[@]}")
    rm -f "$fifo"; mkfifo "$fifo"
    taskset -c $CLIENT_CPU "$LOAD" hold --port ${PORT[$t]} --conns "$n" --body "$body" $idle --batch $HOLD_BATCH \
        <"$fifo" >"$tmp/hold.out" 2>"$tmp/hold.log" &
    pid=$!
    exec 7>"$fifo"
    for _ in $(seq 1 600); do
        grep -q '^ready' "$tmp/hold.out" && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ready' "$tmp/hold.out" || { exec 7>&-; die "hold on $t: $(cat "$tmp/hold.log")"; }
    sleep 1             # why: let both sides finish their bookkeeping before sampling
    now=$(rss_of "${who[@]}")
    exec 7>&-           # stdin closes: the client hangs up every connection
    wait $pid
    sleep 2             # why: the next baseline is taken after the server freed the streams
    echo "$base $now" | awk -v n="$n" '{printf "%.2f %d %d\n", ($2 - $1) / n, $1, $2}'
}
# why fresh processes: a heap that served the earlier cases keeps its high-water mark, so
# connections opened later would reuse freed memory and look free
for what in stream idle; do
    stop_servers
    start_proxy
    start_nginx
    PORT[litebrain]=$LBPORT PORT[nginx]=$NGPORT
    # MEM_WARM_REQS answered requests, one at a time, then the idle baseline; why that many:
    # a process's one-off pages belong in the baseline, not in the per-connection figure
    # (litebrain's controller hint ring, 640 KiB, is touched as it cycles, first after ~4,000
    # requests); why one at a time: the heap grows no further than one exchange's worth; why
    # connections of 1,000: nginx closes a keep-alive connection after its 1,000th request
    for t in litebrain nginx; do
        for _ in $(seq 1 $((MEM_WARM_REQS / MEM_WARM_PER_CONN))); do
            taskset -c $CLIENT_CPU "$LOAD" run --port ${PORT[$t]} --body "$tmp/small.json" \
                --requests $MEM_WARM_PER_CONN >/dev/null || die "warm-up of fresh $t failed"
        done
    done
    for t in litebrain nginx; do
        if [ $what = stream ]; then
            set -- $(hold $t $LONG_STREAMS "$tmp/long.json")
        else
            set -- $(hold $t $IDLE_CONNS "$tmp/small.json" --idle)
        fi
        echo "mem $t ${what}_kib $1" >>"$R"; echo "mem $t ${what}_base $2" >>"$R"; echo "mem $t ${what}_rss $3" >>"$R"
    done
done

# ---- the table ----
med() {  # case target metric: median of the rounds
    awk -v c="$1" -v t="$2" -v m="$3" '$1 == c && $2 == t && $3 == m {print $4}' "$R" | median
}
verdict() { [ "$1" = 1 ] && echo met || echo "NOT met"; }

sidecar_rows() {  # the sidecar-layout small case's rows (the req/s target's layout)
    local rd rl rn      # the medians are the D_* variables set beside the other cases' below
    rd=$D_rps_direct rl=$D_rps_litebrain rn=$D_rps_nginx
    echo "| small /api/generate, wrk -c$SMALL_CONNS, sidecar layout: the sim pinned beside the server on core $SERVER_CPU, wrk on core $CLIENT_CPU (proxy and Ollama share the pod's CPUs, the client is elsewhere) | req/s | $rd | $rl | $rn | $(ratio $rl $rn) | ≥ 1.20 | $(verdict $(awk -v a=$rl -v b=$rn 'BEGIN{print (a >= 1.2 * b)}')) |"
    echo "| | req/s, litebrain / nginx of each round (median of the $ROUNDS pairs) | | | | $(med sidecar pair rps_ratio) | | |"
    echo "| | p50 ms | $D_p50_direct | $D_p50_litebrain | $D_p50_nginx | $(ratio $D_p50_litebrain $D_p50_nginx) | | |"
    echo "| | p99 ms | $D_p99_direct | $D_p99_litebrain | $D_p99_nginx | $(ratio $D_p99_litebrain $D_p99_nginx) | | |"
    echo "| | server CPU µs per request (user + sys) | — | $D_cpu_us_litebrain | $D_cpu_us_nginx | $(ratio $D_cpu_us_litebrain $D_cpu_us_nginx) | | |"
    echo "| | … of which user / sys µs | — | $D_user_us_litebrain / $D_sys_us_litebrain | $D_user_us_nginx / $D_sys_us_nginx | | | |"
    echo "| | box CPU µs per request (every process + kernel, both cores) | $D_box_us_direct | $D_box_us_litebrain | $D_box_us_nginx | $(ratio $D_box_us_litebrain $D_box_us_nginx) | | |"
    echo "| | busy % of the server's core / the clients' core | $D_core_srv_direct / $D_core_cli_direct | $D_core_srv_litebrain / $D_core_cli_litebrain | $D_core_srv_nginx / $D_core_cli_nginx | | | |"
}
capped_rows() {  # the capped small case's rows, or one saying why it did not run
    if [ -z "$CAP_ROOT" ]; then
        echo "| small, each server capped at $CAP_PCT % of a core | not run: $CAP_WHY | | | | | | |"
        return
    fi
    local rl rn cl cn ul un sl sn
    rl=$(med capped litebrain rps) rn=$(med capped nginx rps)
    cl=$(med capped litebrain cpu_us) cn=$(med capped nginx cpu_us)
    ul=$(med capped litebrain user_us) un=$(med capped nginx user_us)
    sl=$(med capped litebrain sys_us) sn=$(med capped nginx sys_us)
    echo "| small, each server capped at $CAP_PCT % of a core (cgroup v$CAP_V CPU quota; the server is the bottleneck) | req/s | — | $rl | $rn | $(ratio $rl $rn) | ≥ 1.20 | $(verdict $(awk -v a=$rl -v b=$rn 'BEGIN{print (a >= 1.2 * b)}')) |"
    echo "| | req/s, litebrain / nginx of each round (median of the $ROUNDS pairs) | | | | $(med capped pair rps_ratio) | | |"
    echo "| | p50 ms | — | $(med capped litebrain p50) | $(med capped nginx p50) | | | |"
    echo "| | server CPU µs per request (user + sys) | — | $cl | $cn | $(ratio $cl $cn) | | |"
    echo "| | … of which user / sys µs | — | $ul / $sl | $un / $sn | | | |"
}
for t in $TARGETS; do
    for m in rps p50 p99 cpu_us user_us sys_us box_us box_busy; do eval "S_${m}_$t=$(med small $t $m)"; done
    for m in rps p50 p99 cpu_us user_us sys_us box_us core_srv core_cli; do eval "D_${m}_$t=$(med sidecar $t $m)"; done
    for m in ttfb ttfb99 lag lag99 gap; do eval "T_${m}_$t=$(med stream $t $m)"; done
    eval "O_ttfb_$t=$(med solo $t ttfb)"
    eval "O_add_$t=$(med solo $t add)"
    eval "W_ttfb_$t=$(med warm $t ttfb)"
    eval "G_$t=$(med big $t lat)"
    eval "GA_$t=$(med big $t add)"
done
for t in litebrain nginx; do
    for m in stream_kib idle_kib stream_base stream_rss idle_base idle_rss; do eval "M_${m}_$t=$(med mem $t $m)"; done
done
lb_ttfb_add=$(sub $T_ttfb_litebrain $T_ttfb_direct); ng_ttfb_add=$(sub $T_ttfb_nginx $T_ttfb_direct)
lb_solo_add=$O_add_litebrain ng_solo_add=$O_add_nginx
ttfb_pair=$(med stream pair ttfb_diff)
warm_pair=$(med warm pair ttfb_diff)
lb_lag_add=$(sub $T_lag_litebrain $T_lag_direct); ng_lag_add=$(sub $T_lag_nginx $T_lag_direct)
lb_big_add=$GA_litebrain ng_big_add=$GA_nginx
errors=$(awk '$3 == "errors"' "$R")

cat <<EOF

## litebrain-proxy vs nginx vs direct — $(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), medians of $ROUNDS interleaved rounds

Absolute numbers are this machine's.  Servers (litebrain-proxy; nginx master + 1 worker) on core $SERVER_CPU, clients (wrk, lbload) on core $CLIENT_CPU, ollama-sim pinned beside the servers on core $SERVER_CPU for the sidecar-layout case (the req/s target's row), unpinned for the others$([ -n "$CAP_ROOT" ] && echo "; each of the sim, litebrain and nginx in a cpu cgroup of its own, as containers are").  Load average at start: $LOAD_START (the 2 cores are shared with other work).

| case | metric | direct | litebrain | nginx | litebrain / nginx | target | verdict |
|---|---|---:|---:|---:|---:|---|---|
$(sidecar_rows)
| small, the sim unpinned (the scheduler places it, mostly beside wrk on core $CLIENT_CPU, whose core then sets the rate) | req/s | $S_rps_direct | $S_rps_litebrain | $S_rps_nginx | $(ratio $S_rps_litebrain $S_rps_nginx) | ≥ 1.20 | $(verdict $(awk -v a=$S_rps_litebrain -v b=$S_rps_nginx 'BEGIN{print (a >= 1.2 * b)}')) |
| | req/s, litebrain / nginx of each round (median of the $ROUNDS pairs) | | | | $(med small pair rps_ratio) | | |
| | p50 ms | $S_p50_direct | $S_p50_litebrain | $S_p50_nginx | $(ratio $S_p50_litebrain $S_p50_nginx) | | |
| | p99 ms | $S_p99_direct | $S_p99_litebrain | $S_p99_nginx | $(ratio $S_p99_litebrain $S_p99_nginx) | | |
| | server CPU µs per request (user + sys) | — | $S_cpu_us_litebrain | $S_cpu_us_nginx | $(ratio $S_cpu_us_litebrain $S_cpu_us_nginx) | | |
| | … of which user / sys µs | — | $S_user_us_litebrain / $S_sys_us_litebrain | $S_user_us_nginx / $S_sys_us_nginx | | | |
| | box CPU µs per request (every process + kernel, both cores) | $S_box_us_direct | $S_box_us_litebrain | $S_box_us_nginx | $(ratio $S_box_us_litebrain $S_box_us_nginx) | | |
| | box busy % (both cores) | $S_box_busy_direct | $S_box_busy_litebrain | $S_box_busy_nginx | | | |
| | busy % of the server's core / the clients' core (the sim runs where the scheduler puts it) | $(med small direct core_srv) / $(med small direct core_cli) | $(med small litebrain core_srv) / $(med small litebrain core_cli) | $(med small nginx core_srv) / $(med small nginx core_cli) | | | |
| | ceiling: litebrain / nginx req/s if litebrain used no CPU (box CPU-bound) | — | — | — | $(awk -v b=$S_box_us_nginx -v c=$S_cpu_us_nginx 'BEGIN { if (b - c > 0) printf "%.2f", b / (b - c); else print "n/a" }') | | |
$(capped_rows)
| stream, $STREAM_CONNS × $STREAM_TOKENS lines @ $((1000 / STREAM_TPS)) ms | TTFB p50 ms | $T_ttfb_direct | $T_ttfb_litebrain | $T_ttfb_nginx | | | |
| | TTFB added ms | — | $lb_ttfb_add | $ng_ttfb_add | $(ratio $lb_ttfb_add $ng_ttfb_add) | | |
| | TTFB p50, litebrain − nginx of each round (median of the $ROUNDS pairs) ms | | | | $ttfb_pair | ≤ 0 | $(verdict $(awk -v d=$ttfb_pair 'BEGIN{print (d <= 0)}')) |
| | TTFB p99 ms | $T_ttfb99_direct | $T_ttfb99_litebrain | $T_ttfb99_nginx | | | |
| | line lag p50 ms (behind the 2 ms schedule) | $T_lag_direct | $T_lag_litebrain | $T_lag_nginx | | | |
| | line lag p50 added ms | — | $lb_lag_add | $ng_lag_add | | | |
| | line lag p99 ms | $T_lag99_direct | $T_lag99_litebrain | $T_lag99_nginx | | | |
| | mean gap ms | $T_gap_direct | $T_gap_litebrain | $T_gap_nginx | | | |
| stream, one at a time, back to back ($SOLO_REQS × $SOLO_TOKENS lines; warm) | TTFB p50 ms | $W_ttfb_direct | $W_ttfb_litebrain | $W_ttfb_nginx | | | |
| | TTFB p50, litebrain − nginx of each round (median of the $ROUNDS pairs) ms | | | | $warm_pair | ≤ 0 | $(verdict $(awk -v d=$warm_pair 'BEGIN{print (d <= 0)}')) |
| stream, one at a time, paired ($SOLO_REQS × $SOLO_TOKENS lines, each stream to direct, litebrain, nginx in turn; each server idle ~40 ms before its next: cold) | TTFB p50 ms | $O_ttfb_direct | $O_ttfb_litebrain | $O_ttfb_nginx | | | |
| | TTFB added ms (median of paired differences) | — | $lb_solo_add | $ng_solo_add | $(ratio $lb_solo_add $ng_solo_add) | ≤ nginx | $(verdict $(awk -v a=$lb_solo_add -v b=$ng_solo_add 'BEGIN{print (a <= b)}')) |
| $LONG_STREAMS long streams open | KiB per stream | — | $M_stream_kib_litebrain | $M_stream_kib_nginx | $(ratio $M_stream_kib_litebrain $M_stream_kib_nginx) | ≤ nginx, ≤ 16 | $(verdict $(awk -v a=$M_stream_kib_litebrain -v b=$M_stream_kib_nginx 'BEGIN{print (a <= b && a <= 16)}')) |
| | RSS KiB idle → open | — | $M_stream_base_litebrain → $M_stream_rss_litebrain | $M_stream_base_nginx → $M_stream_rss_nginx | | | |
| $IDLE_CONNS idle keep-alive conns | KiB per conn | — | $M_idle_kib_litebrain | $M_idle_kib_nginx | $(ratio $M_idle_kib_litebrain $M_idle_kib_nginx) | ≤ nginx, ≤ 1 | $(verdict $(awk -v a=$M_idle_kib_litebrain -v b=$M_idle_kib_nginx 'BEGIN{print (a <= b && a <= 1)}')) |
| | RSS KiB idle → open | — | $M_idle_base_litebrain → $M_idle_rss_litebrain | $M_idle_base_nginx → $M_idle_rss_nginx | | | |
| 10 MiB body, 1 base64 image | latency p50 ms | $G_direct | $G_litebrain | $G_nginx | | | |
| | added over direct ms (median of paired differences) | — | $lb_big_add | $ng_big_add | $(ratio $lb_big_add $ng_big_add) | ≤ 2.00 | $(verdict $(awk -v a=$lb_big_add -v b=$ng_big_add 'BEGIN{print (a <= 0 || a <= 2 * b)}')) |
EOF
if [ -n "${BENCH_SCORING:-}" ] && [ -s "$BENCH_SCORING" ]; then
    # rows of `make bench-scoring`: "<shape words> <bytes> <MB/s> <ms> ms | <jansson MB/s> ..."
    awk -F'|' 'NF > 1 && $1 !~ /^shape/ { n = split($1, f, " "); if (n < 5) next
         shape = f[1]; for (i = 2; i <= n - 4; i++) shape = shape " " f[i]
         split($2, j, " ")
         printf "| scoring (make bench-scoring): %s | MB/s | | %s | | | jansson json_loadb: %s MB/s | |\n", shape, f[n - 2], j[1] }' "$BENCH_SCORING"
fi
# rows of `make bench-usage` (token scanner mx_usage_feed): "<shape words> <bytes> <MB/s> <per body> us"
[ -s "${BENCH_USAGE:-}" ] && awk 'NF > 4 && $NF == "us" && $1 != "shape" { s = $1; for (i = 2; i <= NF - 4; i++) s = s " " $i; printf "| usage scanner (make bench-usage): %s | MB/s | | %s | | | | |\n", s, $(NF - 2) }' "$BENCH_USAGE"
[ -n "$errors" ] && { echo; echo "errors seen:"; echo "$errors"; }
echo
echo "raw samples: (case target metric value)"
sort -k1,3 -k4g "$R" | awk '{k = $1 " " $2 " " $3; v[k] = v[k] " " $4} END {for (k in v) print "  " k ":" v[k]}' | sort
