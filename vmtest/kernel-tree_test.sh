#!/bin/bash
# kernel-tree_test.sh - kernel-tree.sh on synthetic package trees in each
# layout Debian has used, so an archive that moves cannot break `make
# vmtest` unnoticed. Run by `make test`; needs nothing but bash.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
rel=6.99.1+deb99-amd64

# Each layout is a list of files to create under the tree.
declare -A layouts=(
  [classic]="boot/vmlinuz-$rel boot/config-$rel lib/modules/$rel/modules.builtin lib/modules/$rel/kernel/fs/9p/9p.ko"
  [usr-merged-with-boot]="boot/vmlinuz-$rel boot/config-$rel usr/lib/modules/$rel/modules.builtin usr/lib/modules/$rel/kernel/fs/9p/9p.ko"
  [usr-merged]="usr/lib/modules/$rel/vmlinuz usr/lib/modules/$rel/config usr/lib/modules/$rel/modules.builtin usr/lib/modules/$rel/kernel/fs/9p/9p.ko"
  [split-with-lib]="usr/lib/modules/$rel/vmlinuz usr/lib/modules/$rel/config usr/lib/modules/$rel/modules.builtin usr/lib/modules/$rel/kernel/fs/9p/9p.ko lib/firmware/x"
)
for name in "${!layouts[@]}"; do
  tree=$work/$name
  for f in ${layouts[$name]}; do
    mkdir -p "$tree/$(dirname "$f")" && echo "$f" > "$tree/$f"
  done
  got=$("$HERE/kernel-tree.sh" "$tree" 2>"$work/err") || { echo "FAIL $name: $(cat "$work/err")"; fail=1; continue; }
  [ "$got" = "$rel" ] || { echo "FAIL $name: release '$got', want $rel"; fail=1; }
  # What mkinitrd.sh and vmrun.sh read, through whatever links were made.
  for want in "boot/vmlinuz-$rel" "boot/config-$rel" "lib/modules/$rel/modules.builtin" "lib/modules/$rel/kernel/fs/9p/9p.ko"; do
    [ -f "$tree/$want" ] || { echo "FAIL $name: no $want"; fail=1; }
  done
  # Running it twice changes nothing.
  "$HERE/kernel-tree.sh" "$tree" >/dev/null 2>&1 || { echo "FAIL $name: second run failed"; fail=1; }
done

# A tree with no kernel is refused, with a reason.
mkdir -p "$work/empty/usr/share/doc"
if "$HERE/kernel-tree.sh" "$work/empty" >/dev/null 2>"$work/err"; then
  echo "FAIL empty: accepted"; fail=1
elif ! grep -q "no vmlinuz" "$work/err"; then
  echo "FAIL empty: reason: $(cat "$work/err")"; fail=1
fi
[ $fail = 0 ] && echo "kernel-tree: ${#layouts[@]} layouts and an empty tree: ok"
exit $fail
