# tests/tools/testlib.sh — sourced by the integration scripts.
# Sets BUILD, SRC, SHARED (the script's arguments), MESH and a scratch WORK
# directory removed on exit; ok/bad count results and finish prints the
# "N passed, N failed" line ctest and CI read, and sets the exit status.
BUILD=$1 SRC=$2 SHARED=$3
MESH=$BUILD/mesh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
skip() { echo "SKIP: $1"; exit 77; }
need_corpus() { [ -d "$SHARED/corpus" ] || skip "$SHARED/corpus missing"; }
need_editcap() { command -v editcap >/dev/null || skip "editcap (Debian wireshark-common) missing"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
