#!/usr/bin/env bash
# Install what building the BPF objects and running the tests need (or,
# with "vm", what the kernel-VM tests need), on a Debian machine, when it
# is missing. Safe to run again: it only calls
# apt-get when something is absent.
set -euo pipefail

need=()
command -v clang >/dev/null || need+=(clang)
command -v llvm-strip >/dev/null || need+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -f /usr/include/x86_64-linux-gnu/asm/types.h ] || need+=(linux-libc-dev)
command -v gcc >/dev/null || need+=(gcc)
# 32-bit test fixtures (gcc -m32)
[ -d /usr/lib/gcc/x86_64-linux-gnu/12/32 ] || [ -f /usr/include/x86_64-linux-gnu/gnu/stubs-32.h ] || need+=(gcc-multilib)
[ -f /usr/include/x86_64-linux-gnu/gnu/stubs-32.h ] || [ -f /usr/include/i386-linux-gnu/gnu/stubs-32.h ] || need+=(gcc-multilib)
command -v strace >/dev/null || need+=(strace)
command -v setarch >/dev/null || need+=(util-linux)
command -v chromium >/dev/null || need+=(chromium)
if [ "${1:-}" = vm ]; then
	# Only for `make vmtest`: booting other kernels under qemu.
	need=()
	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	command -v busybox >/dev/null || [ -x /bin/busybox ] || need+=(busybox-static)
	command -v xz >/dev/null || need+=(xz-utils)
	command -v zstd >/dev/null || need+=(zstd)
fi

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
	echo "missing: ${need[*]}; run as root (sudo make test) or: sudo apt-get install -y ${need[*]}" >&2
	exit 1
fi
echo "installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
