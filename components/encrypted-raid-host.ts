// EncryptedRaidHost: one host of the stack config as a ComponentResource, the default flow in two
// boots: RescueBoot (Robot targets only) → InstallImage with crypt, staying in rescue → 
// DropbearInitramfs (configure in a chroot, build once, gate, reboot, unlock, verify) → a LuksVolume
// that adopts the root's LUKS container, so the keyslots follow `luksPassphrases.<host>` (a change
// rotates: add, prove, kill) and the crypttab options are managed and read back on refresh.
//
// - Every child is parented here and depends explicitly on the step before it: outputs flow into
//   inputs (the rescue profile into InstallImage, the installed system's pinned keys into
//   DropbearInitramfs and LuksVolume), and dependsOn says the order even where no value flows.
// - Child names are `<host>-<role>` and never change; the component's `aliases` option carries a
//   rename or a move to the children (the SDK derives their aliases from the parent's), so a
//   refactor never replaces a host.
// - `protect` (ComponentResourceOptions, inherited by the children) and `allowWipe` come from the config.
// - Preview needs no host: everything here is computed from the config and the resources' outputs.
import * as pulumi from "@pulumi/pulumi";
import type { HostConfig } from "../infra/config";
import type { ConnectionProfile } from "../providers/kernel/host-access";
import { DropbearInitramfs, InitramfsNetwork } from "../providers/dropbear-initramfs";
import { cryptDevices, DriveSpec, INSTALLIMAGE_LUKS_FORMAT, InstallImage } from "../providers/install-image";
import { LuksVolume } from "../providers/luks-volume";
import { RescueBoot } from "../providers/rescue-boot";

export const COMPONENT_TYPE = "hetzner-fde:index:EncryptedRaidHost";

export interface EncryptedRaidHostArgs {
  /** The validated config of this host (infra/config). */
  readonly host: HostConfig;
  /** The operator's public key (from sshPrivateKey): armed into the rescue and allowed to unlock. */
  readonly operatorPublicKey: string;
  /** `luksPassphrases.<host>`, marked secret. */
  readonly luksPassphrase: pulumi.Output<string>;
}

/** Child names: stable, one per role (renaming one replaces that resource). */
export function childNames(host: string): { rescue: string; install: string; dropbear: string; rootLuks: string } {
  return { rescue: `${host}-rescue`, install: `${host}-install`, dropbear: `${host}-dropbear`, rootLuks: `${host}-root-luks` };
}

/** Where the installed system's sshd is dialed: the endpoints' forward, else the rescue's address on sshd's port. */
export function systemEndpoint(host: HostConfig): { host?: string; port: number } {
  return host.endpoints ? { host: host.endpoints.address, port: host.endpoints.sshPort } : { port: host.sshd.port };
}

/** The operator's key first (the provider unlocks with it), then the config's keys, each once. */
export function dropbearKeys(operatorPublicKey: string, configured: readonly string[]): string[] {
  const body = (line: string): string => line.trim().split(/\s+/).slice(0, 2).join(" ");
  const seen = new Set<string>();
  return [operatorPublicKey, ...configured].filter((line) => !seen.has(body(line)) && seen.add(body(line)) !== undefined);
}

export function initramfsNetwork(host: HostConfig): InitramfsNetwork {
  const net = host.dropbear.network;
  return {
    mac: net.mac,
    ipv4: net.mode === "dhcp" || net.ipv4 === undefined ? "dhcp" : { address: net.ipv4.address, gateway: net.ipv4.gateway },
    ...(net.ipv6 ? { ipv6: { address: net.ipv6.address, gateway: net.ipv6.gateway } } : {}),
  };
}

export function driveSpecs(host: HostConfig): DriveSpec[] {
  return host.drives.map((d) => ({ path: d.path, ...(d.serial !== undefined ? { serial: d.serial } : {}), ...(d.wwn !== undefined ? { wwn: d.wwn } : {}) }));
}

/** The device holding the root's LUKS container (installimage's numbering: /dev/mdN or the disk's partition). */
export function rootLuksDevice(host: HostConfig): string {
  const devices = cryptDevices({ drives: driveSpecs(host), raid: host.raid ? { level: host.raid.level } : false, partitions: host.partitions });
  if (devices.length !== 1) throw new pulumi.RunError(`hosts ${host.name}: expected exactly one partition with crypt: true (the root's LUKS container), found ${devices.length}; EncryptedRaidHost adopts one container`);
  return devices[0];
}

/**
 * The mapper name installimage opened the root as, `luks-<LUKS UUID>`: the name the initramfs and
 * /etc/crypttab use, which LuksVolume must keep (another name would rename the live root mapping
 * and leave the initramfs unlocking a name crypttab no longer has). The UUID exists only after the
 * install, and InstallImage does not output it yet (its probe reads it; see the report of #14):
 * until it does, this fails at the first `up` that reaches the LuksVolume, naming the gap.
 */
export function rootMapperName(luks: readonly { device: string; uuid: string }[] | undefined, device: string): string {
  const found = luks?.find((l) => l.device === device);
  if (found === undefined) {
    throw new Error(
      `LuksVolume cannot adopt ${device}: InstallImage does not output the LUKS UUID of the root's container (expected an output luks: [{ device, uuid }]), ` +
        "so the mapper name luks-<uuid> that the initramfs and crypttab use cannot be derived; add it to InstallImage's outputs (its probe already reads it)",
    );
  }
  return `luks-${found.uuid}`;
}

export class EncryptedRaidHost extends pulumi.ComponentResource {
  readonly rescue?: RescueBoot;
  readonly rescueProfile: pulumi.Output<ConnectionProfile>;
  readonly install: InstallImage;
  readonly systemProfile: pulumi.Output<ConnectionProfile>;
  readonly dropbear: DropbearInitramfs;
  readonly rootLuks: LuksVolume;

  constructor(name: string, args: EncryptedRaidHostArgs, opts: pulumi.ComponentResourceOptions = {}) {
    const host = args.host;
    super(COMPONENT_TYPE, name, {}, { protect: host.protect, ...opts });
    const names = childNames(host.name);
    const child: pulumi.CustomResourceOptions = { parent: this };

    if (host.mirror) {
      // Never silent: the mirror disk stays untouched until RsyncMirror joins the component.
      void pulumi.log.warn(`host ${host.name}: the mirror (${host.mirror.drive.path} at ${host.mirror.mountPoint}) is NOT managed yet; the host is built without it, and ${host.mirror.drive.path} is left as it is`, this);
    }

    if (host.target.robot) {
      this.rescue = new RescueBoot(
        names.rescue,
        {
          serverNumber: host.target.robot.serverNumber,
          authorizedKeys: [args.operatorPublicKey],
          allowFirstContactHostKey: host.target.robot.allowFirstContactHostKey,
          ...(host.endpoints ? { connect: { host: host.endpoints.address, port: host.endpoints.sshPort } } : {}),
          driveSerials: host.drives.map((d) => d.serial ?? d.wwn).filter((id): id is string => id !== undefined),
        },
        child,
      );
      this.rescueProfile = this.rescue.profile;
    } else {
      // The operator booted the rescue; the config pins its key (nothing else tells this host from another).
      const ssh = host.target.ssh!;
      if (!ssh.hostKeyFingerprints || ssh.hostKeyFingerprints.length === 0) {
        throw new pulumi.RunError(`hosts ${host.name}: target.ssh.hostKeyFingerprints is required: expected the rescue's SHA256 host key fingerprints (ssh-keygen -lf on the rescue's keys), found none; host keys are always verified`);
      }
      this.rescueProfile = pulumi.output<ConnectionProfile>({
        environment: "rescue",
        host: host.endpoints?.address ?? ssh.address,
        port: host.endpoints?.sshPort ?? ssh.port,
        user: ssh.user,
        hostKeyFingerprints: ssh.hostKeyFingerprints,
      });
    }

    this.install = new InstallImage(
      names.install,
      {
        rescue: this.rescueProfile,
        system: systemEndpoint(host),
        drives: driveSpecs(host),
        raid: host.raid ? { level: host.raid.level } : false,
        reassemble: host.raid?.reassemble ?? "never",
        partitions: host.partitions,
        volumes: host.volumes,
        image: host.image,
        hostname: host.hostname,
        cryptPassphrase: args.luksPassphrase,
        cryptPbkdf: host.luks.pbkdf,
        allowWipe: host.allowWipe,
        // DropbearInitramfs configures the installed root from this rescue and reboots once.
        reboot: false,
      },
      { ...child, dependsOn: this.rescue ? [this.rescue] : [] },
    );

    const system = systemEndpoint(host);
    this.systemProfile = pulumi.all([this.rescueProfile, this.install.hostKeyFingerprints]).apply(([rescue, fingerprints]) => ({
      environment: "system" as const,
      host: system.host ?? rescue.host,
      port: system.port,
      user: "root",
      hostKeyFingerprints: fingerprints,
    }));

    this.dropbear = new DropbearInitramfs(
      names.dropbear,
      {
        // One Output, not a list of Outputs: in preview the whole list is then one unknown, which check
        // defers; the providers' validateProfiles does not skip unknown elements of a known list.
        connection: pulumi.all([this.rescueProfile, this.systemProfile]),
        hostname: host.hostname,
        authorizedKeys: dropbearKeys(args.operatorPublicKey, host.dropbear.authorizedKeys),
        port: host.dropbear.port,
        sshdPort: host.sshd.port,
        ...(host.endpoints ? { reach: { host: host.endpoints.address, port: host.endpoints.dropbearPort } } : {}),
        network: initramfsNetwork(host),
        passphrase: args.luksPassphrase,
        unlock: true,
        allowWipe: host.allowWipe,
      },
      // Its delete (remove dropbear, rebuild the initrd: 167 s in the lab's e2e destroy) only ever
      // comes with the host's: InstallImage's delete then wipes the drives (allowWipe) or keeps the
      // whole install, remote unlock included. On a replace, the new one owns the same files.
      { ...child, dependsOn: [this.install], retainOnDelete: true },
    );

    const device = rootLuksDevice(host);
    const mapperName = this.install.luks.apply((luks) => rootMapperName(luks, device));
    this.rootLuks = new LuksVolume(
      names.rootLuks,
      {
        // Not the initramfs: its operator key runs only cryptroot-unlock, which would be fed the probe's
        // stdin (seen in the lab: "cryptsetup failed, bad password" on a refresh of a locked host).
        connection: pulumi.all([this.systemProfile, this.rescueProfile]),
        device,
        disks: host.drives.map((d) => ({ ...(d.serial !== undefined ? { serial: d.serial } : {}), ...(d.wwn !== undefined ? { wwn: d.wwn } : {}) })),
        mapperName,
        passphrase: args.luksPassphrase,
        // installimage's format, which the config rules hold the luks section to.
        cipher: INSTALLIMAGE_LUKS_FORMAT.cipher,
        keySize: INSTALLIMAGE_LUKS_FORMAT.keySize,
        pbkdf: host.luks.pbkdf,
        // installimage's crypttab line has only `luks`; TRIM stays off (it reveals which blocks are free).
        discard: false,
        crypttab: { root: "/", options: ["luks"] },
        adopt: true,
        allowWipe: host.allowWipe,
      },
      // Destroy leaves the root's container to InstallImage, whose delete wipes the drives (allowWipe)
      // or keeps them: the LuksVolume cannot close the mapping the running system's root is on (the
      // lab's e2e destroy failed there, "Device … is still in use").
      { ...child, dependsOn: [this.dropbear], retainOnDelete: true },
    );

    this.registerOutputs({});
  }
}
