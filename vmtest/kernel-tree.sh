#!/bin/bash
# kernel-tree.sh TREE - give an unpacked Debian kernel package tree the
# layout the other scripts expect, and print its release.
#
# Debian has shipped kernels in three layouts, and moves between them:
#   classic      boot/vmlinuz-REL, boot/config-REL, lib/modules/REL/
#   usr-merged   modules under usr/lib/modules/REL/, with or without
#                boot/vmlinuz-REL at the top (trixie's 6.12 has both)
#   split        linux-binary-* (usr/lib/modules/REL/vmlinuz), linux-modules-*
#                and linux-base-* (config) unpacked into one tree
# Afterwards TREE has boot/vmlinuz-REL, boot/config-REL and
# lib/modules/REL/ whatever it started as. Each fix-up is made on its own
# when its piece is missing: they do not depend on one another.
set -euo pipefail
tree=${1:?usage: kernel-tree.sh TREE}
say() { echo "kernel-tree: $*" >&2; }

vmlinuz=$( (ls "$tree"/boot/vmlinuz-* "$tree"/usr/lib/modules/*/vmlinuz "$tree"/lib/modules/*/vmlinuz 2>/dev/null || true) | head -1)
case $vmlinuz in
  "") say "$tree holds no vmlinuz"; exit 1 ;;
  */boot/vmlinuz-*) rel=${vmlinuz##*/vmlinuz-} ;;
  *) rel=$(basename "$(dirname "$vmlinuz")") ;;
esac

# modules: lib/modules/REL, possibly only under usr/
if [ ! -d "$tree/lib/modules/$rel" ]; then
  if [ -d "$tree/usr/lib/modules/$rel" ]; then
    if [ -e "$tree/lib" ] || [ -L "$tree/lib" ]; then
      mkdir -p "$tree/lib/modules"
      ln -s "../../usr/lib/modules/$rel" "$tree/lib/modules/$rel"
    else
      ln -s usr/lib "$tree/lib"
    fi
  else
    say "$tree holds no modules for $rel"; exit 1
  fi
fi

mkdir -p "$tree/boot"
for f in vmlinuz config; do
  [ -e "$tree/boot/$f-$rel" ] && continue
  if [ -e "$tree/lib/modules/$rel/$f" ]; then
    ln -sf "../lib/modules/$rel/$f" "$tree/boot/$f-$rel"
  else
    say "$tree holds no $f for $rel"; exit 1
  fi
done
echo "$rel"
