// md RAID and disk facts as the tools print them, parsed into typed values (pure): `mdadm --detail
// --export`, md's sysfs attributes, `mdadm --examine --scan`, mdadm.conf, fstab/crypttab, `lsblk -J -b`.
// Also the two judgements made from those facts: whether an installed system can boot (before the
// reboot that would find out the hard way), and how arrays drifted from what was installed.
//
// Provider code reaches this module, so it holds no module-level Set/Map/Symbol (Pulumi's closure
// serializer copies them as plain objects) and no live handles.

// ---------------------------------------------------------------------------------------------
// UUIDs

/**
 * mdadm prints array UUIDs as four colon-separated 8-hex groups (`3a1b2c3d:4e5f6a7b:…`), blkid
 * prints the same UUID of a member as a dashed RFC 4122 string. Both become 32 lowercase hex digits.
 */
export function normalizeMdUuid(text: string): string {
  return text.replace(/[:-]/g, "").toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// Arrays

export type MemberRole = "active" | "spare" | "faulty";

export interface MdMember {
  /** `/dev/nvme0n1p1` */
  readonly device: string;
  readonly role: MemberRole;
  /** Slot in the array for active members, null otherwise. */
  readonly slot: number | null;
}

export interface MdArrayFacts {
  /** `/dev/md0` */
  readonly device: string;
  /** 0, 1, 5, 6, 10; null for a container or an array md cannot name a level for. */
  readonly level: number | null;
  /** 32 lowercase hex digits (see normalizeMdUuid). */
  readonly uuid: string;
  /** Members the array is built for (raid_disks). */
  readonly raidDisks: number;
  readonly members: MdMember[];
  /** md's array_state: clean, active, inactive, readonly, … */
  readonly state: string;
  /** md's `degraded` count: members missing from the array. */
  readonly missingMembers: number;
  readonly sync: SyncFacts;
}

export interface SyncFacts {
  /** md's sync_action: idle, resync, recover, check, repair, frozen, reshape. */
  readonly action: string;
  /** Percentage of the running sync done, null when none runs. */
  readonly percent: number | null;
  /** KiB/s of the running sync, null when none runs. */
  readonly speedKiBs: number | null;
}

/** The sysfs attributes the probe reads next to `mdadm --detail --export`. */
export interface MdSysfs {
  readonly arrayState: string;
  readonly degraded: string;
  readonly syncAction: string;
  readonly syncCompleted: string;
  readonly syncSpeed: string;
  readonly raidDisks: string;
  /**
   * One line per member from md's `dev-NAME` directories: `<name> <state> <slot>`, e.g.
   * `nvme1n1p1 faulty none`. The kernel's own view; preferred over mdadm's export, which leaves
   * out a member that failed (observed with mdadm 4.2).
   */
  readonly devs?: string;
}

/** `mdadm --detail --export /dev/mdX` (KEY=value lines) → map. */
export function parseKeyValueLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim().replace(/^'(.*)'$/, "$1");
  }
  return out;
}

/**
 * One array from `mdadm --detail --export` and its sysfs attributes. Members appear as
 * `MD_DEVICE_<name>_ROLE` (a slot number, `spare` or `faulty`) and `MD_DEVICE_<name>_DEV`.
 */
export function parseMdArray(device: string, exportText: string, sysfs: MdSysfs): MdArrayFacts {
  const kv = parseKeyValueLines(exportText);
  if (!kv.MD_UUID) throw new Error(`mdadm --detail --export ${device}: expected MD_UUID, found ${JSON.stringify(exportText.slice(0, 200))}`);
  const members: MdMember[] = [];
  for (const key of Object.keys(kv)) {
    const m = /^MD_DEVICE_(.+)_ROLE$/.exec(key);
    if (!m) continue;
    const dev = kv[`MD_DEVICE_${m[1]}_DEV`] ?? `/dev/${m[1].replace(/^dev_/, "")}`;
    const role = kv[key];
    if (/^\d+$/.test(role)) members.push({ device: dev, role: "active", slot: Number(role) });
    else members.push({ device: dev, role: role === "faulty" ? "faulty" : "spare", slot: null });
  }
  const fromSysfs = parseMemberStates(sysfs.devs ?? "");
  if (fromSysfs.length > 0) members.splice(0, members.length, ...fromSysfs);
  members.sort((a, b) => a.device.localeCompare(b.device));
  const levelMatch = /^raid(\d+)$/.exec(kv.MD_LEVEL ?? "");
  return {
    device,
    level: levelMatch ? Number(levelMatch[1]) : null,
    uuid: normalizeMdUuid(kv.MD_UUID),
    raidDisks: toInt(sysfs.raidDisks) ?? toInt(kv.MD_DEVICES) ?? members.length,
    members,
    state: sysfs.arrayState.trim() || "unknown",
    missingMembers: toInt(sysfs.degraded) ?? 0,
    sync: parseSync(sysfs),
  };
}

/**
 * `<name> <state> <slot>` lines (md's dev-NAME/state and dev-NAME/slot) → members. A failed member is
 * `faulty`; one with a slot is active (in sync, or being rebuilt into that slot); else a spare.
 */
export function parseMemberStates(text: string): MdMember[] {
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length >= 2 && fields[0] !== "")
    .map(([name, state, slot = "none"]) => {
      const device = `/dev/${name}`;
      if (state.split(",").includes("faulty")) return { device, role: "faulty" as const, slot: null };
      return /^\d+$/.test(slot) ? { device, role: "active" as const, slot: Number(slot) } : { device, role: "spare" as const, slot: null };
    });
}

/** sync_action + sync_completed ("523776 / 6141952" or "none") + sync_speed → progress. */
export function parseSync(sysfs: Pick<MdSysfs, "syncAction" | "syncCompleted" | "syncSpeed">): SyncFacts {
  const action = sysfs.syncAction.trim() || "idle";
  const done = /^(\d+)\s*\/\s*(\d+)$/.exec(sysfs.syncCompleted.trim());
  const running = action !== "idle" && action !== "frozen" && done !== null && Number(done[2]) > 0;
  return {
    action,
    percent: running && done ? Math.floor((1000 * Number(done[1])) / Number(done[2])) / 10 : null,
    speedKiBs: running ? toInt(sysfs.syncSpeed) : null,
  };
}

function toInt(text: string | undefined): number | null {
  return text !== undefined && /^\s*\d+\s*$/.test(text) ? Number(text) : null;
}

/** Whether an array runs short of members or carries a failed one. */
export function isDegraded(array: MdArrayFacts): boolean {
  return array.missingMembers > 0 || array.members.some((m) => m.role === "faulty") || array.members.filter((m) => m.role === "active").length < array.raidDisks;
}

// ---------------------------------------------------------------------------------------------
// Superblocks and mdadm.conf

export interface ArrayLine {
  /** `/dev/md/0`, `/dev/md0`, or null when the line names none. */
  readonly device: string | null;
  readonly uuid: string;
}

/** `ARRAY <dev> … UUID=<uuid> …` lines (mdadm.conf, `mdadm --examine --scan`, `--detail --scan`). */
export function parseArrayLines(text: string): ArrayLine[] {
  const out: ArrayLine[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line.startsWith("ARRAY")) continue;
    const uuid = /\bUUID=([0-9A-Fa-f:-]+)/.exec(line);
    if (!uuid) continue;
    const device = line.split(/\s+/)[1];
    out.push({ device: device && device.startsWith("/dev/") ? device : null, uuid: normalizeMdUuid(uuid[1]) });
  }
  return out;
}

/** `UUID=…` references in fstab/crypttab lines that are not comments, with the line's first field. */
export function uuidReferences(text: string): { readonly uuid: string; readonly line: string }[] {
  const refs: { uuid: string; line: string }[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    for (const m of line.matchAll(/(?:^|\s)UUID=([0-9A-Fa-f-]+)/g)) refs.push({ uuid: m[1].toLowerCase(), line });
  }
  return refs;
}

/** Every UUID in `blkid -o export` output (filesystems, LUKS containers, md members, PVs). */
export function blkidUuids(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^(UUID|UUID_SUB)=(.+)$/.exec(line.trim());
    if (m) out.push(m[2].toLowerCase());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Drives (lsblk -J -b)

export interface BlockNode {
  readonly name: string;
  readonly path: string;
  readonly type: string;
  readonly sizeBytes: number;
  readonly serial: string | null;
  readonly wwn: string | null;
  readonly fstype: string | null;
  readonly mountpoint: string | null;
  readonly children: BlockNode[];
}

interface RawLsblkNode {
  name?: string;
  path?: string;
  type?: string;
  size?: number | string;
  serial?: string | null;
  wwn?: string | null;
  fstype?: string | null;
  mountpoint?: string | null;
  children?: RawLsblkNode[];
}

/** `lsblk -J -b -o NAME,PATH,TYPE,SIZE,SERIAL,WWN,FSTYPE,MOUNTPOINT <disks>` → trees. */
export function parseLsblk(json: unknown): BlockNode[] {
  const devices = (json as { blockdevices?: RawLsblkNode[] } | null)?.blockdevices;
  if (!Array.isArray(devices)) throw new Error(`lsblk: expected {"blockdevices":[…]}, found ${JSON.stringify(json)?.slice(0, 200)}`);
  return devices.map(toNode);
}

function toNode(raw: RawLsblkNode): BlockNode {
  const text = (v: string | null | undefined) => (typeof v === "string" && v.trim() !== "" ? v.trim() : null);
  return {
    name: raw.name ?? "",
    path: raw.path ?? `/dev/${raw.name ?? ""}`,
    type: raw.type ?? "",
    sizeBytes: Number(raw.size ?? 0),
    serial: text(raw.serial),
    wwn: text(raw.wwn),
    fstype: text(raw.fstype),
    mountpoint: text(raw.mountpoint),
    children: (raw.children ?? []).map(toNode),
  };
}

/** Everything stacked on a node, depth first (partitions, arrays, mappings, LVs). */
export function descendants(node: BlockNode): BlockNode[] {
  return node.children.flatMap((child) => [child, ...descendants(child)]);
}

// ---------------------------------------------------------------------------------------------
// Boot check (pure): can the installed system boot from these drives?

export interface BootFacts {
  readonly firmware: "bios" | "uefi";
  /** Per member drive: whether its first sector carries GRUB's boot code. */
  readonly mbrGrub: readonly { readonly drive: string; readonly grub: boolean }[];
  /** UEFI: whether the ESP holds the removable-path loader EFI/BOOT/BOOTX64.EFI; null when there is no ESP to look at. */
  readonly espLoader: boolean | null;
  /** Text of the installed system's /etc/mdadm/mdadm.conf, null when absent. */
  readonly mdadmConf: string | null;
  readonly fstab: string | null;
  readonly crypttab: string | null;
  /** Every UUID blkid sees. */
  readonly knownUuids: readonly string[];
  /** UUIDs of the assembled arrays (normalised). */
  readonly arrayUuids: readonly string[];
  /** Whether the layout uses md RAID at all. */
  readonly raid: boolean;
  /** Whether the layout encrypts anything (crypttab then must name the containers). */
  readonly crypt: boolean;
}

/**
 * The pieces the installed system needs to boot, each missing one as a sentence naming it:
 * GRUB on every member drive (BIOS) or the ESP loader (UEFI), mdadm.conf listing exactly the
 * assembled arrays (the initramfs assembles from it), and every fstab/crypttab UUID existing.
 * Empty = bootable as far as can be seen from rescue.
 */
export function bootProblems(facts: BootFacts): string[] {
  const problems: string[] = [];
  if (facts.firmware === "bios") {
    for (const { drive, grub } of facts.mbrGrub) {
      if (!grub) problems.push(`no GRUB boot code in the first sector of ${drive}: the server cannot boot from this drive if the other fails (grub-install did not run on it)`);
    }
  } else if (facts.espLoader !== true) {
    problems.push("the EFI system partition has no EFI/BOOT/BOOTX64.EFI: UEFI firmware finds no loader (grub-install --removable did not run)");
  }
  if (facts.raid) {
    if (facts.mdadmConf === null) problems.push("the installed system has no /etc/mdadm/mdadm.conf: its initramfs cannot assemble the arrays");
    else {
      const listed = parseArrayLines(facts.mdadmConf).map((a) => a.uuid);
      const missing = facts.arrayUuids.filter((u) => !listed.includes(u));
      const stale = listed.filter((u) => !facts.arrayUuids.includes(u));
      if (missing.length > 0) problems.push(`mdadm.conf lacks ARRAY lines for the assembled arrays ${missing.map(formatMdUuid).join(", ")}: the initramfs would not assemble them`);
      if (stale.length > 0) problems.push(`mdadm.conf names arrays that do not exist (${stale.map(formatMdUuid).join(", ")}): a stale file from an earlier install`);
    }
  }
  if (facts.fstab === null) problems.push("the installed system has no /etc/fstab");
  const known = facts.knownUuids.map((u) => u.toLowerCase());
  for (const [file, text] of [["fstab", facts.fstab], ["crypttab", facts.crypttab]] as const) {
    for (const ref of uuidReferences(text ?? "")) {
      if (!known.includes(ref.uuid)) problems.push(`/etc/${file} refers to UUID=${ref.uuid}, which no device carries ("${ref.line}")`);
    }
  }
  if (facts.crypt && uuidReferences(facts.crypttab ?? "").length === 0) {
    problems.push("the layout encrypts a partition but /etc/crypttab names no container: the initramfs would not ask for the passphrase");
  }
  return problems;
}

/** 32 hex → mdadm's `xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx` for messages. */
export function formatMdUuid(uuid: string): string {
  return (uuid.match(/.{1,8}/g) ?? [uuid]).join(":");
}
