// The lab installimage on a real QEMU server. The whole file is opt-in (HFDE_LAB_INSTALLIMAGE=1): the
// lab installimage is test equipment, and the product path covers what CI needs of it.
// test/lab/install-image.test.ts installs through it (plain; crypt with HFDE_LAB_CRYPT=1), reboots and pins the key,
// and InstallImage's own boot check reads GRUB on both drives, mdadm.conf and fstab before any
// reboot; the e2e (test/lab/host-stack.test.ts) makes a crypt install through the stack, boots it, again with drive 0 pulled
// (from drive 1 alone), and unlocks it; test/unit/installimage-validate.test.ts runs every config rule.
//
// 1. On the installed crypt RAID1 host of the CRYPT_RAID1_IN_RESCUE checkpoint (RescueBoot and
//    InstallImage put it there through the harness; restored in seconds, built once when missing,
//    about 9 min): what the install left on the drives (GRUB's boot code and core.img on both
//    drives, fstab, mdadm.conf and crypttab naming the real filesystems and arrays, root login by
//    key only), and bad configs that must leave those installed drives untouched.
// 2. installimage run directly (not through InstallImage) on a blank server, 9–10 min: a RAID1 + LVM
//    install with a post-install hook, a reboot from disk with the host key pinned, apt from the
//    local mirror.
//   HFDE_LAB_INSTALLIMAGE=1 npx jest --selectProjects lab --testPathPattern 'dist/test/lab/installimage'
// The crypt variant of the direct install runs when HFDE_LAB_CRYPT=1.

import { generateEd25519KeyPair, parsePublicKey, sha256Fingerprint } from "../../providers/plumbing/keys";
import { Secret } from "../../providers/plumbing/secret";
import { sh } from "../../providers/plumbing/shell";
import { connect, SshSession } from "../../providers/plumbing/ssh";
import { raid1LvmAutosetup } from "../support/autosetup-fixtures";
import { LabFixture, RescueLogin, startLabFixture } from "../support/lab";
import { CRYPT_RAID1_IN_RESCUE, LAB_LUKS_PASSPHRASE, preparedHost, storageStack } from "../support/prepared-host";
import { waitFor } from "../support/wait";
import { describeOptIn, itOptIn } from "../support/opt-in";

jest.setTimeout(45 * 60_000);

const INSTALLIMAGE = "/root/.oldroot/nfs/install/installimage";
const IMAGE = "/root/images/Debian-bookworm-latest-amd64-base.tar.gz";
const INSTALL_TIMEOUT_MS = 30 * 60_000;

function raid1LvmConfig(extra: string[] = []): string {
  return raid1LvmAutosetup(IMAGE, extra);
}

// The post-install hook: install a pre-generated host key, so it can be pinned before the first boot.
function postInstallScript(hostKey: { private: string; public: string }): string {
  return [
    "#!/bin/sh",
    "set -eu",
    "umask 077",
    "cat >/etc/ssh/ssh_host_ed25519_key <<'KEY'",
    hostKey.private.trim(),
    "KEY",
    `echo '${hostKey.public.trim()}' >/etc/ssh/ssh_host_ed25519_key.pub`,
    "chmod 644 /etc/ssh/ssh_host_ed25519_key.pub",
    "echo post-install-ran >/root/post-install.marker",
    "",
  ].join("\n");
}

async function writeFile(session: SshSession, path: string, content: string, mode = "600"): Promise<void> {
  await session.exec(sh`umask 077 && cat >${path} && chmod ${mode} ${path}`, { stdin: content });
}

async function run(session: SshSession, command: ReturnType<typeof sh>, timeoutMs = 120_000): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return session.exec(command, { timeoutMs, okExitCodes: Array.from({ length: 256 }, (_, i) => i) });
}

// What a config must not change: partition tables, signatures, array superblocks and running arrays of both drives.
const DISK_STATE = sh`for d in /dev/nvme0n1 /dev/nvme1n1; do sfdisk -d "$d" 2>&1; wipefs --no-act "$d" "$d"p1 "$d"p2 2>&1; done; mdadm --examine --scan; mdadm --detail --scan; ls /dev/mapper`;

// 6 GiB disks: the layout fits with room to spare, and mkfs, the image and the initial resync
// (which the reboot test waits for) cost a third of what the 20 GiB default would.
const SMALL_DISKS = { server: { disks: { count: 2, sizeGiB: 6, type: "nvme" as const } } };

const BAD_CONFIGS: [string, string, RegExp][] = [
  ["RAID 10 with two drives", raid1LvmConfig().replace("SWRAIDLEVEL 1", "SWRAIDLEVEL 10"), /ERROR: SWRAIDLEVEL: RAID 10 needs at least 4 drives, found 2/],
  ["/boot on LVM", raid1LvmConfig().replace("PART /boot ext4 1G\n", "").replace("LV vg0 swap", "LV vg0 boot /boot ext4 1G\nLV vg0 swap"), /expected \/boot on a plain PART/],
  ["a missing IMAGE", raid1LvmConfig().replace(`IMAGE ${IMAGE}\n`, ""), /ERROR: IMAGE: expected the image to install/],
];

const describeFull = describeOptIn("HFDE_LAB_INSTALLIMAGE", "test/lab/installimage.test.ts, the lab installimage's own file (the checkpoint checks, about 2 min, 9 more to build the checkpoint; the direct install, reboot and apt, 9–10 min; one VM, under flock /tmp/hfde-vm.lock)");

describeFull("lab installimage: what it left on an installed crypt RAID1 host (checkpoint, in rescue; HFDE_LAB_INSTALLIMAGE=1)", () => {
  let lab: LabFixture;
  let session: SshSession;
  let operatorPublic: string;

  beforeAll(async () => {
    const host = await preparedHost(CRYPT_RAID1_IN_RESCUE);
    lab = host.lab;
    process.stdout.write(`checkpoint ${host.checkpoint}: ${host.builtBecause ? `built (${host.builtBecause}) in ${host.timings.buildMs} ms, ` : ""}restored in ${host.timings.restoreMs} ms, rescue answered after ${host.timings.bootMs} ms\n`);
    const rescue = host.facts.rescueProfile;
    operatorPublic = host.facts.operator.public;
    session = await connect(
      { host: rescue.host, port: rescue.port, user: "root", privateKey: new Secret(host.facts.operator.private), hostKey: { expect: [...rescue.hostKeyFingerprints] }, label: "rescue (checkpoint)" },
      { budgetMs: 120_000 },
    );
  });

  afterAll(async () => {
    await Promise.resolve(session?.close()).catch(() => undefined);
    await lab?.close();
  });

  it("GRUB on both drives: boot code in each MBR pointing at sector 1, core.img embedded there, before the first partition", async () => {
    // A RAID1 host must boot with either drive missing: each one carries the whole BIOS boot path.
    // boot.img keeps core.img's first sector (an LBA) at offset 0x5c; core.img starts with diskboot.img.
    const out = (
      await run(
        session,
        sh`for d in /dev/nvme0n1 /dev/nvme1n1; do
             echo "$d mbr=$(dd if=$d bs=512 count=1 2>/dev/null | grep -c -a GRUB) core_at=$(dd if=$d bs=1 skip=92 count=8 2>/dev/null | od -An -tu8 | tr -d ' ') diskboot=$(dd if=$d bs=512 skip=1 count=1 2>/dev/null | grep -c -a loading) first=$(sfdisk -d $d | awk -F'start= *' '/start=/{split($2, a, ","); print a[1]; exit}') label=$(sfdisk -d $d | awk '/^label:/{print $2}')"
           done`,
      )
    ).stdout;
    for (const drive of ["/dev/nvme0n1", "/dev/nvme1n1"]) {
      expect(out).toMatch(new RegExp(`^${drive} mbr=1 core_at=1 diskboot=1 first=2048 label=dos$`, "m"));
    }
  });

  it("arrays in sync; fstab, mdadm.conf and crypttab name the filesystems, arrays and LUKS device on the drives; root logs in by key only", async () => {
    await storageStack(session, "open", new Secret(LAB_LUKS_PASSPHRASE));
    let out: string;
    let scan: string;
    try {
      scan = (await run(session, sh`mdadm --examine --scan`)).stdout;
      const state = await run(
        session,
        sh`set -e; echo "--md"; for md in $(ls /dev/md?* | grep -E '^/dev/md[0-9]+$'); do mdadm --detail "$md" | grep -E '^ *State :'; done; grep -c -E 'resync|recovery' /proc/mdstat || true
           mount -o ro /dev/vg0/root /mnt; mount -o ro "$(awk '$2 == "/boot" {print $1}' /mnt/etc/fstab)" /mnt/boot
           echo "--fstab"; cat /mnt/etc/fstab
           echo "--resolved"; for id in $(awk '$1 ~ /^UUID=/ {print $1}' /mnt/etc/fstab); do echo "$id $(blkid -o value -s TYPE "$(findfs "$id")")"; done
           echo "--root $(blkid -o value -s UUID /dev/vg0/root)"
           echo "--mdadm"; cat /mnt/etc/mdadm/mdadm.conf
           echo "--crypttab"; cat /mnt/etc/crypttab
           echo "--luks $(for md in /dev/md?*; do cryptsetup isLuks "$md" && cryptsetup luksUUID "$md"; done)"
           echo "--keys"; cat /mnt/root/.ssh/authorized_keys; echo "--shadow"; grep '^root:' /mnt/etc/shadow | cut -d: -f2
           echo "--sshd"; grep '^PermitRootLogin' /mnt/etc/ssh/sshd_config
           echo "--files"; ls -d /mnt/boot/grub/grub.cfg /mnt/boot/grub/i386-pc /mnt/boot/initrd.img-*
           echo "--initramfs-runs $(grep -c '+ chroot .* update-initramfs ' /mnt/installimage.debug)"`,
      );
      out = state.stdout;
      if (state.exitCode !== 0) throw new Error(`reading the installed system failed (${state.exitCode}):\n${state.stdout}\n${state.stderr}`);
    } finally {
      await run(session, sh`umount /mnt/boot /mnt 2>/dev/null; true`);
      await storageStack(session, "close");
    }
    const section = (name: string): string => out.split(`--${name}\n`)[1].split("\n--")[0];
    // Both arrays in sync: the install resumed the resync it had frozen, and it ran to the end
    // before InstallImage let the host go (a frozen array would still be waiting to resync here).
    expect(section("md").split("\n").map((l) => l.trim())).toEqual(["State : clean", "State : clean", "0"]);
    expect(section("fstab")).toMatch(/^UUID=[0-9a-f-]{36} \/ ext4 defaults 0 1$/m);
    expect(section("fstab")).toMatch(/^UUID=[0-9a-f-]{36} \/boot ext4 defaults 0 2$/m);
    expect(section("fstab")).toMatch(/^UUID=[0-9a-f-]{36} none swap sw 0 0$/m);
    // Every UUID in fstab is a filesystem on these drives, of the type fstab says; / is the root LV.
    expect(section("resolved").trim().split("\n").map((l) => l.split(" ")[1]).sort()).toEqual(["ext4", "ext4", "swap"]);
    const rootUuid = /^--root (\S+)$/m.exec(out)![1];
    expect(section("fstab")).toContain(`UUID=${rootUuid} / ext4`);
    // mdadm.conf lists both arrays by the UUIDs in their superblocks (the initramfs assembles from it).
    const arrays = [...section("mdadm").matchAll(/^ARRAY \S+ .*UUID=(\S+)/gm)].map((m) => m[1]);
    expect(arrays).toHaveLength(2);
    for (const uuid of arrays) expect(scan).toContain(`UUID=${uuid}`);
    const luksUuid = /^--luks (\S+)$/m.exec(out)![1];
    expect(section("crypttab")).toMatch(new RegExp(`^luks-${luksUuid} UUID=${luksUuid} none luks$`, "m"));
    // The operator key taken over from the rescue; no root password; key login only.
    expect(section("keys")).toContain(operatorPublic.trim().split(" ")[1]);
    expect(section("shadow").trim()).toBe("*");
    expect(section("sshd")).toMatch(/^PermitRootLogin prohibit-password$/m);
    expect(section("files")).toMatch(/\/mnt\/boot\/grub\/grub\.cfg/);
    expect(section("files")).toMatch(/\/mnt\/boot\/initrd\.img-/);
    expect(out).toMatch(/^--initramfs-runs 1$/m);
  });

  it.each(BAD_CONFIGS)("bad config (%s): exit 1, the reason in /root/debug.txt, the drives untouched", async (_name, config, reason) => {
    const before = await run(session, DISK_STATE);
    await writeFile(session, "/root/bad.conf", config);
    const result = await run(session, sh`${INSTALLIMAGE} -a -c /root/bad.conf`);
    expect(result.exitCode).toBe(1);
    expect((await run(session, sh`cat /root/debug.txt`)).stdout).toMatch(reason);
    const after = await run(session, DISK_STATE);
    expect(after.stdout).toBe(before.stdout);
    expect(before.stdout).toMatch(/label: dos/);
  });
});

describeFull("lab installimage run directly: RAID1 + LVM on a blank QEMU server, reboot, apt (HFDE_LAB_INSTALLIMAGE=1)", () => {
  let lab: LabFixture;
  let server: number;
  let rescue: RescueLogin;
  let session: SshSession;
  const hostKey = generateEd25519KeyPair("root@lab-1");
  let diskHostKeyFingerprint = "";

  beforeAll(async () => {
    lab = await startLabFixture(SMALL_DISKS);
    server = lab.server().number;
    rescue = await lab.bootIntoRescue(server);
    session = await connect(lab.rescueTarget(rescue), { budgetMs: 60_000 });
  });

  afterAll(async () => {
    await Promise.resolve(session?.close()).catch(() => undefined);
    await lab?.close();
  });

  it("installs RAID1 + LVM: exit 0, arrays, fstab, mdadm.conf, GRUB on both drives, keys taken over", async () => {
    const aptSource = (await run(session, sh`cat /etc/apt/sources.list`)).stdout.trim();
    expect(aptSource).toMatch(/^deb .*http:\/\/10\.0\.2\.2:\d+\/debian bookworm main$/);
    await writeFile(session, "/root/raid1-lvm.conf", raid1LvmConfig());
    await writeFile(session, "/root/post-install", postInstallScript(hostKey), "700");

    const install = await run(session, sh`${INSTALLIMAGE} -a -c /root/raid1-lvm.conf -x /root/post-install`, INSTALL_TIMEOUT_MS);
    const debug = (await run(session, sh`cat /root/debug.txt`)).stdout;
    if (install.exitCode !== 0) throw new Error(`installimage exited ${install.exitCode}:\n${install.stdout}\n${install.stderr}\ndebug.txt tail:\n${debug.slice(-4000)}`);
    expect(install.stdout).toMatch(/step 16\/16 finish/);
    process.stdout.write(`installimage timings (s):\n${install.stdout.slice(install.stdout.indexOf("timings:"))}\n`);

    const state = await run(
      session,
      sh`cat /proc/mdstat; for md in md0 md1; do echo "$md sync_action=$(cat /sys/block/$md/md/sync_action)"; done
         mount /dev/vg0/root /mnt && mount /dev/md0 /mnt/boot
         echo "--fstab"; cat /mnt/etc/fstab; echo "--mdadm"; cat /mnt/etc/mdadm/mdadm.conf
         echo "--hostkeys"; ls /mnt/etc/ssh/; echo "--ed25519"; cat /mnt/etc/ssh/ssh_host_ed25519_key.pub
         echo "--keys"; cat /mnt/root/.ssh/authorized_keys; echo "--shadow"; grep '^root:' /mnt/etc/shadow | cut -d: -f2
         echo "--sshd"; grep '^PermitRootLogin' /mnt/etc/ssh/sshd_config
         echo "--files"; ls /mnt/installimage.conf /mnt/installimage.debug /mnt/root/post-install.marker /mnt/boot/grub/grub.cfg /mnt/boot/initrd.img-*
         echo "--hostname"; cat /mnt/etc/hostname
         echo "--apt"; cat /mnt/etc/apt/sources.list
         umount /mnt/boot /mnt
         for d in /dev/nvme0n1 /dev/nvme1n1; do echo "$d mbr=$(dd if=$d bs=512 count=1 2>/dev/null | grep -c -a GRUB)"; done`,
    );
    const out = state.stdout;
    expect(state.exitCode).toBe(0);
    expect(out).toMatch(/md0 : active raid1 .*nvme1n1p1.*nvme0n1p1|md0 : active raid1 .*nvme0n1p1.*nvme1n1p1/);
    expect(out).toMatch(/md1 : active raid1/);
    // The resync was frozen during the install and must be running (or done) again now.
    expect(out).not.toMatch(/sync_action=frozen/);
    expect(out).toMatch(/^UUID=[0-9a-f-]{36} \/ ext4 defaults 0 1$/m);
    expect(out).toMatch(/^UUID=[0-9a-f-]{36} \/boot ext4 defaults 0 2$/m);
    expect(out).toMatch(/^UUID=[0-9a-f-]{36} none swap sw 0 0$/m);
    expect(out).toMatch(/^ARRAY \/dev\/md\/?\S* .*UUID=/m);
    expect(out.match(/^ARRAY /gm)).toHaveLength(2);
    // New host keys of every type were generated, then the post-install hook replaced ed25519.
    expect(out).toMatch(/ssh_host_rsa_key\.pub/);
    expect(out).toMatch(/ssh_host_ecdsa_key\.pub/);
    const diskKey = out.split("--ed25519\n")[1].split("\n")[0];
    expect(diskKey).toBe(hostKey.public.trim());
    diskHostKeyFingerprint = sha256Fingerprint(parsePublicKey(diskKey));
    // Robot keys taken over (-t yes is the default): key login only.
    expect(out.split("--keys\n")[1]).toContain(rescue.publicKey.trim().split(" ")[1]);
    expect(out.split("--shadow\n")[1].split("\n")[0]).toBe("*");
    expect(out).toMatch(/^PermitRootLogin prohibit-password$/m);
    expect(out).toMatch(/\/mnt\/installimage\.conf/);
    expect(out).toMatch(/\/mnt\/root\/post-install\.marker/);
    expect(out.split("--hostname\n")[1].split("\n")[0]).toBe("lab-1");
    // The image names the lab mirror's default port; installimage points it at this lab's mirror.
    const mirrorUrl = aptSource.match(/http:\/\/10\.0\.2\.2:\d+\/debian/)?.[0];
    expect(out.split("--apt\n")[1]).toContain(`${mirrorUrl} bookworm`);
    expect(out).toMatch(/\/dev\/nvme0n1 mbr=1/);
    expect(out).toMatch(/\/dev\/nvme1n1 mbr=1/);
    expect(debug).toMatch(/update-initramfs -u -k all/);
    expect(debug.match(/\+ chroot .* update-initramfs /g)).toHaveLength(1);
  });

  it("reboots from disk into the installed system, whose sshd presents the host key read from the disk", async () => {
    expect(diskHostKeyFingerprint).toMatch(/^SHA256:/);
    // Under TCG a resync running through the first boot starves the guest's NVMe queue: commands
    // time out, md fails a member and systemd gives up waiting for /boot (observed: emergency mode,
    // I/O errors on nvme1n1). Real hardware does not have 30 s I/O stalls, so let it finish here.
    await run(session, sh`mdadm --wait /dev/md0 /dev/md1; cat /proc/mdstat`, 20 * 60_000);
    const boots = lab.supervisor.bootHistory(server).length;
    await run(session, sh`sync; (sleep 1; reboot) >/dev/null 2>&1 &`);
    await Promise.resolve(session.close()).catch(() => undefined);
    const started = Date.now();
    // Until the guest has rebooted, the rescue's sshd still answers: wait for the new boot first.
    await waitFor(() => lab.supervisor.bootHistory(server).length > boots, { what: `server ${server} to reboot after 'reboot'`, timeoutMs: 120_000, intervalMs: 500 });
    // The rescue boot consumed the arm: this boot comes from disk (GRUB on the drives).
    await lab.waitForSsh(server, 15 * 60_000);
    process.stdout.write(`boot from disk to SSH banner: ${Math.round((Date.now() - started) / 1000)} s\n`);
    expect(lab.supervisor.currentBoot(server)?.mode).toBe("disk");
    session = await connect(
      { host: "127.0.0.1", port: lab.server().sshPort, user: "root", privateKey: rescue.privateKey, hostKey: { expect: [diskHostKeyFingerprint] }, label: "installed lab-1" },
      { budgetMs: 120_000 },
    );
    const facts = await run(session, sh`hostname; findmnt -no SOURCE /; cat /proc/mdstat`);
    expect(facts.stdout).toMatch(/^lab-1$/m);
    expect(facts.stdout).toMatch(/^\/dev\/mapper\/vg0-root$/m);
    expect(facts.stdout).toMatch(/md1 : active raid1/);
  });

  it("apt-get installs dropbear-initramfs in the installed system from the local mirror", async () => {
    const apt = await run(session, sh`apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dropbear-initramfs`, 30 * 60_000);
    if (apt.exitCode !== 0) throw new Error(`apt failed (${apt.exitCode}):\n${apt.stdout.slice(-3000)}\n${apt.stderr.slice(-3000)}`);
    expect((await run(session, sh`dpkg-query -W -f ${"${Status}"} dropbear-initramfs`)).stdout).toBe("install ok installed");
  });
});

// Manual: HFDE_LAB_CRYPT=1 npx jest --selectProjects lab dist/test/lab/installimage.test.js -t crypt
const cryptIt = itOptIn("HFDE_LAB_CRYPT", "test/lab/installimage.test.ts, the lab installimage's crypt install (passphrase never in argv or the log)");
describe("lab installimage with crypt (LVM inside LUKS on md1)", () => {
  cryptIt("installs, writes crypttab in Hetzner's format and never shows the password in argv or the log", async () => {
    const lab = await startLabFixture(SMALL_DISKS);
    try {
      const server = lab.server().number;
      const rescue = await lab.bootIntoRescue(server);
      const password = new Secret(`lab-crypt-${process.pid}-${Date.now()}`);
      const session = await connect(lab.rescueTarget(rescue), { budgetMs: 60_000 });
      const config = raid1LvmConfig([`CRYPTPASSWORD ${password.reveal()}`]).replace("PART lvm vg0 all", "PART lvm vg0 all crypt");
      await writeFile(session, "/root/crypt.conf", config);
      const install = await run(
        session,
        sh`(while sleep 0.5; do cat /proc/[0-9]*/cmdline 2>/dev/null; echo; done) >/root/argv.log & watcher=$!
           ${INSTALLIMAGE} -a -c /root/crypt.conf; rc=$?; kill $watcher; exit $rc`,
        INSTALL_TIMEOUT_MS,
      );
      const debug = (await run(session, sh`cat /root/debug.txt`)).stdout;
      if (install.exitCode !== 0) throw new Error(`installimage exited ${install.exitCode}:\n${install.stdout}\ndebug.txt tail:\n${debug.slice(-4000)}`);
      expect(debug).not.toContain(password.reveal());
      // The pattern comes from stdin (-f -): grep's own argv must not carry the password either.
      const argvHits = await session.exec(sh`grep -a -c -F -f - /root/argv.log || true`, { stdin: password });
      expect(argvHits.stdout.trim()).toBe("0");
      expect((await run(session, sh`grep -a -c cryptsetup /root/argv.log`)).stdout.trim()).not.toBe("0");
      const state = await run(session, sh`ls /dev/mapper; mount /dev/vg0/root /mnt && cat /mnt/etc/crypttab; ls /mnt/usr/share/initramfs-tools/hooks/cryptroot; umount /mnt`);
      expect(state.stdout).toMatch(/^luks-([0-9a-f-]{36}) UUID=\1 none luks$/m);
      await Promise.resolve(session.close()).catch(() => undefined);
    } finally {
      await lab.close();
    }
  });
});
