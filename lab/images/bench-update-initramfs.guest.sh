# Runs inside the lab rescue (see bench-rescue-boot.sh): installs each OS image found in
# /root/images onto the first NVMe disk, the way installimage extracts it, then times
# `update-initramfs -u` in a chroot of it: the cost a post-install step pays under emulation.
set -euo pipefail
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%01d' $((($2 - $1) / 1000)) $(((($2 - $1) % 1000) / 100)); }
for image in /root/images/*.tar.gz; do
  name=$(basename "$image")
  wipefs -qa /dev/nvme0n1
  mkfs.ext4 -q -F /dev/nvme0n1
  mount /dev/nvme0n1 /mnt
  s=$(now_ms); tar -I pigz -xf "$image" -C /mnt; e=$(now_ms)
  echo "$name: extract $(secs "$s" "$e") s, $(find /mnt/lib/modules -name '*.ko*' | wc -l) modules"
  for fs in proc sys dev; do mount --bind /$fs /mnt/$fs; done
  s=$(now_ms); chroot /mnt update-initramfs -u -k all >/dev/null 2>&1; e=$(now_ms)
  echo "$name: update-initramfs -u $(secs "$s" "$e") s, initrd $(du -m /mnt/boot/initrd.img-* | cut -f1) MiB"
  for fs in dev sys proc; do umount /mnt/$fs; done
  umount /mnt
done
