#!/bin/bash
# guest-go-test.sh - run prebuilt Go test binaries; the in-VM half of
# `run.sh --go-test`.
#
#   guest-go-test.sh MANIFEST [TEST_BINARY_FLAG]...
#
# MANIFEST has one line a package: import path, package directory and test
# binary, tab-separated. Each binary runs in its package directory, as go
# test does (tests find their testdata/ there), with -test.v
# -test.count=1 -test.paniconexit0 and the flags given. Prints go test's
# "ok"/"FAIL" line after each package and "packages: N passed, M failed" at
# the end; exits 1 if any package failed.
set -uo pipefail
[ $# -ge 1 ] && [ -f "$1" ] || { echo "usage: guest-go-test.sh MANIFEST [FLAG]..." >&2; exit 2; }
MANIFEST=$1
shift
passed=0 failed=0
while IFS=$'\t' read -r pkg dir bin; do
  start=$(date +%s.%N)
  # the binary must not read the manifest as its stdin
  (cd "$dir" && exec "$bin" -test.v -test.count=1 -test.paniconexit0 "$@") < /dev/null
  rc=$?
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3fs", e - s }')
  if [ $rc = 0 ]; then
    printf 'ok  \t%s\t%s\n' "$pkg" "$secs"; passed=$((passed + 1))
  else
    printf 'FAIL\t%s\t%s (exit %d)\n' "$pkg" "$secs" "$rc"; failed=$((failed + 1))
  fi
done < "$MANIFEST"
echo "packages: $passed passed, $failed failed"
[ "$failed" = 0 ]
