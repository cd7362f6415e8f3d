#!/bin/sh
# Fuzz the recording reader for a bounded time (CI: the default 10 s).
# Usage: internal/record/fuzz.sh   (from the repository root)
#        FUZZTIME=5m internal/record/fuzz.sh
set -eu
cd "$(dirname "$0")/../.."
exec go test -run='^$' -fuzz='^FuzzReader$' -fuzztime="${FUZZTIME:-10s}" ./internal/record
