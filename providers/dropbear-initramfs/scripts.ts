// The shell this resource runs or installs, kept as .sh files next to this one (so `bash -n` checks
// them) and read once when the module loads. The text is captured by value when Pulumi serializes
// the provider, so the provider host never needs the files.
import { existsSync, readFileSync } from "fs";
import * as path from "path";

// `npm run build` copies providers/**/*.sh next to the compiled modules (scripts/copy-shell.js);
// the source tree is the fallback for an unbuilt checkout.
function script(name: string): string {
  const candidates = [path.join(__dirname, "sh", name), path.resolve(__dirname, "../../../providers/dropbear-initramfs/sh", name)];
  const found = candidates.find((file) => existsSync(file));
  if (!found) throw new Error(`DropbearInitramfs: ${name} not found at ${candidates.join(" or ")}; run npm run build`);
  return readFileSync(found, "utf8");
}

export const SCRIPT_FILES = ["configure.sh", "gate-facts.sh", "probe.sh", "open-root.sh", "close-root.sh", "verify.sh", "boot-ipv6.sh", "boot-cleanup.sh"] as const;

/** Writes the files (records on stdin) into a root. */
export const CONFIGURE_SH = script("configure.sh");
/** Prints the gate's facts about the newest initrd and the host around it. */
export const GATE_FACTS_SH = script("gate-facts.sh");
/** Installed as scripts/init-premount/hetzner-fde-ipv6 when the network has IPv6. */
export const BOOT_IPV6_SH = script("boot-ipv6.sh");
/** Installed as scripts/init-bottom/hetzner-fde-network. */
export const BOOT_CLEANUP_SH = script("boot-cleanup.sh");
/** The probe (reads the gate's facts through GATE_FACTS_SH). */
export const PROBE_SH = script("probe.sh");
/** Rescue: opens and mounts the installed root for the chroot. */
export const OPEN_ROOT_SH = script("open-root.sh");
/** Rescue: unmounts it before the reboot. */
export const CLOSE_ROOT_SH = script("close-root.sh");
/** After the unlock: arrays, LUKS, mounts, host name as configured. */
export const VERIFY_SH = script("verify.sh");
