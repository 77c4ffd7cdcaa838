import { utils as ssh2Utils } from "ssh2";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
// A valid two-host stack config (as pulumi.Config hands it over: no namespace, secrets decrypted),
// built fresh for every case so table rows can mutate it freely.

export const ALICE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8xUMf+UkJuw/Dr0tfFBTocY5iiTSkGMm3/Etvz4l94 ops-alice";
export const PASSPHRASE_WEB = "Zugspitze-Morgenrot-1962!";
export const PASSPHRASE_CA = "quiet-Lantern-58-orchard-river";
export const NVME_512G = 512110190592;
export const SSD_480G = 480103981056;

/** A fresh operator key per run: no private key is committed, even a test one. */
export const OPERATOR_KEY = generateEd25519KeyPair("config-test");

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Raw = Record<string, any>;

export function validConfig(): Raw {
  return {
    robotUrl: "https://robot-ws.your-server.de",
    robotUser: "#ws+Xq7RkP2m",
    robotPassword: "robot-Password-Of-Test-7",
    sshPrivateKey: OPERATOR_KEY.private,
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
        luks: { cipher: "aes-xts-plain64", keySize: 256, pbkdf: { type: "argon2id", memoryKiB: 1048576, iterations: 4, parallelism: 4 } },
        dropbear: { port: 2222, authorizedKeys: [ALICE], network: { mode: "dhcp", mac: "90:1b:0e:aa:bb:01" } },
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
            mac: "90:1b:0e:aa:bb:02",
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

export type Case = [title: string, mutate: (c: Raw) => void, path: string, message: RegExp];

const web = (c: Raw) => c.hosts[0];
const ca = (c: Raw) => c.hosts[1];
const ED25519_BLOB = ALICE.split(" ")[1];

/** [title, mutation of validConfig(), expected error path, expected message]. */
export const MALFORMED: Case[] = [
  // RAID and drives
  ["too few drives for RAID 5", (c) => (web(c).raid.level = 5), "hosts[0].raid.level", /RAID 5 needs at least 3 drives, found 2/],
  ["RAID 10 on two drives", (c) => (web(c).raid.level = 10), "hosts[0].raid.level", /RAID 10 needs at least 4 drives, found 2/],
  ["too few drives for RAID 6", (c) => { web(c).raid.level = 6; web(c).drives.push({ path: "/dev/nvme2n1" }); }, "hosts[0].raid.level", /RAID 6 needs at least 4 drives, found 3/],
  ["unknown RAID level", (c) => (web(c).raid.level = 3), "hosts[0].raid.level", /expected one of 0, 1, 5, 6, 10, found 3/],
  ["unknown reassemble mode", (c) => ((web(c).raid as Record<string, unknown>).reassemble = "always"), "hosts[0].raid.reassemble", /expected one of "never", "scan", "force", found "always"; remove it for the default/],
  ["two drives without raid", (c) => ca(c).drives.push({ path: "/dev/sdc" }), "hosts[1].drives", /expected 1 drive without raid, found 2.*raid: \{ level: 1 \}/],
  ["duplicate drive path", (c) => (web(c).drives[1].path = "/dev/nvme0n1"), "hosts[0].drives[1].path", /"\/dev\/nvme0n1" is already used by drives\[0\]/],
  ["duplicate drive serial", (c) => (web(c).drives[1].serial = "S69ENX0T412345"), "hosts[0].drives[1].serial", /already used by drives\[0\]/],
  ["mirror disk also in the RAID", (c) => (web(c).mirror = { drive: { path: "/dev/nvme1n1" } }), "hosts[0].mirror.drive.path", /mirror disk must be a separate disk/],
  ["mirror disk pinned to a system disk's WWN", (c) => { ca(c).drives[0].wwn = "0x5002538E40A1B2C3"; }, "hosts[1].mirror.drive.wwn", /already used by drives\[0\]/],
  ["relative device path", (c) => (web(c).drives[1].path = "nvme1n1"), "hosts[0].drives[1].path", /expected an absolute device path.*found "nvme1n1"; write "\/dev\/nvme1n1"/],
  ["partition instead of a disk", (c) => (web(c).drives[1].path = "/dev/nvme1n1p2"), "hosts[0].drives[1].path", /found the partition "\/dev\/nvme1n1p2".*\/dev\/nvme1n1/],
  ["path outside /dev", (c) => (web(c).drives[0].path = "/mnt/disk.img"), "hosts[0].drives[0].path", /under \/dev/],
  ["bad serial", (c) => (web(c).drives[0].serial = "S69E NX0T"), "hosts[0].drives[0].serial", /expected a disk serial.*found "S69E NX0T"/],
  ["bad WWN", (c) => (ca(c).mirror.drive.wwn = "5002538e40a1b2c3"), "hosts[1].mirror.drive.wwn", /expected a WWN.*0x \+ 16 or 32 hex digits.*found "5002538e40a1b2c3"/],
  ["mirror disk smaller than the system disk", (c) => (ca(c).mirror.drive.sizeBytes = 240057409536), "hosts[1].mirror.drive.sizeBytes", /at least as large as the system storage \(447\.1 GiB\), found 223\.6 GiB/],
  // Partitions and volumes
  ["LV bigger than its VG", (c) => (web(c).volumes[0].size = "600G"), "hosts[0].volumes[0].size", /need 600\.0 GiB, but vg0 offers 475\.\d GiB after the LUKS2 header/],
  ["partitions bigger than the array", (c) => (web(c).partitions[0].size = "500G"), "hosts[0].partitions[0].size", /need 500\.0 GiB, but the RAID 1 array of 2 disks holds 476\.9 GiB/],
  ["all not on the last partition", (c) => web(c).partitions.push({ mount: "/srv", fs: "ext4", size: "10G" }), "hosts[0].partitions[1].size", /"all" is allowed only on the last partition, found it on partition 2 of 3/],
  ["all not on the last LV", (c) => (web(c).volumes[0].size = "all"), "hosts[0].volumes[0].size", /"all" is allowed only on the last volume of vg0/],
  ["/boot on LVM", (c) => { web(c).partitions.shift(); web(c).volumes.unshift({ vg: "vg0", name: "boot", mount: "/boot", fs: "ext4", size: "1G" }); }, "hosts[0].volumes[0].mount", /\/boot cannot be on LVM \(found vg0\/boot\)/],
  ["/boot inside LUKS", (c) => (web(c).partitions[0].crypt = true), "hosts[0].partitions[0].crypt", /\/boot must stay outside LUKS/],
  ["/boot on xfs", (c) => (web(c).partitions[0].fs = "xfs"), "hosts[0].partitions[0].fs", /expected ext4.*found xfs/],
  ["/boot too small", (c) => (web(c).partitions[0].size = "128M"), "hosts[0].partitions[0].size", /at least 200M.*found 128M/],
  ["no /boot partition", (c) => web(c).partitions.shift(), "hosts[0].partitions", /expected a plain \/boot partition, found none/],
  ["root too small", (c) => { web(c).volumes[1].size = "1G"; web(c).volumes.push({ vg: "vg0", name: "data", mount: "/srv", fs: "ext4", size: "all" }); }, "hosts[0].volumes[1].size", /\/ of at least 1500M.*found 1G/],
  ["root not encrypted", (c) => (web(c).partitions[1].crypt = false), "hosts[0].volumes[1].vg", /\/ must be encrypted.*without crypt: true/],
  ["no root filesystem", (c) => web(c).volumes.pop(), "hosts[0].volumes", /expected a filesystem mounted at \/, found none/],
  ["duplicate LV names", (c) => (web(c).volumes[1].name = "swap"), "hosts[0].volumes[1].name", /"vg0\/swap" is already defined by volumes\[0\]/],
  ["duplicate mount points", (c) => web(c).volumes.splice(1, 0, { vg: "vg0", name: "root2", mount: "/", fs: "ext4", size: "20G" }), "hosts[0].volumes[2].mount", /mount point \/ is already used by volumes\[1\]/],
  ["swap LV with a mount point", (c) => (web(c).volumes[0].mount = "/swap"), "hosts[0].volumes[0].mount", /swap has no mount point: expected mount: swap, found "\/swap"/],
  ["mount swap on ext4", (c) => (web(c).volumes[0].fs = "ext4"), "hosts[0].volumes[0].fs", /mount: swap needs fs: swap, found fs: ext4/],
  ["LV in an undefined VG", (c) => (web(c).volumes[0].vg = "vg1"), "hosts[0].volumes[0].vg", /no partition creates volume group "vg1"; the layout defines vg0/],
  ["VG without LVs", (c) => web(c).partitions.splice(1, 0, { mount: "lvm", vg: "data", size: "10G" }), "hosts[0].partitions[1].vg", /volume group "data" has no logical volumes/],
  ["lvm partition with a filesystem", (c) => (web(c).partitions[1].fs = "ext4"), "hosts[0].partitions[1].fs", /holds a volume group, not a filesystem/],
  ["ESP too small", (c) => web(c).partitions.splice(1, 0, { mount: "/boot/efi", fs: "esp", size: "128M" }), "hosts[0].partitions[1].size", /EFI system partition of at least 256M.*found 128M/],
  ["ESP encrypted", (c) => web(c).partitions.splice(1, 0, { mount: "/boot/efi", fs: "esp", size: "512M", crypt: true }), "hosts[0].partitions[1].crypt", /cannot be encrypted/],
  ["size without a unit", (c) => (web(c).partitions[0].size = "1024"), "hosts[0].partitions[0].size", /with a unit.*found "1024"; add the unit, e.g. "1024M"/],
  ["size in the wrong spelling", (c) => (web(c).volumes[0].size = "16GiB"), "hosts[0].volumes[0].size", /write it as "16G"/],
  ["unknown filesystem", (c) => (web(c).volumes[1].fs = "zfs"), "hosts[0].volumes[1].fs", /expected one of "ext2", "ext3", "ext4", "xfs", "btrfs", "swap", found "zfs"/],
  // LUKS
  ["unknown cipher", (c) => (web(c).luks.cipher = "aes-cbc-essiv:sha256"), "hosts[0].luks.cipher", /found "aes-cbc-essiv:sha256"; CBC\/ECB .* refused/],
  ["a root key size installimage does not make", (c) => (web(c).luks.keySize = 512), "hosts[0].luks.keySize", /expected 256, found 512; installimage formats the root's container with aes-xts-plain64 and a 256-bit key .* cannot be told otherwise/],
  ["key size the cipher cannot take", (c) => (web(c).luks.keySize = 384), "hosts[0].luks.keySize", /expected 256 or 512 bits for aes-xts-plain64, found 384/],
  ["argon2 parallelism out of range", (c) => (web(c).luks.pbkdf.parallelism = 8), "hosts[0].luks.pbkdf.parallelism", /expected 1\.\.4 threads.*found 8/],
  ["argon2 memory above 4 GiB", (c) => (web(c).luks.pbkdf.memoryKiB = 8388608), "hosts[0].luks.pbkdf.memoryKiB", /32 KiB to 4 GiB.*found 8388608/],
  ["iterations and iter-time together", (c) => (web(c).luks.pbkdf.iterTimeMs = 2000), "hosts[0].luks.pbkdf.iterTimeMs", /either iterations .* or iterTimeMs .* found both/],
  ["unknown PBKDF", (c) => (web(c).luks.pbkdf.type = "scrypt"), "hosts[0].luks.pbkdf.type", /expected one of "argon2id", "argon2i", "pbkdf2", found "scrypt"/],
  // Passphrases
  ["weak passphrase", (c) => (c.luksPassphrases.web1 = "Password123456!!"), "luksPassphrases.web1", /is too weak: it is built from common passwords/],
  ["short passphrase", (c) => (c.luksPassphrases.web1 = "Kx9#mP2$"), "luksPassphrases.web1", /is too weak: it is 8 characters long \(at least 16 needed\)/],
  ["empty passphrase", (c) => (c.luksPassphrases.web1 = ""), "luksPassphrases.web1", /is empty: expected a passphrase of at least 16 characters.*luksPassphrases\.web1/],
  ["missing passphrase", (c) => delete c.luksPassphrases.ca1, "luksPassphrases.ca1", /is missing: host ca1 needs a LUKS passphrase; set it with `pulumi config set --secret --path 'luksPassphrases\.ca1'`/],
  ["passphrase for no host", (c) => (c.luksPassphrases.web2 = PASSPHRASE_WEB), "luksPassphrases.web2", /belongs to no host: the hosts are web1, ca1/],
  ["passphrase of the wrong type", (c) => (c.luksPassphrases.web1 = 12345), "luksPassphrases.web1", /expected the host's LUKS passphrase as a secret string, found a number \(value hidden\); set it with `pulumi config set --secret/],
  ["passphrase inside a host", (c) => (web(c).luks.passphrase = PASSPHRASE_WEB), "hosts[0].luks.passphrase", /passphrases are secrets and live in luksPassphrases/],
  // Dropbear and network
  ["dropbear port clashes with sshd", (c) => (web(c).dropbear.port = 22), "hosts[0].dropbear.port", /other than sshd's 22, found 22.*pinned key/],
  ["dropbear and sshd on one forwarded port", (c) => (web(c).endpoints = { address: "127.0.0.1", sshPort: 2201, dropbearPort: 2201 }), "hosts[0].endpoints.dropbearPort", /other than endpoints.sshPort 2201/],
  ["port out of range", (c) => (web(c).sshd.port = 70000), "hosts[0].sshd.port", /expected a TCP port 1\.\.65535, found 70000/],
  ["port of the wrong type", (c) => (web(c).sshd.port = "22"), "hosts[0].sshd.port", /expected a TCP port number 1\.\.65535, found "22"; give the installed system's SSH port/],
  ["bad authorized key", (c) => (web(c).dropbear.authorizedKeys = ["ssh-ed25519 AAAA not-base64!"]), "hosts[0].dropbear.authorizedKeys[0]", /OpenSSH public key/],
  ["authorized key of the wrong type", (c) => (web(c).dropbear.authorizedKeys = [`ssh-rsa ${ED25519_BLOB} x`]), "hosts[0].dropbear.authorizedKeys[0]", /the line says "ssh-rsa", the blob says "ssh-ed25519"/],
  ["no authorized keys", (c) => (web(c).dropbear.authorizedKeys = []), "hosts[0].dropbear.authorizedKeys", /expected at least 1 key, found an empty list; add the public key of everyone who unlocks the host/],
  ["bad CIDR prefix", (c) => (ca(c).dropbear.network.ipv4.address = "198.51.100.23/33"), "hosts[1].dropbear.network.ipv4.address", /IPv4 address with prefix.*found "198\.51\.100\.23\/33"; the prefix must be 0\.\.32/],
  ["CIDR without prefix", (c) => (ca(c).dropbear.network.ipv4.address = "198.51.100.23"), "hosts[1].dropbear.network.ipv4.address", /add the prefix length/],
  ["network address as host address", (c) => (ca(c).dropbear.network.ipv4.address = "198.51.100.0/27"), "hosts[1].dropbear.network.ipv4.address", /network address of the subnet/],
  ["gateway outside the subnet", (c) => (ca(c).dropbear.network.ipv4.gateway = "192.0.2.1"), "hosts[1].dropbear.network.ipv4.gateway", /inside 198\.51\.100\.23\/27, found "192\.0\.2\.1"/],
  ["bad IPv6 address", (c) => (ca(c).dropbear.network.ipv6.address = "2001:db8::zz/64"), "hosts[1].dropbear.network.ipv6.address", /"2001:db8::zz" is not an IPv6 address/],
  ["MAC missing", (c) => delete web(c).dropbear.network.mac, "hosts[0].dropbear.network.mac", /MAC address of the NIC.*found nothing/],
  ["MAC malformed", (c) => (web(c).dropbear.network.mac = "90-1b-0e-aa-bb-01"), "hosts[0].dropbear.network.mac", /expected a MAC address like .*found "90-1b-0e-aa-bb-01"/],
  ["MAC multicast", (c) => (web(c).dropbear.network.mac = "01:00:5e:00:00:01"), "hosts[0].dropbear.network.mac", /unicast/],
  ["static without IPv4", (c) => delete ca(c).dropbear.network.ipv4, "hosts[1].dropbear.network.ipv4", /mode: static needs ipv4/],
  ["dhcp with a fixed address", (c) => (web(c).dropbear.network.ipv4 = { address: "203.0.113.7/26", gateway: "203.0.113.1" }), "hosts[0].dropbear.network.ipv4", /mode: dhcp takes no fixed addresses/],
  ["interface name too long", (c) => (ca(c).dropbear.network.interface = "enp0s31f6-uplink0"), "hosts[1].dropbear.network.interface", /Linux interface name \(1-15/],
  // Mirror
  ["bad cron expression", (c) => (ca(c).mirror.schedule = "*/15 * * *"), "hosts[1].mirror.schedule", /5-field cron expression.*found 4 field\(s\)/],
  ["cron value out of range", (c) => (ca(c).mirror.schedule = "61 * * * *"), "hosts[1].mirror.schedule", /valid cron expression, found "61 \* \* \* \*".*0-59/],
  ["mirror mounted over the system", (c) => (ca(c).mirror.mountPoint = "/boot"), "hosts[1].mirror.mountPoint", /overlaps \/boot/],
  ["mirror log rotations zero", (c) => (ca(c).mirror.logRotations = 0), "hosts[1].mirror.logRotations", /expected the number of rotated logs kept, .* \(at least 1\), found 0; give how many logs to keep/],
  // Image, names, targets
  ["unknown image", (c) => (web(c).image = "CentOS-79-el7-amd64-base"), "hosts[0].image", /expected one of Debian-bullseye-latest-amd64-base, .*Ubuntu-2404-noble-amd64-base, found "CentOS-79-el7-amd64-base"/],
  ["image with archive suffix", (c) => (web(c).image = "Debian-bookworm-latest-amd64-base.tar.gz"), "hosts[0].image", /drop the archive suffix/],
  ["arm64 image", (c) => (web(c).image = "Debian-bookworm-latest-arm64-base"), "hosts[0].image", /only amd64 images/],
  ["two hosts with the same name", (c) => (ca(c).name = "web1"), "hosts[1].name", /host name "web1" is already used by hosts\[0\]/],
  ["host name not a DNS label", (c) => (web(c).name = "Web_1"), "hosts[0].name", /expected a DNS label.*found "Web_1"/],
  ["both robot and ssh", (c) => (web(c).target.ssh = { address: "203.0.113.7" }), "hosts[0].target", /exactly one of robot or ssh, found both/],
  ["neither robot nor ssh", (c) => (web(c).target = {}), "hosts[0].target", /found neither/],
  ["server number not positive", (c) => (web(c).target.robot.serverNumber = 0), "hosts[0].target.robot.serverNumber", /expected the server number shown in Robot \(a positive integer\), found 0; copy it from Robot/],
  ["same Robot server twice", (c) => (ca(c).target = { robot: { serverNumber: 2345678 } }), "hosts[1].target.robot.serverNumber", /server 2345678 is already the target of hosts\[0\]/],
  ["bad host key fingerprint", (c) => (ca(c).target.ssh.hostKeyFingerprints = ["MD5:aa:bb"]), "hosts[1].target.ssh.hostKeyFingerprints[0]", /"SHA256:" \+ 43 base64 characters/],
  ["two hosts dial the same forward", (c) => { web(c).endpoints = { address: "127.0.0.1", sshPort: 2201, dropbearPort: 2221 }; ca(c).endpoints = { address: "127.0.0.1", sshPort: 2201, dropbearPort: 2222 }; }, "hosts[1].endpoints.sshPort", /127\.0\.0\.1:2201 is already dialed for hosts\[0\]/],
  ["misspelt key", (c) => { web(c).raidLevel = 1; }, "hosts[0].raidLevel", /is not a known setting.*did you mean "raid"\?/],
  ["no hosts", (c) => (c.hosts = []), "hosts", /expected at least 1 host, found an empty list; add one entry per server under hosts/],
  // Robot access
  ["Robot user missing", (c) => delete c.robotUser, "robotUser", /required because hosts\[0\] uses a Robot target/],
  ["operator SSH key missing", (c) => delete c.sshPrivateKey, "sshPrivateKey", /is required: every step reaches its host over SSH.*--secret sshPrivateKey/],
  ["operator SSH key is the public half", (c) => (c.sshPrivateKey = OPERATOR_KEY.public), "sshPrivateKey", /holds a public key; the private half is needed/],
  ["operator SSH key is not a key", (c) => (c.sshPrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot really\n-----END OPENSSH PRIVATE KEY-----"), "sshPrivateKey", /is not an OpenSSH or PEM private key/],
  ["operator SSH key has a passphrase", (c) => (c.sshPrivateKey = ssh2Utils.generateKeyPairSync("ed25519", { passphrase: "pw-of-the-key", cipher: "aes256-ctr", rounds: 4 }).private), "sshPrivateKey", /is protected by a passphrase/],
  ["Robot password missing", (c) => delete c.robotPassword, "robotPassword", /required because hosts\[0\].*--secret robotPassword/],
  ["Robot URL over plain http", (c) => (c.robotUrl = "http://robot-ws.your-server.de"), "robotUrl", /expected an https:\/\/ URL.*loopback/],
];

