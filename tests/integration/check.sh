#!/bin/bash
# mesh check --pre, passing (free ports, a collector, a writable store) and
# failing (a port taken, no collector); mesh check with a proxy's admin
# endpoint; colours on a terminal and NO_COLOR. Then `mesh init --dry-run`
# against goldens (tests/golden/init/): a namespace without rules, one where
# the chains exist already (flushed, hooks kept), every option, and more
# ignored ports than one multiport rule takes; bad options are exit 2.
# MESH_UPDATE_GOLDEN=1 rewrites the goldens instead (review the diff).
# Usage: check.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
GOLD=$SRC/tests/golden/init
root=0; [ "$(id -u)" = 0 ] && root=1
start_collector
p1=$(free_port) p2=$(free_port) p3=$(free_port)

# --pre, passing
"$MESH" check --pre --ports $p1,$p2,$p3 --collector 127.0.0.1:$port --db "$WORK/mesh.db" > "$WORK/pre.out" 2>&1
st=$?
for line in "mesh-init" "mesh-proxy" "mesh-collector" "✓ the kernel is Linux" "✓ port $p1 is free" "✓ port $p3 is free" \
            "✓ the collector at 127.0.0.1:$port is reachable" "✓ the collector answers Query/Stat" \
            "✓ the store $WORK/mesh.db is writable"; do
    grep -q "^$line" "$WORK/pre.out" && ok "--pre: $line" || bad "--pre: no '$line' in: $(cat "$WORK/pre.out")"
done
if [ $root = 1 ] && command -v iptables > /dev/null; then
    [ $st = 0 ] && grep -q "^Status check results are ✓$" "$WORK/pre.out" && ok "--pre passes: exit 0" ||
        bad "--pre failed (exit $st): $(grep -A1 '^×' "$WORK/pre.out")"
else
    echo "note: not root or no iptables: the capability / iptables lines fail here"
fi

# --pre, failing: a port taken, no collector
/usr/bin/python3 -c 'import socket, sys, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("up", flush=True); time.sleep(60)' $p2 > "$WORK/holder.out" &
hpid=$!
trap 'stop_proxies; kill $cpid $hpid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do [ -s "$WORK/holder.out" ] && break; sleep 0.1; done
dead=$(free_port)
"$MESH" check --pre --ports $p1,$p2 --collector 127.0.0.1:$dead > "$WORK/fail.out" 2>&1
st=$?
[ $st = 1 ] && ok "--pre with failures: exit 1" || bad "--pre with failures: exit $st"
grep -q "^✓ port $p1 is free$" "$WORK/fail.out" && grep -q "^× port $p2 is free$" "$WORK/fail.out" &&
    grep -A1 "^× port $p2" "$WORK/fail.out" | grep -q "^    Address already in use: " &&
    ok "a taken port: × with a hint" || bad "taken port: $(cat "$WORK/fail.out")"
grep -q "^× the collector at 127.0.0.1:$dead is reachable$" "$WORK/fail.out" &&
    grep -A1 "^× the collector" "$WORK/fail.out" | grep -q "^    .*Connection refused; start one with \`mesh collector" &&
    ! grep -q "answers Query/Stat" "$WORK/fail.out" &&
    ok "no collector: × with a hint" || bad "no collector: $(cat "$WORK/fail.out")"
grep -q "^Status check results are ×$" "$WORK/fail.out" && ok "the summary says ×" || bad "summary: $(tail -1 "$WORK/fail.out")"
"$MESH" check --pre --db /proc/nonexistent/mesh.db --collector 127.0.0.1:$port > "$WORK/db.out" 2>&1
grep -q "^× the store /proc/nonexistent/mesh.db is writable$" "$WORK/db.out" && ok "an unwritable store: ×" || bad "store: $(grep store "$WORK/db.out")"

# without --pre: the proxy's admin endpoint answers /ready
start_proxy proxy --outbound 127.0.0.1:0 --admin 127.0.0.1:0 --route "*=127.0.0.1:$dead" || exit 1
"$MESH" check --admin 127.0.0.1:$padm --admin 127.0.0.1:$dead --collector 127.0.0.1:$port > "$WORK/run.out" 2>&1
st=$?
grep -q "^✓ the proxy admin endpoint 127.0.0.1:$padm answers /ready$" "$WORK/run.out" &&
    grep -q "^× the proxy admin endpoint 127.0.0.1:$dead answers /ready$" "$WORK/run.out" && [ $st = 1 ] &&
    ok "mesh check: one admin endpoint ready, one not (exit 1)" || bad "admin check (exit $st): $(cat "$WORK/run.out")"
stop_proxies

# colours only on a terminal, and never with NO_COLOR
if command -v script > /dev/null; then
    script -qec "$MESH check --pre --ports $p1 --collector 127.0.0.1:$port" /dev/null > "$WORK/tty.out" 2>&1
    grep -q $'\033\\[32m✓' "$WORK/tty.out" && ok "on a terminal: coloured marks" || bad "no colour on a terminal: $(head -3 "$WORK/tty.out" | od -c | head -3)"
    NO_COLOR=1 script -qec "$MESH check --pre --ports $p1 --collector 127.0.0.1:$port" /dev/null > "$WORK/nocolor.out" 2>&1
    ! grep -q $'\033' "$WORK/nocolor.out" && grep -q "✓" "$WORK/nocolor.out" && ok "NO_COLOR: no escape sequences" || bad "NO_COLOR ignored"
fi
! grep -q $'\033' "$WORK/pre.out" && ok "not a terminal: no escape sequences" || bad "colours into a file"
"$MESH" check --ports 0 > /dev/null 2> "$WORK/usage.err"; st=$?
[ $st = 2 ] && [ "$(wc -l < "$WORK/usage.err")" = 1 ] && ok "check --ports 0: one line, exit 2" || bad "check --ports 0: exit $st"

# mesh init --dry-run goldens
golden() { # NAME ARGS…: mesh init --dry-run ARGS against GOLD/NAME
    local name=$1; shift
    "$MESH" init --dry-run "$@" > "$WORK/$name" 2> "$WORK/$name.err" || { bad "init $name: exit $? $(cat "$WORK/$name.err")"; return; }
    if [ "${MESH_UPDATE_GOLDEN:-}" = 1 ]; then cp "$WORK/$name" "$GOLD/$name"; ok "$name written"; return; fi
    diff -u "$GOLD/$name" "$WORK/$name" > "$WORK/diff" && ok "init --dry-run: $name matches its golden" ||
        { bad "init --dry-run: $name differs"; head -30 "$WORK/diff"; }
}
golden fresh.txt --rules-from /dev/null
golden rerun.txt --rules-from "$GOLD/saved.rules"
golden options.txt --rules-from /dev/null --ipv6 --incoming-proxy-port 5143 --outgoing-proxy-port 5140 \
    --proxy-uid 1337 --inbound-ports-to-ignore 22,4190-4191 --outbound-ports-to-ignore 8088,9000-9010 \
    --subnets-to-ignore 10.9.0.0/16,fd00::/8 --outbound-subnets-to-ignore 10.96.0.0/12 --iptables-mode legacy
golden many_ports.txt --rules-from /dev/null --outbound-ports-to-ignore 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17-20
grep -q "^iptables -t nat -F PROXY_INIT_REDIRECT$" "$WORK/rerun.txt" && ! grep -q -- "-A PREROUTING\|-A OUTPUT\| -N " "$WORK/rerun.txt" &&
    ok "existing chains are flushed, existing hooks kept" || bad "rerun: $(cat "$WORK/rerun.txt")"
for args in "--subnets-to-ignore 10.0.0.0/33" "--outbound-ports-to-ignore 70000" "--inbound-ports-to-ignore 5,"  \
            "--proxy-uid x" "--iptables-mode foo" "--rules-from /dev/null" "--dry-run --rules-from /nonexistent" "extra"; do
    "$MESH" init $args > /dev/null 2> "$WORK/bad.err"; st=$?
    [ $st = 2 ] && [ "$(wc -l < "$WORK/bad.err")" = 1 ] && ok "init $args: one line, exit 2" || bad "init $args: exit $st, $(cat "$WORK/bad.err")"
done
finish
