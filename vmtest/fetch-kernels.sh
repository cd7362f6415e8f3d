#!/bin/bash
# fetch-kernels.sh - download Debian's generic kernels for the test VMs.
#
#   vmtest/fetch-kernels.sh [-d CACHE] KERNEL...
#
# KERNEL is one of
#   a series    5.10, 6.1, 6.12, 7.3: the newest generic amd64 image of that
#               series in the suites searched (see VMTEST_SUITES below)
#   a package   linux-image-6.1.0-37-amd64: exactly that one
#   a directory one this script made before (passed through unchanged)
#
# Each kernel is downloaded with `apt-get download` (never installed: no
# postinst, no initramfs-tools, the host is not touched), unpacked into
# CACHE/<release>/ and given the two files vmrun.sh boots:
#   initrd.cpio.gz  busybox + the few modules the VM needs (mkinitrd.sh)
#   vmlinux         the uncompressed kernel, booted through its PVH entry
# Prints the kernel directories on stdout, one a line, in argument order;
# progress goes to stderr. Exit status 1 if any kernel could not be had.
#
# CACHE defaults to $VMTEST_KERNELS, else /var/cache/mmtrace-vmtest: outside
# the git clone, so CI can keep it between runs. A private apt state in
# CACHE/.apt keeps the system's own apt lists and sources untouched.
#
# Environment:
#   VMTEST_SUITES   Debian suites searched; default
#                   "bullseye-security bookworm bookworm-security trixie trixie-backports"
#                   (5.10 is only in bullseye-security, 7.x only in trixie-backports)
#   VMTEST_ARCHIVE, VMTEST_SECURITY_ARCHIVE
#                   mirror URLs; default: the ones the host's apt already uses
#   VMTEST_KEEP_MODULES=1  keep the full module tree (about 100 MB a kernel)
#
# Needs: apt-get, dpkg-deb, flock, busybox-static, xz-utils, zstd, gzip.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
CACHE=${VMTEST_KERNELS:-/var/cache/mmtrace-vmtest}
if [ "${1:-}" = -d ]; then CACHE=$2; shift 2; fi
if [ $# -eq 0 ]; then
  echo "usage: fetch-kernels.sh [-d CACHE] SERIES|PACKAGE|DIR..." >&2
  exit 2
fi
say() { echo "fetch-kernels: $*" >&2; }

if ! mkdir -p "$CACHE/.apt/lists/partial" "$CACHE/.apt/cache/archives/partial" "$CACHE/debs" 2>/dev/null; then
  say "cannot create the kernel cache $CACHE; set VMTEST_KERNELS to a writable directory"
  exit 1
fi
CACHE=$(realpath "$CACHE")
APTDIR=$CACHE/.apt

# Two runs sharing a cache (make vmtest in two shells) must not unpack into
# the same directory at once.
exec 9> "$CACHE/.lock"
flock 9

# The mirrors the host's apt is configured with (the archive and its
# -security twin): they are reachable from here, a hard-coded one may not be.
mirror_for() { # $1: debian | debian-security
  grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '{print $2}' | grep -E "/$1/?\$" | head -1 || true
}
ARCHIVE=${VMTEST_ARCHIVE:-$(mirror_for debian)}
SECURITY=${VMTEST_SECURITY_ARCHIVE:-$(mirror_for debian-security)}
if [ -z "$ARCHIVE" ]; then
  say "no Debian archive found in /etc/apt sources; set VMTEST_ARCHIVE (e.g. http://deb.debian.org/debian)"
  exit 1
fi
[ -n "$SECURITY" ] || SECURITY=${ARCHIVE%/debian}/debian-security
SUITES=${VMTEST_SUITES:-"bullseye-security bookworm bookworm-security trixie trixie-backports"}
: > "$APTDIR/sources.list"
for s in $SUITES; do
  case $s in *-security) url=$SECURITY ;; *) url=$ARCHIVE ;; esac
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $url $s main" >> "$APTDIR/sources.list"
done
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APTDIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
  -o APT::Architectures=amd64
  # the _apt sandbox user may not be able to write into CACHE
  -o APT::Sandbox::User=root
)

# Refresh the package lists at most once an hour. When that fails (no
# network), carry on with the kernels already in the cache.
lists_fresh() { [ -n "$(find "$APTDIR/lists" -maxdepth 1 -name '*Packages*' -mmin -60 2>/dev/null | head -1)" ]; }
lists_ok=1
if ! lists_fresh; then
  say "updating the package lists of: $SUITES"
  if ! apt-get "${APT_OPTS[@]}" -q update >&2; then
    say "warning: apt-get update failed; using cached kernels where there are some"
    lists_ok=0
  fi
fi

# newest generic-flavour image of a series: not -dbg/-unsigned/-cloud (no 9p)
# /-rt, and not the bookworm kernels rebuilt for bullseye (0.deb11.N).
newest_of_series() {
  local re="^linux-image-${1//./\\.}[.-][0-9][^ ]*-amd64\$"
  apt-cache "${APT_OPTS[@]}" pkgnames linux-image- 2>/dev/null \
    | grep -E "$re" | grep -vE -- '-(dbg|unsigned|cloud|rt)|deb11\.' | sort -V | tail -1 || true
}

# Bump when mkinitrd.sh changes what goes into the initrd, so cached kernels
# are prepared again.
PREP_VERSION=1
prepared() { # $1: kernel dir
  [ -f "$1/initrd.cpio.gz" ] && [ "$(cat "$1/.vmtest-prepared" 2>/dev/null)" = "$PREP_VERSION" ]
}

# fetch PACKAGE -> prints the kernel dir
fetch_package() {
  local pkg=$1 deps tmp rel p
  local -a pkgs
  # Newer images (trixie-backports 6.16+) are split: linux-image-* only
  # depends on linux-binary-* (vmlinuz), linux-modules-* and linux-base-*
  # (config, modules.builtin).
  deps=$(apt-cache "${APT_OPTS[@]}" show "$pkg" 2>/dev/null | grep -m1 '^Depends:' || true)
  pkgs=("$pkg")
  if grep -q "linux-binary-" <<<"$deps"; then
    mapfile -t pkgs < <(grep -oE 'linux-(binary|modules|base)-[^ ,]+' <<<"$deps" | sort -u)
  fi
  say "downloading ${pkgs[*]}"
  ( cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" -q download "${pkgs[@]}" >&2 ) || return 1
  tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
  for p in "${pkgs[@]}"; do
    dpkg-deb -x "$CACHE/debs/${p}"_*.deb "$tmp" || { rm -rf "$tmp"; return 1; }
  done
  # Debian moves files between layouts; kernel-tree.sh (tested on each)
  # gives every one of them the classic layout the other scripts read.
  rel=$("$HERE/kernel-tree.sh" "$tmp") || { say "$pkg: unexpected package layout"; rm -rf "$tmp"; return 1; }
  rm -rf "${CACHE:?}/$rel"
  mv "$tmp" "$CACHE/$rel"
  rm -f "$CACHE"/debs/*.deb
  "$HERE/mkinitrd.sh" "$CACHE/$rel" >&2 || return 1
  if ! grep -qE '^CONFIG_DEBUG_INFO_BTF=y' "$CACHE/$rel/boot/config-$rel"; then
    say "warning: $rel is built without CONFIG_DEBUG_INFO_BTF (no /sys/kernel/btf/vmlinux)"
  fi
  # The VM needs only the kernel, its config and the initrd (which holds the
  # few modules used): drop the rest of the module tree.
  if [ "${VMTEST_KEEP_MODULES:-0}" != 1 ]; then
    rm -rf "$CACHE/$rel"/lib/modules/*/kernel "$CACHE/$rel"/usr/lib/modules/*/kernel "$CACHE/$rel"/usr/share/doc
  fi
  echo "$PREP_VERSION" > "$CACHE/$rel/.vmtest-prepared"
  mkdir -p "$CACHE/.pkg" && echo "$CACHE/$rel" > "$CACHE/.pkg/$pkg"
  echo "$CACHE/$rel"
}

# want -> prints the kernel dir, or fails with a reason on stderr
fetch_one() {
  local want=$1 pkg dir
  if [ -d "$want" ]; then
    realpath "$want"; return 0
  fi
  case $want in
    linux-image-*) pkg=$want ;;
    *[!0-9.]* | "") say "'$want' is not a series (like 6.1), a linux-image-* package or a directory"; return 1 ;;
    *) pkg=$(newest_of_series "$want") ;;
  esac
  if [ "$lists_ok" = 0 ]; then
    # offline: the last kernel fetched for it
    dir=$(cat "$CACHE/.series/$want" "$CACHE/.pkg/$want" 2>/dev/null | head -1 || true)
    if [ -n "$dir" ] && prepared "$dir"; then
      say "$want -> $(basename "$dir") (cached; package lists unavailable)"
      echo "$dir"; return 0
    fi
    say "'$want' is not in the cache and the package lists could not be updated"
    return 1
  fi
  if [ -z "$pkg" ]; then
    say "no kernel package for '$want' in the suites: $SUITES (set VMTEST_SUITES)"
    return 1
  fi
  dir=$(cat "$CACHE/.pkg/$pkg" 2>/dev/null || true)
  if [ -n "$dir" ] && prepared "$dir"; then
    say "$want -> $pkg (cached)"
  elif dir=$(fetch_package "$pkg"); then
    say "$want -> $pkg"
  else
    # The archive moved under us (a new package in a new layout, or a
    # package gone): the last kernel of the series that worked still
    # tests the series.
    dir=$(cat "$CACHE/.series/$want" 2>/dev/null || true)
    if [ -z "$dir" ] || [ "$want" = "$pkg" ] || ! prepared "$dir"; then
      say "could not fetch $pkg, and no earlier kernel of '$want' is cached"
      return 1
    fi
    say "warning: could not fetch $pkg; using the last kernel of '$want' that could be: $(basename "$dir")"
  fi
  case $want in linux-image-*) ;; *) mkdir -p "$CACHE/.series" && echo "$dir" > "$CACHE/.series/$want" ;; esac
  echo "$dir"
}

rc=0
for want in "$@"; do
  fetch_one "$want" || rc=1
done
exit $rc
