// The InstallImage layouts the lab installs, written once: the install-image lab file, the prepared
// hosts (test/support/prepared-host.ts) and the DropbearInitramfs lab file all install these.

/** A LUKS KDF cheap enough for TCG (the real default takes seconds of argon2id per unlock there). */
export const LAB_CHEAP_PBKDF = { type: "argon2id", memoryKiB: 32768, iterations: 4 };

/** md RAID1 over both lab drives: /boot, and LVM (swap + root) on the second array. */
export const LAB_RAID1_LVM = {
  raid: { level: 1 },
  partitions: [
    { mount: "/boot", fs: "ext4", size: "1G" },
    { mount: "lvm", vg: "vg0", size: "all" },
  ],
  volumes: [
    { vg: "vg0", name: "swap", mount: "swap", fs: "swap", size: "512M" },
    { vg: "vg0", name: "root", mount: "/", fs: "ext4", size: "all" },
  ],
  image: "Debian-bookworm-latest-amd64-base",
  hostname: "lab-1.example.com",
  // Under TCG a resync running through the first boot stalls the emulated NVMe (test/lab/install-image.test.ts).
  resync: { waitBeforeReboot: true },
};

/** The same with the LVM array encrypted (LUKS2), the cheap KDF, and no reboot (create stays in rescue). */
export const LAB_CRYPT_RAID1_LVM = {
  ...LAB_RAID1_LVM,
  partitions: [
    { mount: "/boot", fs: "ext4", size: "1G" },
    { mount: "lvm", vg: "vg0", size: "all", crypt: true },
  ],
  cryptPbkdf: LAB_CHEAP_PBKDF,
  reboot: false,
};
