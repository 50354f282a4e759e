#!/bin/sh
# make-run.sh — `make run`'s script (scripts/run.sh) with stand-ins for curl, the proxy and the
# simulator, so nothing listens anywhere: OLLAMA_HOST is probed where the proxy would talk to
# it (a bare host on port 11434, http://host on 80), an answering Ollama is used as it is, the
# simulator starts only for the default local address, and any other silent address is one
# line and exit code 2.
cd "$(dirname "$0")/../.." || exit 2
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
dir=$(mktemp -d) || exit 2
trap 'rm -rf "$dir"' EXIT

# curl stand-in: records the probed URL; answers when it is in $dir/up
mkdir "$dir/bin"
cat >"$dir/bin/curl" <<EOF
#!/bin/sh
for a; do u=\$a; done
echo "\$u" >>"$dir/probed"
grep -qxF "\$u" "$dir/up" 2>/dev/null
EOF
# the simulator stand-in says it started through a FIFO, which the proxy stand-in reads when it
# was given --upstream (the simulator path): run.sh's cleanup may kill the simulator as soon as
# the proxy returns, and must not win that race
mkfifo "$dir/started"
printf '#!/bin/sh\necho "sim $*" >>"%s/ran"\necho up >"%s/started"\n' "$dir" "$dir" >"$dir/sim"
printf '#!/bin/sh\ncase "$*" in --upstream*) timeout 10 sh -c "read x <%s/started" || echo "no sim";; esac >>"%s/ran"\necho "proxy $*" >>"%s/ran"\n' "$dir" "$dir" "$dir" >"$dir/proxy"
chmod +x "$dir/bin/curl" "$dir/proxy" "$dir/sim"

# run HOST [UP-URL]: scripts/run.sh with OLLAMA_HOST=HOST (unset when HOST is "-"), the URL
# that answers (none when absent); sets rc, probed, ran, err
run() {
    rm -f "$dir/probed" "$dir/ran" "$dir/up"
    [ -n "${2:-}" ] && echo "$2" >"$dir/up"
    if [ "$1" = - ]; then
        (unset OLLAMA_HOST; PATH="$dir/bin:$PATH" sh scripts/run.sh "$dir/proxy" "$dir/sim" --log-level warn) 2>"$dir/err"
    else
        OLLAMA_HOST=$1 PATH="$dir/bin:$PATH" sh scripts/run.sh "$dir/proxy" "$dir/sim" --log-level warn 2>"$dir/err"
    fi
    rc=$?
    probed=$(cat "$dir/probed" 2>/dev/null); ran=$(cat "$dir/ran" 2>/dev/null); err=$(cat "$dir/err")
}

for c in "127.0.0.1|http://127.0.0.1:11434/" "127.0.0.1:8080|http://127.0.0.1:8080/" \
         "http://127.0.0.1|http://127.0.0.1/" "http://10.0.0.5:11434/|http://10.0.0.5:11434/" \
         "[::1]|http://[::1]:11434/" "[::1]:9000|http://[::1]:9000/" "-|http://127.0.0.1:11434/" \
         ":8080|http://127.0.0.1:8080/" "HTTP://10.0.0.5:8080|http://10.0.0.5:8080/" \
         "::1|http://[::1]:11434/" "fd00::5|http://[fd00::5]:11434/"; do
    host=${c%%|*} url=${c#*|}
    run "$host" "$url"
    if [ "$rc" = 0 ] && [ "$probed" = "$url" ] && [ "$ran" = "proxy --log-level warn" ]; then
        ok "OLLAMA_HOST=$host: probes $url, runs the proxy as it is"
    else
        bad "OLLAMA_HOST=$host: probes $url, runs the proxy as it is (rc $rc, probed '$probed', ran '$ran')"
    fi
done

for host in - 127.0.0.1 localhost:11434 http://127.0.0.1:11434 :11434 HTTP://localhost:11434/; do
    run "$host"
    if [ "$rc" = 0 ] && printf '%s\n' "$ran" | grep -qx "sim --listen 127.0.0.1:11434" \
       && printf '%s\n' "$ran" | grep -qx "proxy --upstream http://127.0.0.1:11434 --log-level warn"; then
        ok "OLLAMA_HOST=$host, nothing answers: the simulator on 127.0.0.1:11434, then the proxy"
    else
        bad "OLLAMA_HOST=$host, nothing answers: the simulator, then the proxy (rc $rc, ran '$ran')"
    fi
done

run 10.0.0.5:11434
if [ "$rc" = 2 ] && [ -z "$ran" ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] \
   && printf '%s' "$err" | grep -q "nothing answers at 10.0.0.5:11434"; then
    ok "a remote address that does not answer: one line, exit 2, nothing started"
else
    bad "a remote address that does not answer: one line, exit 2 (rc $rc, ran '$ran', err '$err')"
fi

echo "make-run: $pass passed, $fail failed"
[ "$fail" = 0 ]
