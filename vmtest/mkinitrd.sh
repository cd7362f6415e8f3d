#!/bin/bash
# mkinitrd.sh - prepare an unpacked Debian kernel for booting in the test VM.
#
#   vmtest/mkinitrd.sh KDIR
#
# KDIR holds an unpacked linux-image package (KDIR/boot/vmlinuz-REL,
# KDIR/lib/modules/REL/...), as made by fetch-kernels.sh. Writes:
#
#   KDIR/initrd.cpio.gz  busybox-static with its applet links, and the
#       modules needed to reach the host over virtio-9p, talk on a virtio
#       console and stack an overlay (Debian builds them as modules), plus
#       mods/order listing them in load order. It has no /init: vmrun.sh
#       appends one with each job, so changing init needs no rebuild.
#   KDIR/vmlinux  the uncompressed kernel ELF out of vmlinuz. qemu boots it
#       through its PVH entry point, which skips SeaBIOS's real-mode path and
#       the in-guest decompression (xz under TCG costs 3-5 s a boot). Left out
#       when the kernel has no PVH entry; vmrun.sh then boots vmlinuz.
#
# Needs: busybox-static, gzip, xz-utils, zstd.
set -euo pipefail
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: mkinitrd.sh KDIR  (a kernel directory made by fetch-kernels.sh)" >&2
  exit 2
fi
KDIR=$(realpath "$1")
say() { echo "mkinitrd: $*" >&2; }
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
[ -n "$VMLINUZ" ] || { say "no $KDIR/boot/vmlinuz-*"; exit 1; }
REL=${VMLINUZ##*/vmlinuz-}
MODDIR=$KDIR/lib/modules/$REL
if [ ! -d "$MODDIR/kernel" ]; then
  say "$MODDIR/kernel is gone (the cache drops it after the first build); fetch the kernel again"
  exit 1
fi
BUSYBOX=${BUSYBOX:-/bin/busybox}
# The initrd has no libc, so busybox must be the static build; a dynamic one
# names its ELF interpreter near the start of the file.
if [ ! -x "$BUSYBOX" ] || head -c 4096 "$BUSYBOX" | grep -aq 'ld-linux'; then
  say "need a static busybox at $BUSYBOX: apt-get install -y --no-install-recommends busybox-static"
  exit 1
fi

# virtio_pci: the bus; 9pnet_virtio + 9p: the host's / ; virtio_console:
# hvc0, the output channel; overlay: the writable layer over the read-only
# share. Their dependencies come from each module's "depends=" modinfo.
WANT="virtio_pci 9pnet_virtio 9p virtio_console overlay"

find_ko() { find "$MODDIR/kernel" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" \) | head -1; }
ko_cat() { case "$1" in *.xz) xz -dc "$1" ;; *.zst) zstd -dcq "$1" ;; *) cat "$1" ;; esac; }
ko_deps() { ko_cat "$1" | grep -a -o 'depends=[^[:cntrl:]]*' | head -1 | sed 's/^depends=//; s/,/ /g'; }
is_builtin() { grep -qE "/($1|${1//_/-})\.ko\$" "$MODDIR/modules.builtin" 2>/dev/null; }

ORDER=()      # "name:file", dependencies first
declare -A SEEN
add_module() {
  local m=${1//-/_} f d
  [ -n "${SEEN[$m]:-}" ] && return 0
  SEEN[$m]=1
  f=$(find_ko "$m")
  [ -n "$f" ] || f=$(find_ko "${m//_/-}")
  if [ -z "$f" ]; then
    is_builtin "$m" && return 0
    say "warning: module $m is neither in $MODDIR/kernel nor built in"
    return 0
  fi
  for d in $(ko_deps "$f"); do add_module "$d"; done
  ORDER+=("$m:$f")
}
for m in $WANT; do add_module "$m"; done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/{bin,dev,proc,sys,mods}
cp "$BUSYBOX" "$WORK/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$WORK/bin/$applet"
done
: > "$WORK/mods/order"
for entry in ${ORDER[@]+"${ORDER[@]}"}; do
  m=${entry%%:*}
  # busybox insmod cannot read compressed modules
  ko_cat "${entry#*:}" > "$WORK/mods/$m.ko"
  echo "$m" >> "$WORK/mods/order"
done
( cd "$WORK" && find . -print0 | "$BUSYBOX" cpio -0 -o -H newc -R 0:0 2>/dev/null ) | gzip -1 > "$KDIR/initrd.cpio.gz.tmp"
mv "$KDIR/initrd.cpio.gz.tmp" "$KDIR/initrd.cpio.gz"
say "$KDIR/initrd.cpio.gz: $(du -h "$KDIR/initrd.cpio.gz" | cut -f1), modules: $(tr '\n' ' ' < "$WORK/mods/order")"

# vmlinux out of vmlinuz, as the kernel's scripts/extract-vmlinux does: try
# each compressed-stream magic and keep the first result that is an ELF.
rm -f "$KDIR/vmlinux" "$KDIR/vmlinux.tmp"
VMLINUZ=$(realpath "$VMLINUZ")
extract() { # $1: magic (grep -P), $2: decompressor
  local off
  for off in $(LC_ALL=C grep -obUaP "$1" "$VMLINUZ" | cut -d: -f1); do
    tail -c +$((off + 1)) "$VMLINUZ" | $2 > "$KDIR/vmlinux.tmp" 2>/dev/null || true
    if [ "$(head -c 4 "$KDIR/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
      mv "$KDIR/vmlinux.tmp" "$KDIR/vmlinux"
      return 0
    fi
  done
  rm -f "$KDIR/vmlinux.tmp"
  return 1
}
extract '\xfd\x37\x7a\x58\x5a\x00' 'xz -dcq' || extract '\x28\xb5\x2f\xfd' 'zstd -dcq' \
  || extract '\x1f\x8b\x08' 'gzip -dcq' || true
# The PVH entry is an ELF note: name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18),
# an address of 4 bytes (8 on 5.10). Matched as bytes: no binutils needed.
PVH_NOTE='\x04\x00\x00\x00[\x04\x08]\x00\x00\x00\x12\x00\x00\x00Xen\x00'
if [ ! -f "$KDIR/vmlinux" ]; then
  say "could not decompress $VMLINUZ; vmrun.sh will boot it as is (slower)"
elif LC_ALL=C grep -qaP "$PVH_NOTE" "$KDIR/vmlinux"; then
  say "$KDIR/vmlinux: $(du -h "$KDIR/vmlinux" | cut -f1), PVH entry point: yes"
else
  say "$REL has no PVH entry point; vmrun.sh will boot vmlinuz (slower)"
  rm -f "$KDIR/vmlinux"
fi
