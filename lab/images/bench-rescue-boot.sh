#!/bin/bash
# Measures a lab rescue boot: QEMU start -> SSH login works (key auth, host key pinned from
# fw_cfg, never StrictHostKeyChecking=no). Follows the lab contract's QEMU command line.
#
#   bench-rescue-boot.sh <vmlinuz> <initrd.img> [ssh-port] [images-dir] [guest-script]
#
# Prints "boot-to-ssh <seconds>" and the console's own timestamps. With a guest script, then
# runs it in the rescue over SSH (its output follows). Leaves nothing running.
set -euo pipefail
KERNEL=$1 INITRD=$2 PORT=${3:-24922} IMAGES=${4:-} GUEST_SCRIPT=${5:-}
T=$(mktemp -d)
qemu_pid=""
trap 'if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi; rm -rf "$T"' EXIT

ssh-keygen -q -t ed25519 -N '' -f "$T/client" -C bench
ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey" -C rescue
jq -n --arg priv "$(cat "$T/hostkey")" --arg pub "$(cat "$T/hostkey.pub")" --arg key "$(cat "$T/client.pub")" \
  '{hostname: "rescue", password: "bench-only", authorizedKeys: [$key],
    hostKeys: [{type: "ssh-ed25519", privateKey: $priv, publicKey: $pub}],
    mirrorUrl: "http://10.0.2.2:40081/debian"}' >"$T/rescue.json"
chmod 600 "$T/rescue.json"
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$T/hostkey.pub")" >"$T/known_hosts"
qemu-img create -q -f qcow2 "$T/nvme0.qcow2" 20G
mkdir -p "$T/images" "$T/install"
[ -n "$IMAGES" ] || IMAGES=$T/images

start=$(date +%s.%N)
qemu-system-x86_64 -machine q35 -m 2048 -smp 1 -nographic -no-reboot \
  -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 quiet" \
  -fw_cfg "name=opt/hetzner-fde/rescue.json,file=$T/rescue.json" \
  -drive "file=$T/nvme0.qcow2,if=none,id=nvme0,format=qcow2" -device nvme,drive=nvme0,serial=LAB1N0 \
  -virtfs "local,path=$IMAGES,mount_tag=hfde_images,security_model=none,readonly=on" \
  -virtfs "local,path=$T/install,mount_tag=hfde_install,security_model=none,readonly=on" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:22" -device virtio-net-pci,netdev=n0 \
  -serial "file:$T/console.log" -monitor none -display none &
qemu_pid=$!

for _ in $(seq 1 600); do
  if ssh -i "$T/client" -p "$PORT" -o UserKnownHostsFile="$T/known_hosts" -o BatchMode=yes \
    -o ConnectTimeout=2 root@127.0.0.1 'test "$(hostname)" = rescue' 2>/dev/null; then
    echo "boot-to-ssh $(echo "$(date +%s.%N) - $start" | bc | xargs printf '%.1f')"
    grep -a 'hfde-rescue:' "$T/console.log" | tr -d '\r' || true
    if [ -n "$GUEST_SCRIPT" ]; then
      ssh -i "$T/client" -p "$PORT" -o UserKnownHostsFile="$T/known_hosts" -o BatchMode=yes \
        root@127.0.0.1 bash -s <"$GUEST_SCRIPT"
    fi
    exit 0
  fi
  kill -0 "$qemu_pid" 2>/dev/null || { echo "qemu exited; console:"; tail -n 30 "$T/console.log"; exit 1; }
  sleep 0.5
done
echo "no SSH after 300 s; console:"; tail -n 30 "$T/console.log"; exit 1
