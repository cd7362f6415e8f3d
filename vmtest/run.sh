#!/bin/bash
# run.sh - run a command, or Go tests, as root on several kernels in turn.
#
#   vmtest/run.sh [-k "5.10 6.1 6.12 7.3"] [-t SECS] [-v] -- CMD [ARG]...
#   vmtest/run.sh [-k ...] [-t SECS] [-v] --go-test "PKGS" [-- GO_TEST_FLAGS]
#
# For each kernel (a series, a linux-image-* package or a kernel directory;
# see fetch-kernels.sh) it fetches the kernel into the cache (once), boots
# it in a one-vCPU VM (vmrun.sh) and runs the job there as root, in the
# current directory, on a throw-away overlay of the host's /. Output
# streams in one section a kernel; at the end, one line a kernel and a total:
#
#   kernel 6.1.0-56-amd64: PASS (41 s)
#   kernel 6.12.117+deb12-amd64: FAIL (exit 1, 37 s)
#   kernels: 1 passed, 1 failed
#
# Exit status 0 only if every kernel passed. A kernel that could not be
# fetched, a VM that did not come up (125) or ran out of time (124) is a
# failure like any other, never a skip. Usage or setup errors exit 2.
#
# --go-test PKGS (go list patterns, e.g. "./..."; may be repeated) builds each
# package's test binary on the host with `go test -c` (the guest needs no Go
# toolchain or module cache; GOFLAGS and the other go env apply as usual),
# then in each VM runs every binary in its package directory with
# -test.v -test.count=1 and GO_TEST_FLAGS (go test's short forms such as
# -run X or -short are accepted). CI, and MMTRACE_BIN (made absolute) when
# set, are passed into the VM like every vmrun.sh pass-through variable.
#
# Options:
#   -k KERNELS  kernels to run on, space-separated (repeatable);
#               default "5.10 6.1 6.12 7.3"
#   -t SECS     time limit for each VM, boot included (default 600)
#   -v          print each VM's kernel console after its run
# Environment: VMTEST_KERNELS (the kernel cache, default
# /var/cache/mmtrace-vmtest), and those of fetch-kernels.sh and vmrun.sh.
set -uo pipefail
HERE=$(dirname "$(realpath "$0")")
KERNELS=()
TIMEOUT=${VMTEST_TIMEOUT:-600}
GO_PKGS=()
VERBOSE=()
usage() {
  cat >&2 <<'EOF'
usage: vmtest/run.sh [-k "5.10 6.1 6.12 7.3"] [-t SECS] [-v] -- CMD [ARG]...
       vmtest/run.sh [-k ...] [-t SECS] [-v] --go-test "PKGS" [-- GO_TEST_FLAGS]
(more in vmtest/README.md)
EOF
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    -k) [ $# -ge 2 ] || usage; read -ra ks <<<"$2"; KERNELS+=("${ks[@]}"); shift 2 ;;
    -t) [ $# -ge 2 ] || usage; TIMEOUT=$2; shift 2 ;;
    -v) VERBOSE=(-v); shift ;;
    --go-test) [ $# -ge 2 ] || usage; read -ra ps <<<"$2"; GO_PKGS+=("${ps[@]}"); shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "vmtest: unknown option '$1' (the command goes after --)" >&2; usage ;;
  esac
done
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=(5.10 6.1 6.12 7.3)
if [ ${#GO_PKGS[@]} -eq 0 ] && [ $# -eq 0 ]; then
  echo "vmtest: nothing to run: give -- CMD or --go-test PKGS" >&2
  usage
fi
[[ $TIMEOUT =~ ^[0-9]+$ ]] || { echo "vmtest: -t wants whole seconds, not '$TIMEOUT'" >&2; exit 2; }
say() { echo "vmtest: $*" >&2; }

# --- tools: checked, never installed here -------------------------------
missing=() packages=()
need() { # command package
  command -v "$1" > /dev/null && return 0
  missing+=("$1"); [[ " ${packages[*]} " == *" $2 "* ]] || packages+=("$2")
}
need qemu-system-x86_64 qemu-system-x86
need busybox busybox-static
need xz xz-utils
need zstd zstd
need gzip gzip
need flock util-linux
need apt-get apt
need dpkg-deb dpkg
if command -v busybox > /dev/null && head -c 4096 "$(command -v busybox)" | grep -aq ld-linux; then
  missing+=("a static busybox"); packages+=(busybox-static)
fi
[ ${#GO_PKGS[@]} -eq 0 ] || command -v go > /dev/null || { say "--go-test needs go on PATH"; exit 2; }
if [ ${#missing[@]} -gt 0 ]; then
  say "missing: ${missing[*]}"
  say "install with: apt-get install -y --no-install-recommends ${packages[*]}"
  exit 2
fi

WORK=$(mktemp -d /tmp/vmtest.XXXXXX)   # under /tmp: the guests see it via the share
trap 'rm -rf "$WORK"' EXIT

# --- Go tests: build on the host, run in the guest ------------------------
if [ ${#GO_PKGS[@]} -gt 0 ]; then
  if [ -n "${MMTRACE_BIN:-}" ]; then
    [ -x "$MMTRACE_BIN" ] || { say "MMTRACE_BIN=$MMTRACE_BIN is not an executable file; build it first"; exit 2; }
    MMTRACE_BIN=$(realpath -s "$MMTRACE_BIN"); export MMTRACE_BIN
  fi
  # go test's short test flags (-run X) -> the binary's own (-test.run X)
  TEST_FLAGS=()
  for a in "$@"; do
    case $a in
      -json|--json) say "-json is go test's, not a test binary's; not supported here"; exit 2 ;;
      -*) name=${a#-}; name=${name#-}; name=${name%%=*}
          case $name in
            run|skip|short|failfast|timeout|count|v|parallel|cpu|shuffle|list|bench|benchtime|benchmem|fullpath)
              a=-test.${a#"${a%%[!-]*}"} ;;
          esac ;;
    esac
    TEST_FLAGS+=("$a")
  done
  if ! go list -f '{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{len .TestGoFiles}}{{"\t"}}{{len .XTestGoFiles}}' \
      "${GO_PKGS[@]}" > "$WORK/packages"; then
    say "go list ${GO_PKGS[*]} failed"; exit 2
  fi
  : > "$WORK/manifest"
  mkdir -p "$WORK/bin"
  n=0
  while IFS=$'\t' read -r pkg dir tests xtests; do
    [ "$((tests + xtests))" -gt 0 ] || continue
    n=$((n + 1))
    bin=$WORK/bin/$n.test
    say "building the test binary of $pkg"
    go test -c -o "$bin" "$pkg" || { say "go test -c $pkg failed"; exit 1; }
    # a package whose test files are all excluded by build tags yields none
    [ -f "$bin" ] && printf '%s\t%s\t%s\n' "$pkg" "$dir" "$bin" >> "$WORK/manifest"
  done < "$WORK/packages"
  if [ ! -s "$WORK/manifest" ]; then
    say "no test files in ${GO_PKGS[*]}"; exit 2
  fi
  # A Go panic with all goroutines' stacks beats a silent VM kill: let each
  # binary time out a little before the VM does (a later -timeout wins).
  t=$((TIMEOUT > 90 ? TIMEOUT - 30 : TIMEOUT * 2 / 3))
  set -- bash "$HERE/guest-go-test.sh" "$WORK/manifest" "-test.timeout=${t}s" ${TEST_FLAGS[@]+"${TEST_FLAGS[@]}"}
fi

# --- kernels ----------------------------------------------------------------
KDIRS=()
for k in "${KERNELS[@]}"; do
  d=$("$HERE/fetch-kernels.sh" "$k") || d=""
  KDIRS+=("$d")
done

RESULTS=()
passed=0 failed=0
for i in "${!KERNELS[@]}"; do
  k=${KERNELS[$i]} d=${KDIRS[$i]}
  if [ -z "$d" ]; then
    RESULTS+=("kernel $k: FAIL (could not be fetched)"); failed=$((failed + 1))
    continue
  fi
  name=$(basename "$d")
  echo "===== kernel $name ($k) ====="
  start=$(date +%s)
  "$HERE/vmrun.sh" -k "$d" -t "$TIMEOUT" ${VERBOSE[@]+"${VERBOSE[@]}"} -- "$@"
  rc=$?
  secs=$(($(date +%s) - start))
  case $rc in
    0) line="PASS ($secs s)" ;;
    124) line="FAIL (exit 124: timed out, $secs s)" ;;
    125) line="FAIL (exit 125: VM failure, $secs s)" ;;
    *) line="FAIL (exit $rc, $secs s)" ;;
  esac
  echo "===== kernel $name: $line ====="
  RESULTS+=("kernel $name: $line")
  if [ $rc = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo
printf '%s\n' "${RESULTS[@]}"
echo "kernels: $passed passed, $failed failed"
[ "$failed" = 0 ]
