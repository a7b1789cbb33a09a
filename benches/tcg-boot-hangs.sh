#!/usr/bin/env bash
# How often a TCG boot hangs, and how long a boot takes to reach userspace, for one set of
# QEMU arguments: boots the kernel, initramfs and disk of a `dmw image build` image N times
# (-snapshot: the image is not changed), each until the console shows userspace
# (systemd's first line), a stall (no console output for STALL seconds: hung) or LIMIT.
#
#   benches/tcg-boot-hangs.sh IMAGE_DIR N [EXTRA QEMU ARGS...]
#   e.g. benches/tcg-boot-hangs.sh /var/cache/dmw-testbed/images/<id> 20 -machine pc,hpet=off
#
# Prints one line per boot and a summary: boots, hangs, median and max seconds to userspace.
# Env: SMP (default 2), STALL (30), LIMIT (180).
set -euo pipefail
dir=${1:?usage: $0 IMAGE_DIR N [QEMU ARGS...]}
n=${2:?usage: $0 IMAGE_DIR N [QEMU ARGS...]}
shift 2
smp=${SMP:-2} stall=${STALL:-30} limit=${LIMIT:-180}
for tool in bc qemu-system-x86_64; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool (apt-get install bc qemu-system-x86)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
hangs=0 times=()
for i in $(seq 1 "$n"); do
  log="$work/console.$i"
  : >"$log"
  start=$(date +%s.%N)
  qemu-system-x86_64 -nodefaults -no-user-config -accel tcg -m 1024 -smp "$smp" \
    -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" -append "root=/dev/vda console=ttyS0" \
    -drive "file=$dir/disk.qcow2,if=virtio,format=qcow2" -snapshot \
    -display none -serial "file:$log" "$@" &
  pid=$!
  last_size=0 last_change=$start verdict=limit
  while :; do
    sleep 0.5
    now=$(date +%s.%N)
    size=$(stat -c %s "$log")
    if [ "$size" != "$last_size" ]; then last_size=$size last_change=$now; fi
    if grep -q 'systemd\[1\]\|Welcome to' "$log"; then verdict=up; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then verdict=exited; break; fi
    if [ "$(echo "$now - $last_change >= $stall" | bc)" = 1 ]; then verdict=hung; break; fi
    if [ "$(echo "$now - $start >= $limit" | bc)" = 1 ]; then break; fi
  done
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  last=$(tr -d '\r' <"$log" | grep -a . | tail -n1 | cut -c1-100)
  printf 'boot %2d: %-6s %6.1f s  last: %s\n' "$i" "$verdict" "$secs" "$last"
  case $verdict in
    up) times+=("$secs") ;;
    hung) hangs=$((hangs + 1)) ;;
  esac
done
sorted=$(printf '%s\n' "${times[@]:-}" | grep . | sort -n || true)
count=$(printf '%s\n' "$sorted" | grep -c . || true)
median=$(printf '%s\n' "$sorted" | sed -n "$(((count + 1) / 2))p")
max=$(printf '%s\n' "$sorted" | tail -n1)
echo "args: -smp $smp $* | boots: $n, up: $count, hung: $hangs, median to userspace: ${median:-n/a} s, max: ${max:-n/a} s"
