// The files DropbearInitramfs writes into the installed root, rendered from the inputs (pure). The
// same text is what the gate expects to find in the built image, so "what we wrote" and "what we
// check" cannot drift apart.
import * as ipaddr from "ipaddr.js";
import type { DistroAdapter } from "../distro";
import { parsePublicKey } from "../plumbing/keys";
import { quote } from "../plumbing/shell";
import {
  AuthorizedKey,
  DEFAULT_DROPBEAR_PORT,
  DEFAULT_IDLE_TIMEOUT_SECONDS,
  DropbearInitramfsInputs,
  HETZNER_IPV6_GATEWAY,
  InitramfsNetwork,
} from "./types";

/** Our initramfs-tools conf.d file (sourced at build and at boot; copied into the image's conf/conf.d). */
export const CONFD_NAME = "hetzner-fde";
export const CONFD_PATH = `/etc/initramfs-tools/conf.d/${CONFD_NAME}`;
/** Boot scripts of ours, under /etc/initramfs-tools/scripts/ (and scripts/ in the image). */
export const IPV6_SCRIPT = "init-premount/hetzner-fde-ipv6";
export const CLEANUP_SCRIPT = "init-bottom/hetzner-fde-network";
/** The marked block in /etc/initramfs-tools/modules that names the NIC driver. */
export const MODULES_FILE = "/etc/initramfs-tools/modules";
export const MODULES_BEGIN = "# BEGIN hetzner-fde DropbearInitramfs: the NIC driver dropbear needs";
export const MODULES_END = "# END hetzner-fde";

/** What dropbear runs for an unlock-only key (cryptsetup-initramfs puts it there). */
export const UNLOCK_COMMAND = "/bin/cryptroot-unlock";

const HEADER = "# Written by hetzner-fde (DropbearInitramfs); edits are overwritten on the next `pulumi up`.";

export function normalizeKey(entry: string | AuthorizedKey): AuthorizedKey {
  return typeof entry === "string" ? { key: entry } : entry;
}

/**
 * authorized_keys for the initramfs. No forwarding of any kind for anyone: unlocking needs none.
 * Unlock-only keys run cryptroot-unlock whatever the client asks for; with a tty it prompts, without
 * one it reads the passphrase from stdin (which is how `up` unlocks).
 */
export function renderAuthorizedKeys(entries: readonly (string | AuthorizedKey)[]): string {
  const lines = entries.map((entry) => {
    const { key, shell } = normalizeKey(entry);
    const parsed = parsePublicKey(key);
    const options = ["no-port-forwarding", "no-agent-forwarding", "no-X11-forwarding", ...(shell ? [] : [`command="${UNLOCK_COMMAND}"`])];
    const comment = parsed.comment.replace(/[^\x20-\x7e]/g, "").trim();
    return `${options.join(",")} ${parsed.type} ${parsed.blob.toString("base64")}${comment ? ` ${comment}` : ""}`;
  });
  return `${HEADER}\n${lines.join("\n")}\n`;
}

/** dropbear's command line in the initramfs: our port, keys only, no forwarding, an idle timeout. */
export function dropbearOptions(inputs: Pick<DropbearInitramfsInputs, "port" | "idleTimeoutSeconds">): string {
  const port = inputs.port ?? DEFAULT_DROPBEAR_PORT;
  const idle = inputs.idleTimeoutSeconds ?? DEFAULT_IDLE_TIMEOUT_SECONDS;
  // -s: no password logins; -j/-k: no local/remote port forwarding (the keys say so too).
  return `-p ${port} -s -j -k -I ${idle}`;
}

/**
 * The boot scripts' config. IFDOWN="*" is dropbear-initramfs's default, written out so that a
 * release or an admin that changes it cannot leave the initramfs address on the interface: ifupdown
 * then fails to bring the interface up ("Address already assigned"), and the host is unreachable
 * after a successful unlock.
 */
export function renderDropbearConfig(adapter: DistroAdapter, inputs: Pick<DropbearInitramfsInputs, "port" | "idleTimeoutSeconds">): string {
  const v = adapter.dropbear.variables;
  return [
    HEADER,
    `${v.options}=${quote(dropbearOptions(inputs))}`,
    `${v.ifdown}=${quote("*")}`,
    `${v.shutdownTimeout}=60`,
    "",
  ].join("\n");
}

/** `aa:bb:cc:dd:ee:ff` → `01-aa-bb-cc-dd-ee-ff` (pxelinux's BOOTIF, which configure_networking reads). */
export function bootif(mac: string): string {
  return `01-${mac.toLowerCase().replace(/:/g, "-")}`;
}

/** The IPv4 netmask of a prefix length: 26 → 255.255.255.192. */
export function netmask(prefix: number): string {
  return ipaddr.IPv4.subnetMaskFromPrefixLength(prefix).toString();
}

/**
 * IP= in klibc's ip= syntax (`client:server:gw:netmask:hostname:device:autoconf`). The device
 * field stays empty: configure_networking finds the device by BOOTIF's MAC and fills it in.
 */
export function ipParameter(network: InitramfsNetwork): string {
  if (network.ipv4 === "dhcp") return "dhcp";
  const [address, prefix] = network.ipv4.address.split("/");
  return `${address}::${network.ipv4.gateway}:${netmask(Number(prefix))}:::off`;
}

/** Our conf.d: busybox, the network, and the IPv6 settings our premount script reads. */
export function renderConfd(network: InitramfsNetwork): string {
  const lines = [HEADER, "BUSYBOX=y", `IP=${quote(ipParameter(network))}`, `BOOTIF=${quote(bootif(network.mac))}`];
  if (network.ipv6) {
    lines.push(`HFDE_IPV6_ADDRESS=${quote(network.ipv6.address)}`, `HFDE_IPV6_GATEWAY=${quote(network.ipv6.gateway ?? HETZNER_IPV6_GATEWAY)}`);
  }
  return lines.join("\n") + "\n";
}

/** The marked block for /etc/initramfs-tools/modules ("" when the driver is built in). */
export function renderModulesBlock(module: string | null): string {
  if (module === null) return "";
  return `${MODULES_BEGIN}\n${module}\n${MODULES_END}\n`;
}

/** Scripts of ours the image must carry for these inputs (relative to scripts/). */
export function bootScripts(network: InitramfsNetwork): string[] {
  return [...(network.ipv6 ? [IPV6_SCRIPT] : []), CLEANUP_SCRIPT];
}

/** The dropbear config's path inside the image (the hook copies it under etc/dropbear/). */
export function imageConfigPath(adapter: DistroAdapter): string {
  return `etc/dropbear/${adapter.dropbear.configFile.split("/").pop()}`;
}

/** One file to write into the root. `secret` files' content is never logged or shown in a plan. */
export interface RenderedFile {
  readonly path: string;
  readonly mode: string;
  /** base64 of the bytes. */
  readonly base64: string;
}

const text = (path: string, mode: string, content: string): RenderedFile => ({ path, mode, base64: Buffer.from(content, "utf8").toString("base64") });

/**
 * Every file of the configuration, host key included (hence the result is only ever sent on stdin,
 * as `configure.sh` records). `scripts` are the boot scripts' texts (scripts.ts).
 */
export function renderFiles(
  adapter: DistroAdapter,
  inputs: Pick<DropbearInitramfsInputs, "port" | "idleTimeoutSeconds" | "authorizedKeys" | "network">,
  hostKeyDropbearBase64: string,
  scripts: { readonly ipv6: string; readonly cleanup: string },
): RenderedFile[] {
  const layout = adapter.dropbear;
  return [
    { path: layout.hostKeyFiles.ed25519, mode: "600", base64: hostKeyDropbearBase64 },
    text(layout.authorizedKeysFile, "600", renderAuthorizedKeys(inputs.authorizedKeys)),
    text(layout.configFile, "644", renderDropbearConfig(adapter, inputs)),
    text(CONFD_PATH, "644", renderConfd(inputs.network)),
    ...(inputs.network.ipv6 ? [text(`/etc/initramfs-tools/scripts/${IPV6_SCRIPT}`, "755", scripts.ipv6)] : []),
    text(`/etc/initramfs-tools/scripts/${CLEANUP_SCRIPT}`, "755", scripts.cleanup),
  ];
}

/** configure.sh's stdin: one "<mode> <path> <base64>" line per file. */
export function configureRecords(files: readonly RenderedFile[]): string {
  return files.map((f) => `${f.mode} ${f.path} ${f.base64}\n`).join("");
}

/** Files that must not be left in the dropbear directory (host keys the stack did not make), and, when IPv6 is off, our IPv6 script. */
export function staleFiles(adapter: DistroAdapter, network: InitramfsNetwork): string[] {
  return [...adapter.dropbear.hostKeyFiles.others, ...(network.ipv6 ? [] : [`/etc/initramfs-tools/scripts/${IPV6_SCRIPT}`])];
}
