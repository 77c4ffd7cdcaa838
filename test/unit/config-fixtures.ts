// A valid two-host stack config (as pulumi.Config hands it over: no namespace, secrets decrypted),
// built fresh for every case so table rows can mutate it freely.

export const ALICE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8xUMf+UkJuw/Dr0tfFBTocY5iiTSkGMm3/Etvz4l94 ops-alice";
export const PASSPHRASE_WEB = "Zugspitze-Morgenrot-1962!";
export const PASSPHRASE_CA = "quiet-Lantern-58-orchard-river";
export const NVME_512G = 512110190592;
export const SSD_480G = 480103981056;

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Raw = Record<string, any>;

export function validConfig(): Raw {
  return {
    robotUrl: "https://robot-ws.your-server.de",
    robotUser: "#ws+Xq7RkP2m",
    robotPassword: "robot-Password-Of-Test-7",
    luksPassphrases: { web1: PASSPHRASE_WEB, ca1: PASSPHRASE_CA },
    hosts: [
      {
        name: "web1",
        target: { robot: { serverNumber: 2345678 } },
        image: "Ubuntu-2404-noble-amd64-base",
        drives: [
          { path: "/dev/nvme0n1", serial: "S69ENX0T412345", sizeBytes: NVME_512G },
          { path: "/dev/nvme1n1", serial: "S69ENX0T412346", sizeBytes: NVME_512G },
        ],
        raid: { level: 1 },
        partitions: [
          { mount: "/boot", fs: "ext4", size: "1G" },
          { mount: "lvm", vg: "vg0", size: "all", crypt: true },
        ],
        volumes: [
          { vg: "vg0", name: "swap", mount: "swap", fs: "swap", size: "16G" },
          { vg: "vg0", name: "root", mount: "/", fs: "ext4", size: "all" },
        ],
        luks: { cipher: "aes-xts-plain64", keySize: 512, pbkdf: { type: "argon2id", memoryKiB: 1048576, iterations: 4, parallelism: 4 } },
        dropbear: { port: 2222, authorizedKeys: [ALICE], network: { mode: "dhcp" } },
        sshd: { port: 22 },
        allowWipe: false,
        protect: true,
      },
      {
        name: "ca1",
        target: { ssh: { address: "198.51.100.23", port: 22, user: "root", hostKeyFingerprints: ["SHA256:B1mzx0YHukHWZ5xWPK4qKagCMztQzMaUEL+HBmHTstg"] } },
        image: "Debian-bookworm-latest-amd64-base",
        drives: [{ path: "/dev/sda", serial: "S455NY0M812345", sizeBytes: SSD_480G }],
        partitions: [
          { mount: "/boot", fs: "ext4", size: "1G" },
          { mount: "lvm", vg: "vg0", size: "all", crypt: true },
        ],
        volumes: [
          { vg: "vg0", name: "swap", mount: "swap", fs: "swap", size: "8G" },
          { vg: "vg0", name: "root", mount: "/", fs: "ext4", size: "all" },
        ],
        dropbear: {
          port: 2222,
          authorizedKeys: [ALICE],
          network: {
            mode: "static",
            interface: "eno1",
            ipv4: { address: "198.51.100.23/27", gateway: "198.51.100.1" },
            ipv6: { address: "2001:db8:4:1::2/64", gateway: "fe80::1" },
          },
        },
        mirror: { drive: { path: "/dev/sdb", wwn: "0x5002538e40a1b2c3", sizeBytes: SSD_480G }, schedule: "*/15 * * * *", logRotations: 52, mountPoint: "/mirror" },
      },
    ],
  };
}
