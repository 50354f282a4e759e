#!/bin/sh
# run.sh PROXY SIM — `make run`: start the proxy on :11435 (metrics :9090) against OLLAMA_HOST;
# when nothing answers there, first start the bundled Ollama simulator on 127.0.0.1:11434.
proxy=$1; sim=$2; shift 2
upstream=${OLLAMA_HOST:-http://127.0.0.1:11434}
# the address the proxy will use, read as it reads OLLAMA_HOST (px_parse_upstream): http://host
# [:port] as given, any case (port 80 when absent), host:port, :port on this machine, and a
# bare host — a name, IPv4, or IPv6 with or without brackets — on Ollama's port 11434
case "$upstream" in
    [Hh][Tt][Tt][Pp]://*) url=http://${upstream#*://}; url=${url%/} ;;
    \[*\]:*) url=http://$upstream ;;
    \[*\]) url=http://$upstream:11434 ;;
    *:*:*) url=http://[$upstream]:11434 ;;
    :*) url=http://127.0.0.1$upstream ;;
    *:*) url=http://$upstream ;;
    *) url=http://$upstream:11434 ;;
esac
if curl -s -o /dev/null -m 2 "$url/"; then
    echo "make run: using the Ollama at $upstream" >&2
    exec "$proxy" "$@"
fi
case "$url" in
    http://127.0.0.1:11434|http://localhost:11434) ;;
    *) echo "make run: nothing answers at $upstream; start Ollama there, or unset OLLAMA_HOST to use the simulator" >&2
       exit 2 ;;
esac
echo "make run: no Ollama at $upstream — starting the bundled simulator (build/ollama-sim) on 127.0.0.1:11434" >&2
"$sim" --listen 127.0.0.1:11434 &
simpid=$!
trap 'kill $simpid 2>/dev/null; wait $simpid 2>/dev/null' EXIT INT TERM
"$proxy" --upstream http://127.0.0.1:11434 "$@"
