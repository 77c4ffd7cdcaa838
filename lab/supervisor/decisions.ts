// Pure decisions of the supervisor, kept apart from the processes they drive:
// what a Robot power action does to a server in a given state, what happens when QEMU exits,
// and whether a console shows a boot that went nowhere.

import type { BootTarget, PowerState } from "../robot/power";

export type PowerAction =
  | { readonly kind: "reset"; readonly target: BootTarget }
  | { readonly kind: "powerOff" }
  | { readonly kind: "powerOn"; readonly target: BootTarget }
  | { readonly kind: "powerButton" };

/** What the supervisor does to the VM process. */
export type VmEffect =
  | { readonly kind: "none"; readonly why: string }
  | { readonly kind: "start"; readonly target: BootTarget }
  /** Stop the running QEMU, then start it again into `target`. */
  | { readonly kind: "restart"; readonly target: BootTarget }
  | { readonly kind: "stop" }
  | { readonly kind: "acpiPowerdown" };

export function decidePowerAction(action: PowerAction, state: PowerState): VmEffect {
  switch (action.kind) {
    case "reset":
      // Real Robot accepts hw/sw resets on a server that is off and nothing boots.
      return state === "running" ? { kind: "restart", target: action.target } : { kind: "none", why: "server is off; a reset does not power it on" };
    case "powerOff":
      return state === "running" ? { kind: "stop" } : { kind: "none", why: "server is already off" };
    case "powerOn":
      return state === "off" ? { kind: "start", target: action.target } : { kind: "none", why: "server is already running" };
    case "powerButton":
      return state === "running" ? { kind: "acpiPowerdown" } : { kind: "none", why: "server is off; the power button on an off server is powerOn" };
  }
}

/** Why QEMU went away, from QMP's SHUTDOWN event (`reason`) and the process exit. */
export interface VmExit {
  /** QMP SHUTDOWN reason, e.g. `guest-reset` (with -no-reboot), `guest-shutdown`, `guest-panic`, `host-qmp-quit`. */
  readonly shutdownReason?: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
}

/** What the supervisor itself asked for before QEMU exited; absent when the exit was not ours. */
export type ExitIntent = { readonly kind: "restart"; readonly target: BootTarget } | { readonly kind: "stayOff" };

export type AfterExit =
  | { readonly kind: "boot"; readonly target: BootTarget }
  /** Guest rebooted by itself: the Robot emulator decides (rescue if armed, consuming the arm, else disk). */
  | { readonly kind: "bootNext" }
  | { readonly kind: "off"; readonly failure?: string };

export function decideAfterExit(intent: ExitIntent | undefined, exit: VmExit): AfterExit {
  if (intent?.kind === "restart") return { kind: "boot", target: intent.target };
  if (intent?.kind === "stayOff") return { kind: "off" };
  switch (exit.shutdownReason) {
    case "guest-reset":
      return { kind: "bootNext" };
    case "guest-shutdown":
      return { kind: "off" };
    case "guest-panic":
      return { kind: "off", failure: "the guest kernel panicked" };
    default:
      return { kind: "off", failure: describeUnexpectedExit(exit) };
  }
}

function describeUnexpectedExit(exit: VmExit): string {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
  const reason = exit.shutdownReason ? ` after shutdown reason "${exit.shutdownReason}"` : "";
  return `QEMU ${how}${reason} without the supervisor asking; the server is now off`;
}

/** Console patterns of a boot that will not reach an OS; each with the sentence a user sees. */
const BOOT_FAILURES: ReadonlyArray<{ readonly pattern: RegExp; readonly reason: string }> = [
  { pattern: /No bootable device/, reason: "firmware found no bootable device (blank or unbootable disks)" },
  { pattern: /Kernel panic - not syncing/, reason: "the kernel panicked" },
  { pattern: /^grub rescue>/m, reason: "GRUB could not load its modules or config and dropped to `grub rescue>`" },
  { pattern: /BdsDxe: No bootable option or device was found/, reason: "UEFI firmware found no bootable option or device" },
  // Debian's OVMF falls back to its built-in shell when no disk boots: the UEFI "no bootable device".
  { pattern: /BdsDxe: starting Boot[0-9A-F]+ "EFI Internal Shell"/, reason: "UEFI firmware found no bootable disk and started the EFI shell" },
  { pattern: /Gave up waiting for root file system device/, reason: "the initramfs gave up waiting for the root device" },
];

/** The first boot failure visible in a console log, if any. */
export function detectBootFailure(console: string): string | undefined {
  return BOOT_FAILURES.find((f) => f.pattern.test(console))?.reason;
}

/** Last `lines` lines of a console, with terminal escape sequences stripped so it reads in an error message. */
export function consoleTailOf(text: string, lines: number): string {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[c78=>]/g, "").replace(/\r/g, "");
  const all = plain.split("\n");
  while (all.length > 0 && all[all.length - 1].trim() === "") all.pop();
  return all.slice(-lines).join("\n");
}

/** Console file name of one boot (contract: console-<bootNo>-<rescue|disk>.log). */
export function consoleFileName(bootNo: number, mode: BootTarget["kind"]): string {
  return `console-${bootNo}-${mode}.log`;
}

/** Next boot number given the console files already in a server's directory, so numbering survives `down`/`up`. */
export function nextBootNo(existingFiles: readonly string[]): number {
  const numbers = existingFiles.map((f) => /^console-(\d+)-(?:rescue|disk)\.log$/.exec(f)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]));
  return numbers.length === 0 ? 1 : Math.max(...numbers) + 1;
}
