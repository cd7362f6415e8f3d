#!/bin/bash
# vmrun.sh - run one command as root in a throw-away VM on another kernel.
#
#   vmtest/vmrun.sh -k KDIR [-t SECS] [-m MIB] [-e VAR=VAL]... [-v] -- CMD [ARG]...
#
# KDIR is a kernel directory made by fetch-kernels.sh. The VM (one vCPU) sees
# the host's / read-only over virtio-9p under a tmpfs overlay (writes vanish
# with the VM), with fresh /proc /sys /dev /run /sys/fs/bpf tracefs debugfs
# and cgroup2. CMD runs under bash as root in the host's current directory.
# Its stdout and stderr, together, stream to this stdout.
#
# Exit status: CMD's, or 124 if the VM ran out of time, 125 if the VM
# failed (no boot, no share): then the kernel console is printed to stderr.
# One status line goes to stderr: kernel, accelerator, boot and total time.
#
# The guest's environment: PATH (with /usr/local/go/bin), HOME=/root,
# TMPDIR=/tmp, LANG=C.UTF-8, TERM=dumb; the host's CI, GOTRACEBACK, GODEBUG,
# GOMAXPROCS, MMTRACE_BIN and the variables named in VMTEST_PASSENV when
# they are set; then each -e VAR=VAL.
#
# Also usable as  go test -exec 'vmtest/vmrun.sh -k KDIR --'  (one VM per
# test binary).
#
# Settings from the environment: VMTEST_TIMEOUT (600 s), VMTEST_MEM (1024
# MiB), VMTEST_ACCEL (auto|tcg|kvm), VMTEST_APPEND (more kernel arguments),
# VMTEST_BZIMAGE=1 (boot vmlinuz, not vmlinux), VMTEST_VERBOSE=1 (-v: print
# the kernel console after the run).
set -uo pipefail
HERE=$(dirname "$(realpath "$0")")
KDIR=${VMTEST_KDIR:-}
TIMEOUT=${VMTEST_TIMEOUT:-600}
MEM=${VMTEST_MEM:-1024}
ACCEL=${VMTEST_ACCEL:-auto}
VERBOSE=${VMTEST_VERBOSE:-0}
SETENV=()
usage() {
  echo "usage: vmrun.sh -k KDIR [-t SECS] [-m MIB] [-e VAR=VAL]... [-v] -- CMD [ARG]..." >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    -k) KDIR=${2:-}; shift 2 || usage ;;
    -t) TIMEOUT=${2:-}; shift 2 || usage ;;
    -m) MEM=${2:-}; shift 2 || usage ;;
    -e) SETENV+=("${2:-}"); shift 2 || usage ;;
    -v) VERBOSE=1; shift ;;
    --) shift; break ;;
    -*) echo "vmrun: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] && [ -n "$KDIR" ] || usage
say() { echo "vmrun: $*" >&2; }
for v in "${SETENV[@]+"${SETENV[@]}"}"; do
  [[ $v == [A-Za-z_]*=* ]] || { say "-e wants VAR=VALUE, not '$v'"; exit 2; }
done

KDIR=$(realpath "$KDIR")
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* 2>/dev/null | head -1)
if [ -z "$VMLINUZ" ] || [ ! -f "$KDIR/initrd.cpio.gz" ]; then
  say "$KDIR is not a prepared kernel (no boot/vmlinuz-* or initrd.cpio.gz); run vmtest/fetch-kernels.sh"
  exit 125
fi
REL=${VMLINUZ##*/vmlinuz-}
KERNEL=$VMLINUZ
if [ -f "$KDIR/vmlinux" ] && [ "${VMTEST_BZIMAGE:-0}" != 1 ]; then KERNEL=$KDIR/vmlinux; fi
command -v qemu-system-x86_64 > /dev/null || {
  say "qemu-system-x86_64 not found: apt-get install -y --no-install-recommends qemu-system-x86"
  exit 125
}

if [ "$ACCEL" = auto ]; then
  # KVM only with hardware virtualisation (vmx/svm). A PVM host (kvm_pvm,
  # e.g. nested in Firecracker) has a /dev/kvm that runs only PVM-aware
  # guest kernels; stock kernels hang there, so it gets TCG.
  if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; else ACCEL=tcg; fi
fi
# shellcheck disable=SC2054 # the comma belongs to qemu's option value
case "$ACCEL" in
  kvm) ACCEL_ARGS=(-accel kvm -cpu host) ;;
  tcg) ACCEL_ARGS=(-accel tcg,thread=multi -cpu max) ;;
  *) say "VMTEST_ACCEL must be auto, tcg or kvm, not '$ACCEL'"; exit 2 ;;
esac
# Under TCG the guest's TSC is the host's raw TSC, which jumps when the host
# VM is snapshotted and restored (such hosts boot with tsc=unstable): a
# guest on the TSC once saw 455,406 s pass in a 461 s run, and every test
# timer fired. The HPET follows qemu's virtual clock, which is the host's
# CLOCK_MONOTONIC. A time read costs ~1 us instead of ~0.14 us; the tests
# took no measurable longer.
CLOCK_ARGS=
[ "$ACCEL" = tcg ] && CLOCK_ARGS="clocksource=hpet tsc=unstable"

WORK=$(mktemp -d /tmp/vmrun.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# The job archive: the current /init and /job/run.sh. Appended to the
# kernel's initrd; the kernel unpacks both, later files winning.
mkdir -p "$WORK/job/job"
install -m 755 "$HERE/init" "$WORK/job/init"
{
  echo '#!/bin/bash'
  # TERM=dumb, as CI has: init's TERM=linux describes the kernel console,
  # not the pipe the job writes into.
  echo 'export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp LANG=C.UTF-8 TERM=dumb'
  for v in CI GOTRACEBACK GODEBUG GOMAXPROCS MMTRACE_BIN ${VMTEST_PASSENV:-}; do
    [ -n "${!v+x}" ] && printf 'export %q=%q\n' "$v" "${!v}"
  done
  for e in "${SETENV[@]+"${SETENV[@]}"}"; do printf 'export %q=%q\n' "${e%%=*}" "${e#*=}"; done
  printf 'cd %q || { echo "vmtest: no directory %q in the guest" >&2; exit 125; }\n' "$PWD" "$PWD"
  printf '%q ' "$@"; echo
} > "$WORK/job/job/run.sh"
( cd "$WORK/job" && find . -print0 | busybox cpio -0 -o -H newc -R 0:0 2>/dev/null ) | gzip -1 > "$WORK/job.cpio.gz"
cat "$KDIR/initrd.cpio.gz" "$WORK/job.cpio.gz" > "$WORK/initrd"

CONSOLE=$WORK/console.log
START=$(date +%s.%N)
# -nodefaults: no VGA, NIC or floppy to probe (each costs boot time).
# Kernel console on ttyS0 -> $CONSOLE; the job's output on a virtio console
# -> stdio (signal=off: a ^C in the output is data, not a quit).
# panic=-1 + -no-reboot: a guest panic ends qemu at once instead of hanging.
timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 \
  -nodefaults -no-user-config -display none -no-reboot -monitor none \
  -machine pc "${ACCEL_ARGS[@]}" -smp 1 -m "$MEM" \
  -kernel "$KERNEL" -initrd "$WORK/initrd" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init mitigations=off $CLOCK_ARGS ${VMTEST_APPEND:-}" \
  -serial "file:$CONSOLE" \
  -device virtio-serial-pci -chardev stdio,id=out,signal=off -device virtconsole,chardev=out \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  < /dev/null
QEMU_RC=$?
END=$(date +%s.%N)

marker() { grep -a -o "@@VMTEST-$1=[0-9.]*@@" "$CONSOLE" 2>/dev/null | tail -1 | tr -dc 0-9.; }
RC=$(marker EXIT)
BOOTED=$(marker BOOTED)
if grep -aq '@@VMTEST-NOHVC@@' "$CONSOLE" 2>/dev/null; then
  # the job wrote to the kernel console: show it, without the kernel's own lines
  sed -n '/@@VMTEST-NOHVC@@/,$p' "$CONSOLE" | grep -av '@@VMTEST-'
fi
if [ -z "$RC" ]; then
  if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    RC=124
    say "$REL: timed out after ${TIMEOUT}s (raise it with -t or VMTEST_TIMEOUT)"
  else
    RC=125
    say "$REL: the VM ended without an exit status (qemu exit $QEMU_RC)"
  fi
  say "last of the kernel console:"
  tail -c 6000 "$CONSOLE" >&2
elif [ "$VERBOSE" = 1 ]; then
  echo "--- kernel console ($REL) ---" >&2
  cat "$CONSOLE" >&2
fi
# A guest that saw more time pass than the host did had its clock jump:
# its timers (test timeouts among them) fired early, so say so.
UPTIME=$(marker UPTIME)
awk -v u="$UPTIME" -v s="$START" -v e="$END" 'BEGIN { exit !(u != "" && u > e - s + 60) }' &&
  say "$REL: the guest's clock ran ahead of the host's ($UPTIME s of guest uptime in $(awk -v s="$START" -v e="$END" 'BEGIN { printf "%.0f", e - s }') s): its timers fired early"
# BOOTED is the guest's uptime when the job started: its boot time.
say "$(awk -v rel="$REL" -v acc="$ACCEL" -v rc="$RC" -v b="$BOOTED" -v s="$START" -v e="$END" \
  'BEGIN { printf "%s (%s): exit %s, %s, %.1f s in all", rel, acc, rc,
           b == "" ? "the job never started" : "booted in " b " s", e - s }')"
exit "$RC"
