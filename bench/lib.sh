#!/bin/bash
# lib.sh — what bench.sh, profile.sh and soak.sh share; sourced, not run.  The caller has set SIM
# (the ollama-sim binary), tmp (its scratch folder) and the array pids (processes to kill on
# exit); start_proxy and start_nginx also need PROXY, SIMPORT and SERVER_CPU.

freeport() {  # a loopback port nothing listens on (nginx cannot report a port-0 bind), below the
    # ephemeral range: a port in it can be the local end of any outgoing connection, and then
    # the listener cannot bind it (seen: "Address already in use" while other tests ran)
    local p lo
    lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null); [ "${lo:-0}" -gt 21000 ] || lo=32768
    while :; do
        p=$((20000 + RANDOM % (lo - 20000)))
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
    done
}

start_sim() {  # sim args...: start $SIM on a loopback port 0 (log in $tmp/sim.log), set SIMPORT
    # to the port it printed; returns 1 when it printed none
    "$SIM" --listen 127.0.0.1:0 "$@" 2>"$tmp/sim.log" &
    pids+=($!)
    for _ in $(seq 1 100); do grep -q "listening on" "$tmp/sim.log" && break; sleep 0.05; done
    SIMPORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/sim.log")
    [ -n "$SIMPORT" ]
}

die() {  # message: say it, show the tail of every log in $tmp, exit 1
    echo "${0##*/}: $*" >&2; for f in "$tmp"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done; exit 1; }
waitport() {  # port: wait until it accepts (the servers print nothing at --log-level warn)
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    die "port $1 never opened"
}
median() {  # the median of the numbers on stdin, one a line ("nan" when none); sort, not gawk's
    # asort: Debian's awk is mawk
    sort -g | awk '{v[NR] = $1} END { if (!NR) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }  # a b: a / b
cpu_ticks() {  # pids: "user system" CPU clock ticks so far (fields 14 and 15 of /proc/PID/stat)
    local p; for p in "$@"; do cat /proc/"$p"/stat; done | awk '{ sub(/^.*\) /, ""); u += $12; s += $13 } END { print u + 0, s + 0 }'
}
start_proxy() {  # litebrain-proxy on $SERVER_CPU, scoring every body, access log off (--log-level warn)
    LBPORT=$(freeport) LBMPORT=$(freeport)
    taskset -c $SERVER_CPU "$PROXY" --listen 127.0.0.1:$LBPORT --metrics-listen 127.0.0.1:$LBMPORT \
        --upstream http://127.0.0.1:$SIMPORT --log-level warn --max-connections 16384 \
        2>>"$tmp/proxy.log" &
    LBPID=$!
    pids+=($LBPID)
    waitport $LBPORT
}
nginx_conf() {  # dir port [top lines...]: write dir/nginx.conf, nginx in front of the sim at
    # $SIMPORT the way the bench compares it (upstream keepalive pool, no response buffering),
    # listening on port; pid, log and temp paths in dir; extra lines go at the top
    local dir=$1 port=$2
    shift 2
    { printf '%s\n' "$@"
      cat <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream ollama { server 127.0.0.1:$SIMPORT; keepalive 64; }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 64m;
        location / {
            proxy_pass http://ollama;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1:$SIMPORT;   # Ollama answers 403 to unknown Host values
            proxy_buffering off;
        }
    }
}
EOF
    } >"$dir/nginx.conf"
}
start_nginx() {  # nginx on $SERVER_CPU: one worker, upstream keepalive pool, no response buffering
    NGPORT=$(freeport)
    mkdir -p "$tmp/ng" && chmod 777 "$tmp" "$tmp/ng"
    nginx_conf "$tmp/ng" $NGPORT "worker_processes 1;" "worker_rlimit_nofile 65536;"
    taskset -c $SERVER_CPU nginx -p "$tmp/ng" -c "$tmp/ng/nginx.conf" -g 'daemon off;' 2>>"$tmp/nginx.log" &
    NGPID=$!
    pids+=($NGPID)
    waitport $NGPORT
    NGWORKER=$(pgrep -P $NGPID | head -1)
    [ -n "$NGWORKER" ] || die "no nginx worker"
}
stop_servers() {   # SIGTERM both and wait (the proxy drains: nothing is in flight here)
    kill $LBPID $NGPID 2>/dev/null
    wait $LBPID $NGPID 2>/dev/null
}

# ---- CPU caps: one cgroup per server, whose CFS quota can be switched on and off ----
# cgroup v2 (cpu.max, the cpu controller enabled at the root) or v1 (the cpu hierarchy's
# cpu.cfs_quota_us); CAP_ROOT is empty when neither is writable here.
CAP_PERIOD_US=100000    # CFS period; the quota is a share of it
cap_init() {  # find a writable cpu cgroup root; sets CAP_ROOT and CAP_V (1 or 2), or says why not
    local m
    CAP_ROOT= CAP_V= CAP_WHY=
    if grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
        CAP_ROOT=/sys/fs/cgroup CAP_V=2
    else
        m=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpu(,|$)/ {print $2; exit}' /proc/mounts)
        [ -n "$m" ] && [ -e "$m/cpu.cfs_quota_us" ] && CAP_ROOT=$m CAP_V=1
    fi
    [ -n "$CAP_ROOT" ] || { CAP_WHY="no cpu cgroup controller here"; return 1; }
    mkdir -p "$CAP_ROOT/lbbench-$$" 2>/dev/null && rmdir "$CAP_ROOT/lbbench-$$" 2>/dev/null ||
        { CAP_WHY="cannot create a cgroup under $CAP_ROOT"; CAP_ROOT=; return 1; }
}
cap_join() {  # name pids...: put the processes (all their threads) in cgroup lbbench-PID-name
    local g="$CAP_ROOT/lbbench-$$-$1" p
    shift
    mkdir -p "$g" || return 1
    for p in "$@"; do echo "$p" >"$g/cgroup.procs" || return 1; done
}
cap_set() {  # name pct|off: cap the group at pct % of one core, or lift the cap
    local g="$CAP_ROOT/lbbench-$$-$1" q
    if [ "$CAP_V" = 2 ]; then
        [ "$2" = off ] && q=max || q=$((CAP_PERIOD_US * $2 / 100))
        echo "$q $CAP_PERIOD_US" >"$g/cpu.max"
    else
        [ "$2" = off ] && q=-1 || q=$((CAP_PERIOD_US * $2 / 100))
        echo $CAP_PERIOD_US >"$g/cpu.cfs_period_us" && echo "$q" >"$g/cpu.cfs_quota_us"
    fi
}
cap_done() {  # remove this run's groups (their processes must have exited)
    [ -n "${CAP_ROOT:-}" ] || return 0
    local g
    for g in "$CAP_ROOT"/lbbench-$$-*; do [ -d "$g" ] && rmdir "$g" 2>/dev/null; done
    return 0
}
