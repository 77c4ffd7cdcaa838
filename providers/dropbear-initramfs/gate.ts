// The bootability gate (pure): does the built initrd reach the network, start dropbear with our key
// and our operators' keys, and know how to assemble and unlock the root? And does GRUB boot that
// kernel with that initrd? Anything missing is named with how to fix it, before any reboot: a host
// rebooted into an initramfs nobody can reach needs a KVM console ticket to recover.
//
// The facts come from gate-facts.sh (one round trip, `parseGateFacts` reads its records); what the
// image must hold is rendered from the inputs (render.ts), the same text that was written.
import { normalizeMdUuid, parseArrayLines } from "../storage/md";
import type { GateExpectation, GateProblem, HostFacts, InitrdFacts } from "./types";

export interface GateFacts {
  readonly initrd: InitrdFacts;
  readonly host: HostFacts;
}

/** Reads gate-facts.sh's records. Unknown record kinds are ignored (a newer script, an older parser). */
export function parseGateFacts(text: string): GateFacts {
  let kernelVersion = "";
  let initrdPath: string | null = null;
  const listing: string[] = [];
  const files: Record<string, string> = {};
  const hostKeySha256: Record<string, string> = {};
  const arrayUuids: string[] = [];
  let nic: HostFacts["nic"] = null;
  let crypttab = "";
  let grubCfg = "";
  const decode = (b64: string | undefined) => Buffer.from(b64 ?? "", "base64").toString("utf8");
  for (const line of text.split("\n")) {
    const space = line.indexOf(" ");
    if (space < 0) continue;
    const kind = line.slice(0, space);
    const rest = line.slice(space + 1);
    const [first, second] = rest.split(" ");
    switch (kind) {
      case "kernel":
        kernelVersion = rest === "-" ? "" : rest;
        break;
      case "initrd":
        initrdPath = rest === "-" ? null : rest;
        break;
      case "path":
        listing.push(rest);
        break;
      case "file":
        files[first] = decode(second);
        break;
      case "keysha":
        hostKeySha256[first] = second ?? "";
        break;
      case "array":
        arrayUuids.push(rest.trim());
        break;
      case "nic":
        nic = { name: first, module: second === "-" || !second ? null : second };
        break;
      case "crypttab":
        crypttab = decode(rest);
        break;
      case "grub":
        grubCfg = decode(rest);
        break;
    }
  }
  return { initrd: { kernelVersion, initrdPath, listing, files, hostKeySha256 }, host: { arrayUuids, nic, crypttab, grubCfg } };
}

const BIN_DIRS = ["sbin", "bin", "usr/sbin", "usr/bin"];

function hasBinary(listing: ReadonlySet<string>, name: string): boolean {
  return BIN_DIRS.some((dir) => listing.has(`${dir}/${name}`));
}

/** The module's file in the image (`…/virtio_net.ko`, `.ko.xz`, `.ko.zst`; "-" and "_" are the same to modprobe). */
function hasModule(listing: readonly string[], kernelVersion: string, module: string): boolean {
  const want = module.replace(/-/g, "_");
  return listing.some((path) => {
    const match = /^(?:usr\/)?lib\/modules\/([^/]+)\/.*\/([^/]+)\.ko(?:\.(?:xz|zst|gz))?$/.exec(path);
    return match !== null && match[1] === kernelVersion && match[2].replace(/-/g, "_") === want;
  });
}

/** Non-comment, non-empty lines. */
function contentLines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

interface CrypttabEntry {
  readonly name: string;
  readonly source: string;
}

function parseCrypttab(text: string): CrypttabEntry[] {
  return contentLines(text).map((line) => {
    const [name, source] = line.split(/\s+/);
    return { name, source: source ?? "" };
  });
}

/** The first top-level menuentry of grub.cfg (what `set default="0"` boots): its linux and initrd lines. */
export function defaultGrubEntry(grubCfg: string): { linux: string; args: string[]; initrds: string[] } | null {
  const lines = grubCfg.split("\n");
  let depth = 0;
  let inEntry = false;
  let linux: string | null = null;
  let args: string[] = [];
  let initrds: string[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!inEntry && depth === 0 && /^menuentry\s/.test(line)) {
      inEntry = true;
    } else if (inEntry) {
      const words = line.split(/\s+/);
      if (words[0] === "linux" || words[0] === "linuxefi") {
        linux = words[1] ?? "";
        args = words.slice(2);
      } else if (words[0] === "initrd" || words[0] === "initrdefi") {
        initrds = words.slice(1);
      }
    }
    if (line.endsWith("{")) depth++;
    if (line === "}") {
      depth--;
      if (inEntry && depth === 0) return linux === null ? null : { linux, args, initrds };
    }
  }
  return null;
}

/**
 * What is missing or wrong in the built image, each with the fix. [] means the host may reboot.
 * `module` is the NIC's driver module as the host reports it (null when built into the kernel).
 */
export function gateProblems(facts: GateFacts, expected: GateExpectation): GateProblem[] {
  const { initrd, host } = facts;
  const problems: GateProblem[] = [];
  const add = (piece: string, message: string) => problems.push({ piece, message });
  const kernel = initrd.kernelVersion;
  const rebuild = `rebuild it (\`update-initramfs -u -k ${kernel || "<version>"}\`); \`pulumi up\` does both`;

  if (!kernel) {
    add("kernel", "no kernel found in /boot of the installed root (no vmlinuz-*); reinstall the image (InstallImage) before setting up dropbear");
    return problems;
  }
  if (initrd.initrdPath === null) {
    add("initrd", `there is no /boot/initrd.img-${kernel} for the newest kernel ${kernel}; build it with \`update-initramfs -c -k ${kernel}\` (\`pulumi up\` does)`);
    return problems;
  }
  const listing = new Set(initrd.listing);

  if (!hasBinary(listing, "dropbear")) {
    add("dropbear", `the image has no dropbear binary: dropbear-initramfs is not installed, or its hook did not run; install dropbear-initramfs and ${rebuild}`);
  }
  const ourKey = "etc/dropbear/dropbear_ed25519_host_key";
  const keySha = initrd.hostKeySha256[ourKey];
  if (keySha === undefined) {
    add("host key", `the image has no ${ourKey}: dropbear would start with no host key (or one it generates at boot) and the pinned fingerprint could never match; write the stack's key to the dropbear directory and ${rebuild}`);
  } else if (keySha !== expected.hostKeySha256) {
    add("host key", `the image's ${ourKey} is not the key the stack pins (its fingerprint would not match, and the unlock would refuse to send the passphrase); write the stack's key and ${rebuild}`);
  }
  for (const path of Object.keys(initrd.hostKeySha256).filter((p) => p !== ourKey).sort()) {
    add("host key", `the image also carries ${path}, a host key the stack does not pin: dropbear may present it instead of the pinned one; remove it from the dropbear directory and ${rebuild}`);
  }

  const passwd = initrd.files["etc/passwd"] ?? "";
  const home = /^root:[^:]*:[^:]*:[^:]*:[^:]*:([^:]*):/m.exec(passwd)?.[1];
  const keysPath = home ? `${home.replace(/^\//, "")}/.ssh/authorized_keys` : null;
  const keysText = keysPath ? initrd.files[keysPath] : undefined;
  if (keysText === undefined) {
    add("authorized_keys", `the image has no authorized_keys for root${home ? ` (expected ${home}/.ssh/authorized_keys)` : " (no root entry in etc/passwd)"}: nobody could log in to dropbear; write authorized_keys at the path this release reads and ${rebuild}`);
  } else {
    const have = new Set(contentLines(keysText));
    const missing = contentLines(expected.authorizedKeys).filter((line) => !have.has(line));
    const extra = [...have].filter((line) => !contentLines(expected.authorizedKeys).includes(line));
    if (missing.length > 0 || extra.length > 0) {
      add("authorized_keys", `the image's authorized_keys differs from the stack's (${missing.length} key line(s) missing, ${extra.length} not in the stack): the image was built before the keys were written, or they were written to another release's path; ${rebuild}`);
    }
  }

  const config = initrd.files[expected.imageConfigPath];
  if (config === undefined) {
    add("dropbear config", `the image has no ${expected.imageConfigPath}: dropbear would listen on port 22 with its defaults; write the config at the path this release reads and ${rebuild}`);
  } else if (config !== expected.dropbearConfig) {
    add("dropbear config", `the image's ${expected.imageConfigPath} is not the stack's (port, options or IFDOWN differ); ${rebuild}`);
  }

  const confd = initrd.files[`conf/conf.d/${expected.confd.name}`];
  if (confd === undefined) {
    add("network", `the image has no conf/conf.d/${expected.confd.name} (IP= and BOOTIF=): the initramfs would not configure the network the stack asks for; write /etc/initramfs-tools/conf.d/${expected.confd.name} and ${rebuild}`);
  } else if (confd !== expected.confd.text) {
    add("network", `the image's conf/conf.d/${expected.confd.name} is not the stack's (IP=, BOOTIF= or the IPv6 settings differ); ${rebuild}`);
  }
  for (const script of expected.scripts) {
    if (!listing.has(`scripts/${script}`)) add("network", `the image has no scripts/${script}; write /etc/initramfs-tools/scripts/${script} (executable) and ${rebuild}`);
  }
  if (!hasBinary(listing, "busybox")) add("busybox", `the image has no busybox (cryptroot-unlock and the network cleanup need it); install busybox, set BUSYBOX=y and ${rebuild}`);

  const tab = initrd.files["cryptroot/crypttab"] ?? initrd.files["conf/conf.d/cryptroot"];
  const system = parseCrypttab(host.crypttab);
  if (tab === undefined || parseCrypttab(tab).length === 0) {
    add("cryptroot", `the image has no cryptroot configuration (cryptroot/crypttab): it would not ask for the passphrase and the root would never be found; install cryptsetup-initramfs, make sure /etc/crypttab names the root's LUKS device${system.length > 0 ? ` (it has ${system.map((e) => e.name).join(", ")})` : " (it is empty)"}, and ${rebuild}`);
  } else {
    for (const entry of parseCrypttab(tab)) {
      if (!system.some((s) => s.name === entry.name && s.source === entry.source)) {
        add("cryptroot", `the image unlocks ${entry.name} from ${entry.source}, which /etc/crypttab no longer names: the image is older than the crypttab; ${rebuild}`);
      }
    }
  }
  if (!hasBinary(listing, "cryptroot-unlock")) add("cryptroot", `the image has no cryptroot-unlock, which the unlock over SSH runs; install cryptsetup-initramfs and ${rebuild}`);

  if (host.arrayUuids.length > 0) {
    const conf = initrd.files["etc/mdadm/mdadm.conf"];
    const inImage = new Set(parseArrayLines(conf ?? "").map((a) => a.uuid));
    const missing = host.arrayUuids.filter((uuid) => !inImage.has(normalizeMdUuid(uuid)));
    if (conf === undefined) add("mdadm.conf", `the image has no etc/mdadm/mdadm.conf: the arrays ${host.arrayUuids.join(", ")} might not assemble; run \`mdadm --detail --scan >> /etc/mdadm/mdadm.conf\` in the installed root and ${rebuild}`);
    else if (missing.length > 0) add("mdadm.conf", `the image's mdadm.conf has no ARRAY line for ${missing.join(", ")}: that array would not assemble and the root would not be found; add it with \`mdadm --detail --scan\` to /etc/mdadm/mdadm.conf and ${rebuild}`);
    if (!hasBinary(listing, "mdadm")) add("mdadm", `the image has no mdadm, so no array would assemble; install mdadm in the installed root and ${rebuild}`);
  }
  if (!hasBinary(listing, "lvm")) add("lvm", `the image has no lvm, so the root LV inside LUKS would not activate; install lvm2 in the installed root and ${rebuild}`);

  if (host.nic === null) {
    add("NIC driver", "no interface of this host has the configured MAC address (network.mac): the initramfs would configure nothing; set network.mac to the MAC of the interface the server is reached through (`ip link`)");
  } else if (host.nic.module !== null && !hasModule(initrd.listing, kernel, host.nic.module)) {
    add("NIC driver", `the image has no ${host.nic.module} module for ${host.nic.name}: dropbear would have no network; add ${host.nic.module} to /etc/initramfs-tools/modules and ${rebuild}`);
  }

  const entry = defaultGrubEntry(host.grubCfg);
  if (entry === null) {
    add("GRUB", "grub.cfg has no menuentry with a linux line: the host would not boot at all; run `update-grub` in the installed root");
  } else {
    if (!entry.linux.endsWith(`/vmlinuz-${kernel}`)) add("GRUB", `GRUB's default entry boots ${entry.linux}, not the kernel ${kernel} whose initrd was checked; run \`update-grub\` in the installed root`);
    if (!entry.initrds.some((p) => p.endsWith(`/initrd.img-${kernel}`))) add("GRUB", `GRUB's default entry loads ${entry.initrds.join(" ") || "no initrd"}, not initrd.img-${kernel}; run \`update-grub\` in the installed root`);
    const ip = entry.args.find((a) => a.startsWith("ip="));
    if (ip) add("GRUB", `GRUB's kernel command line sets ${ip}, which overrides the initramfs network of the stack; remove it from GRUB_CMDLINE_LINUX in /etc/default/grub and run \`update-grub\``);
  }
  return problems;
}
