#!/usr/bin/env bash
# Removes test hosts and pins that a killed test could not remove itself.
# Only names that tests create: netns "kgt-*", links "kgt*", pins under
# /sys/fs/bpf/kagami-test-*, cgroups kagami-test-*. Prints what it removed (nothing, normally).
set -u
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^kgt-'); do
  echo "cleanup: removing leftover netns $ns"; ip netns del "$ns"
done
for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^kgt'); do
  echo "cleanup: removing leftover link $l"; ip link del "$l" 2>/dev/null
done
for p in /sys/fs/bpf/kagami-test-*; do
  [ -e "$p" ] || continue
  echo "cleanup: removing leftover pins $p"; rm -rf "$p"
done
# Test cgroups (v2 root, or the hybrid layout's unified mount). Children first.
for root in /sys/fs/cgroup /sys/fs/cgroup/unified; do
  for c in "$root"/kagami-test-*; do
    [ -d "$c" ] || continue
    echo "cleanup: removing leftover cgroup $c"
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
done
exit 0
