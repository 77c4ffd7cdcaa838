// The installimage config both the lab test and the validation unit test start from: Hetzner's
// usual two-NVMe layout, RAID1 with /boot on md0 and LVM (swap + root) on md1.

export function raid1LvmAutosetup(image: string, extra: readonly string[] = []): string {
  return [
    "DRIVE1 /dev/nvme0n1",
    "DRIVE2 /dev/nvme1n1",
    "SWRAID 1",
    "SWRAIDLEVEL 1",
    "BOOTLOADER grub",
    "HOSTNAME lab-1.example.com",
    "PART /boot ext4 1G",
    "PART lvm vg0 all",
    "LV vg0 swap swap swap 1G",
    "LV vg0 root / ext4 all",
    `IMAGE ${image}`,
    ...extra,
    "",
  ].join("\n");
}
