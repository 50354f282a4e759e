#!/bin/bash
# lib.sh — what bench.sh and soak.sh share; sourced, not run.  The caller has set SIM (the
# ollama-sim binary), tmp (its scratch folder) and the array pids (processes to kill on exit).

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
