// The stack outputs an operator and monitoring use directly, built by pure functions from what the
// resources recorded (so they are unit-tested without an engine). A host is reached in three
// environments (rescue, initramfs, system), often at one address and port with different host
// keys (the lab forwards one port to both rescue and system sshd): every environment gets its own
// HostKeyAlias, and the known_hosts lines are keyed by that alias, so one file pins all three.
// Nothing here takes a secret: the inputs are addresses, ports and public host keys.
import type { InstalledLayout } from "../providers/install-image/types";
import type { LuksFacts } from "../providers/luks-volume/types";

export const ENVIRONMENTS = ["rescue", "initramfs", "system"] as const;
export type EnvironmentName = (typeof ENVIRONMENTS)[number];

/** node_exporter's port on the installed system (its default); the mdadm collector feeds the array alerts. */
export const NODE_EXPORTER_PORT = 9100;
/** Label names the alert rules select on (monitoring/alerts.yml; monitoring/README.md documents them). */
export const LABELS = { host: "hfde_host", role: "hfde_role", environment: "hfde_environment" } as const;
/** hfde_role values: node_exporter on the system, and the blackbox banner probe of dropbear's port. */
export const ROLES = { node: "node", initramfsProbe: "initramfs-probe" } as const;

/** What the resources recorded about one environment. */
export interface EnvironmentFacts {
  readonly address: string;
  readonly port: number;
  /** SHA256 fingerprints pinned for this environment. */
  readonly fingerprints: readonly string[];
  /** known_hosts lines as the resources write them (keyed by address:port); empty when only fingerprints are pinned. */
  readonly knownHosts: readonly string[];
}

export interface EnvironmentOutput extends EnvironmentFacts {
  readonly hostKeyAlias: string;
}

export function hostKeyAlias(host: string, environment: EnvironmentName): string {
  return `${host}-${environment}`;
}

/** The file the ssh_config snippet and the unlock command read: write the `knownHosts` output into it. */
export function knownHostsFileName(host: string): string {
  return `${host}.known_hosts`;
}

export function environmentOutput(host: string, environment: EnvironmentName, facts: EnvironmentFacts): EnvironmentOutput {
  return { ...facts, fingerprints: [...facts.fingerprints], knownHosts: [...facts.knownHosts], hostKeyAlias: hostKeyAlias(host, environment) };
}

/** A resource's known_hosts line re-keyed by the alias: `[127.0.0.1]:2201 ssh-ed25519 AAAA…` → `lab-1-system ssh-ed25519 AAAA…`. */
export function aliasKnownHostsLine(alias: string, line: string): string {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 3) throw new Error(`expected a known_hosts line "<host> <key type> <base64>", found ${JSON.stringify(line)}`);
  return [alias, fields[1], fields[2]].join(" ");
}

/** The content of `<host>.known_hosts`: every environment's keys under its alias. */
export function knownHostsContent(environments: Readonly<Record<EnvironmentName, EnvironmentOutput>>): string {
  const lines = ENVIRONMENTS.flatMap((env) => environments[env].knownHosts.map((line) => aliasKnownHostsLine(environments[env].hostKeyAlias, line)));
  return lines.map((l) => `${l}\n`).join("");
}

function bracketed(address: string): string {
  return address.includes(":") ? `[${address}]` : address;
}

/** One `Host` block per environment; StrictHostKeyChecking yes: a key not in the file is refused, never learnt. */
export function sshConfigSnippet(host: string, environments: Readonly<Record<EnvironmentName, EnvironmentOutput>>): string {
  return ENVIRONMENTS.map((env) => {
    const e = environments[env];
    return [
      `Host ${e.hostKeyAlias}`,
      `  HostName ${e.address}`,
      `  Port ${e.port}`,
      "  User root",
      `  HostKeyAlias ${e.hostKeyAlias}`,
      `  UserKnownHostsFile ${knownHostsFileName(host)}`,
      "  StrictHostKeyChecking yes",
      ...(env === "initramfs" ? ["  RequestTTY yes", "  RemoteCommand cryptroot-unlock"] : []),
      "",
    ].join("\n");
  }).join("\n");
}

/** The exact command that unlocks the host waiting in its initramfs, with the pinned dropbear key. */
export function unlockCommand(host: string, initramfs: EnvironmentOutput): string {
  return (
    `ssh -o UserKnownHostsFile=${knownHostsFileName(host)} -o HostKeyAlias=${initramfs.hostKeyAlias} -o StrictHostKeyChecking=yes ` +
    `-p ${initramfs.port} root@${bracketed(initramfs.address)} cryptroot-unlock`
  );
}

/** The same, for a login to the installed system. */
export function systemSshCommand(host: string, system: EnvironmentOutput): string {
  return `ssh -o UserKnownHostsFile=${knownHostsFileName(host)} -o HostKeyAlias=${system.hostKeyAlias} -o StrictHostKeyChecking=yes -p ${system.port} root@${bracketed(system.address)}`;
}

export interface LayoutOutput {
  readonly arrays: { readonly device: string; readonly level: number | null; readonly state: string; readonly degraded: boolean; readonly members: string[]; readonly sync: string }[];
  /** null until a LuksVolume has read the container. */
  readonly luks: { readonly cipher: string; readonly keySize: number; readonly keyslots: number } | null;
  readonly volumeGroups: { readonly name: string; readonly sizeBytes: number; readonly freeBytes: number }[];
  readonly volumes: { readonly vg: string; readonly name: string; readonly sizeBytes: number }[];
}

/** The layout as read back from the host (InstallImage's layout, LuksVolume's facts). */
export function layoutOutput(layout: InstalledLayout, luks: LuksFacts | null): LayoutOutput {
  return {
    arrays: layout.arrays.map((a) => ({
      device: a.device,
      level: a.level,
      state: a.state,
      degraded: a.degraded,
      members: [...a.members],
      sync: a.sync.action === "idle" || a.sync.percent === null ? a.sync.action : `${a.sync.action} ${a.sync.percent}%`,
    })),
    luks: luks === null ? null : { cipher: luks.cipher, keySize: luks.keySize, keyslots: luks.keyslots.length },
    volumeGroups: layout.volumeGroups.map((vg) => ({ ...vg })),
    volumes: layout.volumes.map((lv) => ({ ...lv })),
  };
}

/** One Prometheus file_sd target group (https://prometheus.io/docs/guides/file-sd/). */
export interface FileSdGroup {
  readonly targets: string[];
  readonly labels: Record<string, string>;
}

function target(address: string, port: number): string {
  return `${bracketed(address)}:${port}`;
}

/**
 * node_exporter on the installed system (mdadm collector: the array alerts), and dropbear's port
 * for a blackbox banner probe: dropbear only listens while the host waits in its initramfs, so a
 * probe that succeeds for long means the host is locked (the initramfs alert).
 */
export function prometheusTargets(host: string, system: EnvironmentOutput, initramfs: EnvironmentOutput): FileSdGroup[] {
  return [
    { targets: [target(system.address, NODE_EXPORTER_PORT)], labels: { [LABELS.host]: host, [LABELS.role]: ROLES.node, [LABELS.environment]: "system" } },
    { targets: [target(initramfs.address, initramfs.port)], labels: { [LABELS.host]: host, [LABELS.role]: ROLES.initramfsProbe, [LABELS.environment]: "initramfs" } },
  ];
}
