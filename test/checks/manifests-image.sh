#!/bin/sh
# manifests-image.sh — k8s/Dockerfile's runtime stage installs what the binary links against.
#   1. every library the binary names (DT_NEEDED) comes from a package the runtime stage's
#      `apt-get install` lists, or from the base image (the dependency closure of Debian's
#      Essential packages, which debian:12-slim contains);
#   2. every library `ldd` resolves (transitively) is in the dependency closure of that list
#      plus the base image, so apt pulls it in;
#   3. every listed package is needed (provides a DT_NEEDED library), except the data-only
#      packages in DATA_PKGS.
# Library → package via `dpkg -S`, dependencies via the local dpkg database (no network).
# Binary: build/litebrain-proxy, what the image ships (built here if missing).
# Ends with "manifests-image: N passed, M failed".
cd "$(dirname "$0")/../.." || exit 2
DOCKERFILE=${DOCKERFILE:-k8s/Dockerfile}   # override only to test this check
DATA_PKGS="ca-certificates"          # no library; TLS trust for HTTPS (libcurl's CA bundle)
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
finish() { echo "manifests-image: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

# The image ships the release build (a sanitizer build links differently), so check that one,
# building it when only build-san exists.
bin=build/litebrain-proxy
[ -x "$bin" ] || make --no-print-directory -s bin SAN=0 >/dev/null 2>&1
if [ ! -x "$bin" ]; then bad "no $bin and make bin failed"; finish; fi
for t in readelf ldd dpkg dpkg-query; do
    command -v "$t" >/dev/null 2>&1 || { bad "$t is needed"; finish; }
done
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# The runtime stage: from the last FROM on, continuation lines joined; the words after
# `apt-get install` that are not options, up to the end of that command.
listed=$(awk '/^FROM /{buf=""} {buf = buf " " $0} END{print buf}' "$DOCKERFILE" | sed 's/\\ / /g' \
    | awk '{for (i = 1; i <= NF; i++) { if ($i == "install" && $(i-1) == "apt-get") on = 1;
             else if (on && ($i == "&&" || $i == ";")) on = 0;
             else if (on && $i !~ /^-/) print $i }}' | sort -u)
if [ -n "$listed" ]; then ok "runtime packages in $DOCKERFILE: $(echo $listed)"
else bad "no apt-get install in the runtime stage of $DOCKERFILE"; finish; fi

# Package owning a library path, from one `dpkg -S` over every candidate spelling of every
# path ldd resolved (usr-merge: the path as given, its real path, its /usr twin).
ldd "$bin" >"$tmp/ldd" 2>&1 || { bad "ldd $bin failed"; finish; }
for path in $(awk '$2 == "=>" && $3 ~ /^\// {print $3}' "$tmp/ldd"); do
    echo "$path"; readlink -f "$path"; echo "/usr$path"; echo "${path#/usr}"
done | sort -u >"$tmp/paths"
# shellcheck disable=SC2046
dpkg -S $(cat "$tmp/paths") 2>/dev/null | sed 's/^\([^:]*\)\(:[^:]*\)\{0,1\}: /\1 /' >"$tmp/owners"
pkg_of() {
    for p in "$1" "$(readlink -f "$1")" "/usr$1" "${1#/usr}"; do
        r=$(awk -v f="$p" '$2 == f {print $1; exit}' "$tmp/owners") && [ -n "$r" ] && { echo "$r"; return 0; }
    done
    return 1
}

# Dependency closure (Depends + Pre-Depends, first installed alternative) of the given
# packages, computed in one pass over the dpkg database.
dpkg-query -W -f='${Package}\t${Status}\t${Depends}, ${Pre-Depends}\n' >"$tmp/db"
closure() {
    printf '%s\n' "$@" | awk -F '\t' 'NR == FNR { if ($2 ~ /install ok installed/) { inst[$1] = 1; dep[$1] = $3 }; next }
        { want[$1] = 1; queue[++n] = $1 }
        END {
            for (i = 1; i <= n; i++) {
                m = split(dep[queue[i]], parts, ",")
                for (j = 1; j <= m; j++) {
                    alt = parts[j]; gsub(/\([^)]*\)/, "", alt); gsub(/:any/, "", alt)
                    k = split(alt, alts, "|")
                    for (a = 1; a <= k; a++) {
                        name = alts[a]; gsub(/[ \t]/, "", name)
                        if (name in inst) { if (!(name in want)) { want[name] = 1; queue[++n] = name }; break }
                    }
                }
            }
            for (p in want) print p
        }' "$tmp/db" - | sort -u
}

essential=$(dpkg-query -W -f='${Package} ${Essential}\n' | awk '$2 == "yes" {print $1}')
closure $essential >"$tmp/base"
closure $listed $essential >"$tmp/covered"

# 1. direct libraries
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
: >"$tmp/direct_pkgs"
for lib in $needed; do
    path=$(awk -v l="$lib" '$1 == l && $2 == "=>" {print $3}' "$tmp/ldd")
    pkg=$(pkg_of "$path") || { bad "$lib ($path): no Debian package owns it"; continue; }
    echo "$pkg" >>"$tmp/direct_pkgs"
    if echo "$listed" | grep -qx "$pkg"; then ok "$lib -> $pkg (listed)"
    elif grep -qx "$pkg" "$tmp/base"; then ok "$lib -> $pkg (in the base image)"
    else bad "$lib -> $pkg: not installed by the runtime stage of $DOCKERFILE"; fi
done

# 2. every resolved library, transitively
all_ok=1
for path in $(awk '$2 == "=>" && $3 ~ /^\// {print $3}' "$tmp/ldd"); do
    pkg=$(pkg_of "$path") || { bad "$path: no Debian package owns it"; all_ok=0; continue; }
    grep -qx "$pkg" "$tmp/covered" || { bad "$path -> $pkg: not pulled in by the runtime packages"; all_ok=0; }
done
[ "$all_ok" = 1 ] && ok "all $(grep -c '=>' "$tmp/ldd") libraries ldd resolves come with the runtime packages or the base image"

# 3. nothing listed without a reason
for p in $listed; do
    if grep -qx "$p" "$tmp/direct_pkgs"; then :
    elif echo " $DATA_PKGS " | grep -q " $p "; then ok "$p: listed as data-only ($DATA_PKGS)"
    else bad "$p is installed by $DOCKERFILE but the binary needs no library from it"; fi
done
finish
