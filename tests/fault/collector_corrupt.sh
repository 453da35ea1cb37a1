#!/bin/bash
# A damaged store (issue 9, "Faults"): `mesh collector --db FILE` refuses to
# start, with one line on stderr naming the file and what is wrong, exits
# non-zero, and leaves the file exactly as it was (same SHA-256, no -wal or
# -shm created beside it). Damage tried: a garbled header, a garbled page in
# the middle (found by quick_check at open), a truncated file, a SQLite
# database that is not a mesh store, and a file that is not SQLite at all.
# Usage: collector_corrupt.sh BUILD_DIR SOURCE_DIR SHARED_DIR   (exit 77: skipped)
set -u
. "$(dirname "$0")/../tools/testlib.sh"
. "$(dirname "$0")/lib/faultlib.sh"
need_corpus
command -v sqlite3 > /dev/null || skip "sqlite3 missing (scripts/deps.sh)"
pcap=$SHARED/corpus/emojivoto/grpc.pcap
files=(); for _ in $(seq 20); do files+=("$pcap"); done
"$MESH" replay -q "${files[@]}" --db "$WORK/good.db" > /dev/null || { bad "cannot make a store"; finish; exit; }
pages=$(( $(stat -c %s "$WORK/good.db") / 8192 ))
echo "store: $(stat -c %s "$WORK/good.db") bytes, $pages pages of 8 KiB"
[ $pages -ge 8 ] || bad "store too small to damage a middle page"

make_case() { # NAME: a damaged copy in WORK/NAME.db
    local f=$WORK/$1.db
    cp "$WORK/good.db" "$f"
    case $1 in
        header) printf 'this is not the SQLite header, no' | dd of="$f" conv=notrunc status=none ;;
        page) head -c 8192 /dev/urandom | dd of="$f" bs=8192 seek=$((pages / 2)) conv=notrunc status=none ;;
        truncated) truncate -s $((pages / 2 * 8192)) "$f" ;;
        foreign) rm -f "$f"; sqlite3 "$f" 'create table accounts (id integer primary key, name text); insert into accounts values (1, "x")' ;;
        text) rm -f "$f"; head -c 100000 /dev/urandom | base64 > "$f" ;;
    esac
}
for name in header page truncated foreign text; do
    make_case $name
    f=$WORK/$name.db
    sum0=$(sha256sum < "$f")
    timeout 20 "$MESH" collector --listen 127.0.0.1:0 --db "$f" > /dev/null 2> "$WORK/$name.err"
    rc=$?
    sum1=$(sha256sum < "$f")
    lines=$(wc -l < "$WORK/$name.err")
    msg=$(head -1 "$WORK/$name.err")
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$lines" = 1 ] && grep -q "$f" <<< "$msg" &&
        grep -qiE 'refusing|corrupt|not a' <<< "$msg"; then
        ok "$name: exit $rc, '$msg'"
    else
        bad "$name: exit $rc, $lines line(s): $(cat "$WORK/$name.err")"
    fi
    [ "$sum0" = "$sum1" ] && ok "$name: file unchanged (sha256)" || bad "$name: the file was modified"
    [ ! -e "$f-wal" ] && [ ! -e "$f-shm" ] && ok "$name: no -wal/-shm created" || bad "$name: $(ls "$f"-*)"
    figure collector_corrupt case=$name exit=$rc unchanged=$([ "$sum0" = "$sum1" ] && echo yes || echo no)
done
# and the good one still opens
"$MESH" collector --listen 127.0.0.1:0 --db "$WORK/good.db" 2> "$WORK/good.err" &
gpid=$!
for _ in $(seq 100); do grep -q listening "$WORK/good.err" && break; sleep 0.05; done
grep -q listening "$WORK/good.err" && ok "the undamaged store opens" || bad "good store: $(cat "$WORK/good.err")"
kill -TERM $gpid; wait $gpid
finish
