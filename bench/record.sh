#!/bin/bash
# bench/record.sh HEADER INTRO: files the dated entry read on stdin under the
# section "# HEADER" of bench/RESULTS.md, newest first (before the section's
# first "## " entry, or at its end), so that each benchmark's entries stay
# under its own heading whatever order the benchmarks ran in. A missing
# section is created at the end of the file with INTRO as its first paragraph.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bench/record.sh HEADER INTRO < ENTRY" >&2; exit 2; }
RESULTS=$(cd "$(dirname "$0")" && pwd)/RESULTS.md
entry=$(mktemp)
trap 'rm -f "$entry" "$RESULTS.tmp"' EXIT
cat >"$entry"
touch "$RESULTS"
if ! grep -qxF "# $1" "$RESULTS"; then
    printf '\n# %s\n\n%s\n\n' "$1" "$2" >>"$RESULTS"
fi
awk -v header="# $1" -v entry="$entry" '
    function put() { while ((getline line < entry) > 0) print line; print ""; done = 1 }
    !done && inside && (/^## / || /^# /) { put() }
    $0 == header { inside = 1 }
    /^# / && $0 != header { inside = 0 }
    { print }
    END { if (!done) { print ""; put() } }
' "$RESULTS" >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
echo "bench/record.sh: filed under '# $1' in $RESULTS" >&2
