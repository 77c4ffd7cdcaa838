// InstallImage: Hetzner's installimage, run in the rescue system from a typed layout, with what the
// manual procedure leaves out done around it:
//
// - The `/autosetup` file is rendered from the inputs (users never write it), and installimage runs
//   detached on the host so a dropped connection cannot kill it half-way; its output is streamed to
//   the log by polling, and on failure the `ERROR:` lines of /root/debug.txt become the error.
// - The installed system's host key is generated here and installed before the first boot, so it
//   is pinned from the start (no trust on first use); only its public half is ever kept.
// - With `crypt`, installimage gets a random one-time passphrase (it writes CRYPTPASSWORD in plain
//   text into /autosetup and the new system's /installimage.conf); the real one goes into a new
//   keyslot through stdin, the one-time slot is killed and every CRYPTPASSWORD line is scrubbed.
// - Nothing is destroyed by surprise: drives are matched by serial/WWN before anything is written,
//   drives that carry data are refused without `allowWipe`, and any layout change is a replacement
//   that `check` refuses without `allowWipe`, naming what would be lost.
// - A killed run converges: the plan comes from a fresh probe every round; an install counts as
//   done only when the marker written as its last step is on the disk, and data on the drives is
//   "ours to redo" only while the rescue boot that started the install is still up.
// - Before rebooting, the installed system must be bootable as far as rescue can tell (GRUB on
//   every drive, mdadm.conf matching the arrays, every fstab/crypttab UUID present).

import * as pulumi from "@pulumi/pulumi";
import { PROVIDER_VERSION, diffAgainstRecorded, withSecretInputs } from "../kernel";
import { definition, provider } from "./provider";
import type { DriftItem, InstallImageArgs, InstallImageInputs, InstallImageOutputs, InstalledLayout, ObservedEnvironment } from "./types";

export * from "./types";
export * from "./autosetup";
export * from "./validate";
export * from "./plan";
export * from "./probe";
export { steps, describeSyncLine, pinGuard } from "./steps";
export * from "./reach";
export { definition } from "./provider";
export * from "./outputs";
export * from "./wipe-access";

/** What `diff` reports (pure, no SSH): the plan against the recorded outputs. */
export function compareOutputs(olds: InstallImageOutputs, news: InstallImageInputs): pulumi.dynamic.DiffResult {
  return diffAgainstRecorded(definition, olds, news);
}

export class InstallImage extends pulumi.dynamic.Resource {
  declare readonly installId: pulumi.Output<string>;
  declare readonly installedAt: pulumi.Output<string>;
  declare readonly environment: pulumi.Output<ObservedEnvironment>;
  declare readonly host: pulumi.Output<string>;
  declare readonly hostname: pulumi.Output<string>;
  declare readonly image: pulumi.Output<string>;
  declare readonly hostKeyFingerprints: pulumi.Output<string[]>;
  declare readonly knownHosts: pulumi.Output<string[]>;
  declare readonly observedHostname: pulumi.Output<string | null>;
  declare readonly layout: pulumi.Output<InstalledLayout>;
  declare readonly arrayUuids: pulumi.Output<string[]>;
  declare readonly luks: pulumi.Output<{ device: string; uuid: string }[]>;
  declare readonly drift: pulumi.Output<DriftItem[]>;
  declare readonly boots: pulumi.Output<number>;

  constructor(name: string, args: InstallImageArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = { installId: undefined, installedAt: undefined, environment: undefined, host: undefined, hostKeyFingerprints: undefined, knownHosts: undefined, observedHostname: undefined, layout: undefined, arrayUuids: undefined, luks: undefined, drift: undefined, boots: undefined };
    super(provider, name, { ...withSecretInputs(args, ["cryptPassphrase"]), providerVersion: PROVIDER_VERSION, ...outputs }, opts, "hetzner-fde", "InstallImage");
  }
}

