#!/usr/bin/env bash
# make bench: build the C workloads and measure mmtrace against a bare run,
# strace and bpftrace (bench/*.go does the measuring). Not part of make
# test: it takes minutes and its numbers depend on the machine's load.
#   ROUNDS=N   interleaved rounds (default 7)
#   CC=...     C compiler for the workloads (default cc)
#   ONLY=scale the scale section alone (issue 18; about a minute)
#   ONLY=overhead the ratio table alone (issue 14; bare, mmtrace, strace, bpftrace)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "make bench loads BPF programs: run it as root (sudo make bench)" >&2
	exit 1
fi
if ! command -v strace >/dev/null; then
	echo "installing strace for the comparison column" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null ||
		echo "could not install strace: its column is skipped" >&2
fi
if ! command -v bpftrace >/dev/null; then
	echo "installing bpftrace for the comparison column" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bpftrace >/dev/null ||
		echo "could not install bpftrace: its column is skipped" >&2
fi

bin=$(mktemp -d /tmp/mmtrace-bench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
# The syscalls:* comparison (and bpftrace) attach classic tracepoints,
# which need tracefs. Mount it if nothing has; it stays mounted (others
# may start using it meanwhile), as a distribution would have it.
if [ ! -e /sys/kernel/tracing/events ] && [ ! -e /sys/kernel/debug/tracing/events ]; then
	mount -t tracefs nodev /sys/kernel/tracing ||
		echo "could not mount tracefs: the syscalls:* comparison is skipped" >&2
fi
for src in bench/workloads/*.c; do
	"${CC:-cc}" -O2 -Wall -Wextra -o "$bin/$(basename "$src" .c)" "$src"
done

${GO:-go} run ./bench -rounds "${ROUNDS:-7}" -only "${ONLY:-}" -mmtrace ./mmtrace -workloads "$bin"
