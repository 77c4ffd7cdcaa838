// Distro adapters: which release a root holds (from its /etc/os-release) and what differs between
// the supported releases for remote unlock (adapter.ts has the facts, debian.ts and ubuntu.ts the
// values). Supported: Debian 11, 12, 13; Ubuntu 22.04, 24.04.
//
// The Ubuntu 18.04 busybox hook of the source document is not carried for any of them. It replaced
// the initramfs's busybox because Ubuntu's stripped busybox-initramfs (bionic) lacked applets that
// cryptroot-unlock calls (`usleep`, a `ps` that takes `-o`), which made cryptroot-unlock time out
// after the passphrase ("usleep: not found … Timeout reached while waiting for PID", LP #1651818).
// On every supported release the image gets the full busybox instead: dropbear-initramfs and
// cryptsetup-initramfs depend on `busybox | busybox-static`, dropbear-initramfs's conf-hooks.d sets
// BUSYBOX=y (and so does our conf.d), and the lab's unlock runs cryptroot-unlock in that image.
import type { DistroAdapter, DistroKey } from "./adapter";
import { DEBIAN_11, DEBIAN_12, DEBIAN_13 } from "./debian";
import { parseOsRelease, OsRelease } from "./os-release";
import { UBUNTU_2204, UBUNTU_2404 } from "./ubuntu";

export type { DistroAdapter, DistroKey, DropbearLayout, SystemNetwork, InitramfsNetworkTool } from "./adapter";
export { parseOsRelease } from "./os-release";
export type { OsRelease } from "./os-release";

export const ADAPTERS: readonly DistroAdapter[] = [DEBIAN_11, DEBIAN_12, DEBIAN_13, UBUNTU_2204, UBUNTU_2404];

/** The adapter for a release, or a sentence saying which releases are supported. */
export function adapterFor(release: OsRelease): { ok: true; adapter: DistroAdapter } | { ok: false; reason: string } {
  const adapter = ADAPTERS.find((a) => a.osId === release.id && a.versionId === release.versionId);
  if (adapter) return { ok: true, adapter };
  const found = release.prettyName || `${release.id || "unknown"} ${release.versionId || "(no VERSION_ID)"}`.trim();
  return {
    ok: false,
    reason: `expected one of ${ADAPTERS.map((a) => a.name).join(", ")}, found ${JSON.stringify(found)} in /etc/os-release; ` +
      "install a supported image (InstallImage's `image`)",
  };
}

/** `adapterFor(parseOsRelease(text))`, for a probe's raw os-release text. */
export function detectDistro(osReleaseText: string): { ok: true; adapter: DistroAdapter } | { ok: false; reason: string } {
  return adapterFor(parseOsRelease(osReleaseText));
}

export function adapterByKey(key: DistroKey): DistroAdapter {
  const adapter = ADAPTERS.find((a) => a.key === key);
  if (!adapter) throw new Error(`unknown distro adapter ${JSON.stringify(key)}; expected one of ${ADAPTERS.map((a) => a.key).join(", ")}`);
  return adapter;
}
