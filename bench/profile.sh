#!/bin/bash
# profile.sh — where litebrain-proxy and nginx spend their CPU on the bench's small case (wrk,
# 64 keep-alive connections, non-streamed /api/generate, scoring on), pinned like bench.sh.
# Per server: PROFILE_ROUNDS wrk runs of PROFILE_SECONDS under `perf stat` (system calls,
# context switches and CPU time per request, exact counts; servers interleaved, medians), then
# one under `perf record` (samples of the kernel and user space: the share per binary and the
# top symbols).  Started by `make bench-profile`; prints markdown.
#   PROFILE_ROUNDS (3)  PROFILE_SECONDS (5)  PROFILE_TOP (12 symbols)  LB_BUILD (build)
set -u
cd "$(dirname "$0")/.." || exit 2
. bench/lib.sh
B=${LB_BUILD:-build}
PROXY=$B/litebrain-proxy SIM=$B/ollama-sim
ROUNDS=${PROFILE_ROUNDS:-3} SECS=${PROFILE_SECONDS:-5} TOP=${PROFILE_TOP:-12}
SMALL_CONNS=64          # wrk connections, as in bench.sh
WARM_SECS=1             # wrk warm-up per server before anything is counted
SERVER_CPU=0 CLIENT_CPU=1

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d /tmp/lbprofile.XXXXXX) || exit 2
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT

# why a probe: perf exists in many containers but may not count (perf_event_paranoid, seccomp,
# a wrapper without the running kernel's perf); say so in one line rather than print zeros
perf stat -x, -e raw_syscalls:sys_enter,context-switches,task-clock -- true >/dev/null 2>"$tmp/probe" &&
    ! grep -q "not supported\|<not counted>" "$tmp/probe" ||
    die "perf cannot count system calls here ($(grep -v '^$' "$tmp/probe" | head -1)); see bench/README.md for the callgrind profile"

start_sim --parallel 8192 --max-queue 65536 --model "qwen2.5:3b:0:1000000:8" || die "simulator did not start"
start_proxy
start_nginx
declare -A PORT=([litebrain]=$LBPORT [nginx]=$NGPORT)
declare -A SRV=([litebrain]=$LBPID [nginx]="$NGPID,$NGWORKER")
cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"qwen2.5:3b","prompt":"Why is the sky blue?","stream":false}'
EOF
load() {  # target secs [perf args...]: wrk on the client core (under perf when asked); prints
    # "requests req/s" of that run
    local t=$1 s=$2 out
    shift 2
    out=$(taskset -c $CLIENT_CPU "$@" wrk -t1 -c$SMALL_CONNS -d${s}s -s "$tmp/post.lua" \
          "http://127.0.0.1:${PORT[$t]}/api/generate") || die "wrk on $t failed"
    echo "$out" | grep -q "Non-2xx\|Socket errors" && die "wrk on $t saw errors: $(echo "$out" | grep "Non-2xx\|Socket")"
    echo "$out" | awk '/ requests in / {n = $1} /^Requests\/sec:/ {r = $2} END {print n, r}'
}
stat_of() {  # file event: the count perf stat wrote for it (CSV: value,unit,event,...)
    awk -F, -v e="$2" '$3 == e {print $1}' "$1"
}

echo "profile: $ROUNDS x ${SECS} s counted and ${SECS} s sampled per server, after a ${WARM_SECS} s warm-up" >&2
R="$tmp/results"    # lines: target metric value
for t in litebrain nginx; do load $t $WARM_SECS >/dev/null; done
for round in $(seq 1 "$ROUNDS"); do
    for t in litebrain nginx; do
        # why not set -- $(load ...): load's die ends only the $( ) subshell, not this script
        res=$(load $t "$SECS" perf stat -x, -o "$tmp/stat" \
              -e raw_syscalls:sys_enter,context-switches,task-clock -p "${SRV[$t]}" --) || exit 1
        set -- $res
        n=$1
        echo "$t rps $2" >>"$R"
        awk -v c="$(stat_of "$tmp/stat" raw_syscalls:sys_enter)" -v n="$n" -v t=$t 'BEGIN {printf "%s sys %.2f\n", t, c / n}' >>"$R"
        awk -v c="$(stat_of "$tmp/stat" context-switches)" -v n="$n" -v t=$t 'BEGIN {printf "%s cs %.3f\n", t, c / n}' >>"$R"
        awk -v c="$(stat_of "$tmp/stat" task-clock)" -v n="$n" -v t=$t 'BEGIN {printf "%s cpu %.1f\n", t, c * 1000 / n}' >>"$R"
    done
    echo "profile: round $round counted" >&2
done
med() {  # target metric: median of the rounds
    awk -v t="$1" -v m="$2" '$1 == t && $2 == m {print $3}' "$R" | median
}
for t in litebrain nginx; do
    for m in rps sys cs cpu; do eval "$(echo $m | tr a-z A-Z)_$t=$(med $t $m)"; done
    load $t "$SECS" perf record -q -o "$tmp/rec.$t" -p "${SRV[$t]}" -- >/dev/null
    perf report -i "$tmp/rec.$t" --no-children --sort dso --stdio -q -g none 2>/dev/null |
        awk 'NF >= 2 {sub(/%/, "", $1); print $1, $2}' >"$tmp/dso.$t"
    perf report -i "$tmp/rec.$t" --no-children --sort dso,sym --stdio -q -g none 2>/dev/null |
        awk -v top="$TOP" 'NF >= 4 && n < top {n++; sub(/%/, "", $1); s = $4; for (i = 5; i <= NF; i++) s = s " " $i; printf "| %s | %s | `%s` |\n", $1, $2, s}' >"$tmp/top.$t"
    eval "KERN_$t=$(awk '$2 == "[kernel.kallsyms]" {k += $1} END {printf "%.1f", k}' "$tmp/dso.$t")"
    echo "profile: $t sampled" >&2
done
class_of() {  # class file: the summed share of the binaries in that class
    awk -v c="$1" '{
        if ($2 == "[kernel.kallsyms]") k = "kernel"; else if ($2 == "litebrain-proxy" || $2 == "nginx") k = "own"
        else if ($2 ~ /^libevent/) k = "libevent"; else if ($2 ~ /^libc[.-]/) k = "libc"; else k = "other"
        if (k == c) s += $1 } END { printf "%.1f", s }' "$2"
}
label() { case $1 in kernel) echo "the kernel" ;; own) echo "the server's own code" ;; libevent) echo "libevent" ;;
                     libc) echo "libc (syscall wrappers, malloc, string functions)" ;; other) echo "other (vdso, libm, …)" ;; esac; }
user_of() { awk -v k="$1" 'BEGIN {printf "%.1f", 100 - k}'; }

cat <<EOF

## Where the CPU goes, small case — $(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)

Servers on core $SERVER_CPU, wrk (and perf) on core $CLIENT_CPU, ollama-sim unpinned.  Counts: medians of $ROUNDS interleaved ${SECS} s runs of wrk -c$SMALL_CONNS under \`perf stat -e raw_syscalls:sys_enter,context-switches,task-clock\` (the tracepoint makes every system call dearer, so req/s here is not the bench's: the server with more calls loses more).  Shares: one ${SECS} s run under \`perf record\` (cpu-clock samples of the server's threads, kernel included).

| per request | litebrain | nginx (master + worker) | litebrain / nginx |
|---|---:|---:|---:|
| req/s while counted (slowed by the tracepoint) | $RPS_litebrain | $RPS_nginx | $(ratio $RPS_litebrain $RPS_nginx) |
| system calls | $SYS_litebrain | $SYS_nginx | $(ratio $SYS_litebrain $SYS_nginx) |
| context switches | $CS_litebrain | $CS_nginx | $(ratio $CS_litebrain $CS_nginx) |
| CPU µs (task-clock) | $CPU_litebrain | $CPU_nginx | $(ratio $CPU_litebrain $CPU_nginx) |
| share in the kernel % | $KERN_litebrain | $KERN_nginx | |
| share in user space % (own code, libevent, libc) | $(user_of $KERN_litebrain) | $(user_of $KERN_nginx) | |

Share of CPU samples by where the code lives:

| | litebrain % | nginx % |
|---|---:|---:|
$(for c in kernel own libevent libc other; do
    printf '| %s | %s | %s |\n' "$(label $c)" "$(class_of $c "$tmp/dso.litebrain")" "$(class_of $c "$tmp/dso.nginx")"
done)

Top $TOP symbols, litebrain-proxy:

| % | binary | symbol |
|---:|---|---|
$(cat "$tmp/top.litebrain")

Top $TOP symbols, nginx:

| % | binary | symbol |
|---:|---|---|
$(cat "$tmp/top.nginx")
EOF
