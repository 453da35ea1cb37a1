#!/bin/bash
# The whole test suite, as CI runs it: install dependencies, then build and
# run every ctest twice: a plain build (build/) and one with
# -fsanitize=address,undefined (build-asan/). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
jobs=$(nproc)
status=0
for cfg in plain asan; do
  dir=build; flags=()
  if [ "$cfg" = asan ]; then dir=build-asan; flags=(-DMESH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); fi
  echo "=== $cfg build ($dir)"
  cmake -S . -B "$dir" "${flags[@]}" > /dev/null
  cmake --build "$dir" -j "$jobs"
  echo "=== $cfg tests"
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 600) || status=1
done
exit $status
