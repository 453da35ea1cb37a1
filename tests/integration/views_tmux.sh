#!/bin/bash
# The live screens, for real, in a detached tmux of fixed size on a private
# socket: top shows the corpus' rows, re-sorts on a key and follows a resize;
# tap shows events arriving while a replay streams in, pauses and counts,
# and a capture's headers in its HEADERS column;
# stat --watch updates and marks failing rows (NO_COLOR: "!"); q and Ctrl-C
# leave with status 0 and the alternate screen left. Every wait polls
# capture-pane with a bound; the tmux server dies with the test.
# Usage: views_tmux.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
need_corpus
command -v tmux > /dev/null || skip "tmux (Debian tmux) missing"
C=$SHARED/corpus/emojivoto
LABELS=$SRC/tests/data/emojivoto.labels
start_collector
ADDR=127.0.0.1:$port
SOCK=mesh-ui-test-$$
TM=(tmux -L "$SOCK" -f /dev/null)
trap '"${TM[@]}" kill-server 2>/dev/null; kill $cpid 2>/dev/null; wait $cpid 2>/dev/null; rm -rf "$WORK"' EXIT
"$MESH" replay -q "$C/mixed.pcap" --labels "$LABELS" --collector "$ADDR" || bad "replay exit $?"

"${TM[@]}" new-session -d -x 160 -y 40 -s ui "env -i PATH=/usr/bin:/bin HOME=$WORK TERM=screen LANG=C.UTF-8 PS1='$ ' bash --norc --noprofile" ||
    { bad "tmux new-session"; finish; exit; }
screen() { "${TM[@]}" capture-pane -p -t ui; }
run() { "${TM[@]}" send-keys -t ui "$*" Enter; }
keys() { "${TM[@]}" send-keys -t ui "$@"; }
# wait_for REGEX [TENTHS]: until the pane shows REGEX (10 s by default)
wait_for() {
    for _ in $(seq "${2:-100}"); do screen | grep -qE -- "$1" && return 0; sleep 0.1; done
    return 1
}
alt_off() { [ "$("${TM[@]}" display -p -t ui '#{alternate_on}')" = 0 ]; }
row_of() { screen | grep -m1 -E -- "$1"; }

# --- top -----------------------------------------------------------------------------------------
run "clear; $MESH top --since 0 --collector $ADDR; echo TOP-EXIT=\$?"
if wait_for 'VoteDoughnut' && row_of 'VotingService/VoteDoughnut' | grep -qE ' 0\.00%$' &&
   screen | sed -n 2p | grep -qE '^Source +Destination +Method +Path +Count▼ +Best +Worst +Last +Success Rate'; then
    ok "top: columns, and VoteDoughnut at 0.00%"
else bad "top screen: $(screen | head -8)"; fi
first=$(screen | sed -n 3p | awk '{print $4}')
want=$("$MESH" top --since 0 --collector "$ADDR" | sed -n 2p | awk '{print $4}')
[ "$first" = "$want" ] && ok "top: most requests first ($first)" || bad "top first row $first, want $want"
want=$("$MESH" top --since 0 --collector "$ADDR" --sort worst | sed -n 2p | awk '{print $1, $4}')
keys w
if wait_for 'Worst▼' && [ "$(screen | sed -n 3p | awk '{print $1, $4}')" = "$want" ]; then
    ok "top: w re-sorts by Worst ($want first)"; else bad "top sort: $(screen | sed -n 2,4p)"; fi
keys w
if wait_for 'Worst▲'; then ok "top: w again reverses"; else bad "top reverse: $(screen | sed -n 2p)"; fi
keys j j j
if wait_for 'rows 4-40 of' 20; then ok "top: j scrolls"; else bad "top scroll: $(screen | head -1)"; fi
"${TM[@]}" resize-window -t ui -x 72 -y 20
widest() { screen | python3 -c 'import sys, unicodedata as u
print(max(sum(2 if u.east_asian_width(ch) in "WF" else 1 for ch in l.rstrip("\n")) for l in sys.stdin))'; }
if wait_for 'rows [0-9]+-[0-9]+ of' 50 && wait_for '…' 50 && [ "$(widest)" -le 72 ] && [ "$(screen | wc -l)" -le 20 ]; then
    ok "top: follows a resize to 72x20 (columns cut with …)"; else bad "top resize: $(screen | head -4)"; fi
"${TM[@]}" resize-window -t ui -x 160 -y 40
keys q
if wait_for '^TOP-EXIT=0$' && alt_off && ! screen | grep -q 'Success Rate'; then
    ok "top: q exits 0, the alternate screen is left"; else bad "top exit: $(screen | tail -4)"; fi

# --- tap ------------------------------------------------------------------------------------------
run "clear; $MESH tap --collector $ADDR; echo TAP-EXIT=\$?"
wait_for 'mesh tap' || bad "tap screen: $(screen | head -3)"
# subscribed? a one-request probe, replayed until the screen shows it
for _ in $(seq 50); do
    "$MESH" replay -q "$SHARED/corpus/zeek/x-gzip.pcap" --collector "$ADDR"
    wait_for 'localhost' 3 && break
done
"$MESH" replay -q "$C/grpc.pcap" --collector "$ADDR" &
rpid=$!
if wait_for 'VoteDoughnut' && wait_for 'shown ([3-9][0-9]{2}|[0-9]{4,}) '; then
    ok "tap: events arrive while a replay streams in ($(screen | grep -oE 'shown [0-9]+'))"
else bad "tap live: $(screen | head -3)"; fi
wait $rpid
if screen | grep -E 'VoteDoughnut' | grep -qE ' 2 +[0-9.]+[µm]?s '; then ok "tap: grpc-status 2 shown"; else bad "tap grpc column: $(row_of VoteDoughnut)"; fi
keys Space
wait_for 'PAUSED' 20 || bad "tap: space did not pause"
"$MESH" replay -q "$SHARED/corpus/zeek/x-gzip.pcap" --collector "$ADDR"
if wait_for 'held while paused [1-9]'; then ok "tap: paused, arrivals counted"; else bad "tap pause: $(screen | head -1)"; fi
keys Space
wait_for 'held while paused' 20 && ! screen | head -1 | grep -q PAUSED || bad "tap: space did not resume"
keys q
if wait_for '^TAP-EXIT=0$' && alt_off; then ok "tap: q exits 0"; else bad "tap exit: $(screen | tail -3)"; fi

# --- stat --watch -----------------------------------------------------------------------------------
run "clear; NO_COLOR=1 $MESH stat deploy -n emojivoto --watch --since 0 --collector $ADDR; echo STAT-EXIT=\$?"
if wait_for 'deploy/voting' && row_of 'deploy/voting' | grep -qE '^! +emojivoto +deploy/voting ' &&
   row_of 'deploy/emoji' | grep -qE '^  +emojivoto +deploy/emoji '; then
    ok "stat --watch: failing rows marked under NO_COLOR"; else bad "stat marks: $(screen | sed -n 2,5p)"; fi
before=$(row_of 'deploy/voting' | grep -oE '[0-9.]+rps')
# the same capture again: the same seconds hold twice the requests
"$MESH" replay -q "$C/mixed.pcap" --labels "$LABELS" --collector "$ADDR"
for _ in $(seq 50); do
    after=$(row_of 'deploy/voting' | grep -oE '[0-9.]+rps')
    [ "$after" != "$before" ] && break
    sleep 0.1
done
if [ -n "$before" ] && [ "$after" != "$before" ]; then ok "stat --watch updates ($before → $after)"; else bad "stat --watch stuck at $before"; fi
keys C-c
if wait_for '^STAT-EXIT=0$' && alt_off; then ok "stat --watch: Ctrl-C exits 0, terminal restored"; else bad "stat exit: $(screen | tail -3)"; fi

# --- tap of a capture with headers: the HEADERS column -----------------------------------------------
run "clear; $MESH tap --pcap $C/http1.pcap --tap-header user-agent,server --path /api/list; echo HDR-EXIT=\$?"
if wait_for '> user-agent=curl/7' && row_of '/api/list' | grep -qE ' > user-agent=curl/7\..*…$' &&
   "${TM[@]}" resize-window -t ui -x 220 && wait_for ' < server=nginx/1\.22\.1 *$'; then
    ok "tap --pcap --tap-header: the HEADERS column, cut with … at 160 columns, whole at 220"
else bad "tap headers: $(screen | sed -n 2,3p)"; fi
keys q
wait_for '^HDR-EXIT=0$' || bad "tap headers: q did not exit"
"${TM[@]}" resize-window -t ui -x 160 -y 40

# --- plain when not a terminal, even inside one ------------------------------------------------------
run "clear; $MESH top --since 0 --collector $ADDR | head -2; echo PIPE-EXIT=\$?"
if wait_for '^PIPE-EXIT=0$' && screen | grep -qE '^Source +Destination' && alt_off; then
    ok "top | head: plain text"; else bad "top piped: $(screen | head -3)"; fi
finish
