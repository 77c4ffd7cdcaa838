// The seam between the Robot emulator (data: boot configs, resets) and the lab's QEMU
// supervisor (effects: VMs). The emulator decides *where* a server boots; the supervisor
// only carries it out. Tests of the emulator alone use a recording fake of this interface.

/** A host key the emulator minted for one rescue boot; the public half is reported as `host_key`. */
export interface RescueHostKey {
  /** OpenSSH key type, e.g. `ssh-ed25519`. */
  readonly type: string;
  /** OpenSSH private key (PEM-like `-----BEGIN OPENSSH PRIVATE KEY-----`). Lab only. */
  readonly privateKey: string;
  /** `ssh-ed25519 AAAA…` line. */
  readonly publicKey: string;
}

/** Everything a rescue boot needs; fixed at arm time, consumed by the next boot. */
export interface RescueBootSpec {
  /** Root password generated at arm time (lab only: the VM's sshd accepts it). */
  readonly password: string;
  /** Full OpenSSH public key lines of the keys selected by fingerprint at arm time. */
  readonly authorizedKeys: readonly string[];
  readonly hostKeys: readonly RescueHostKey[];
}

export type BootTarget = { readonly kind: "disk" } | { readonly kind: "rescue"; readonly rescue: RescueBootSpec };

export type PowerState = "running" | "off";

/**
 * Implemented by the lab supervisor. All methods return once the action has been started,
 * not when the guest is up: a real reset does not wait for the OS either.
 */
export interface PowerController {
  /** `hw`/`sw` reset: restart the server into `target`. A server that is off stays off. */
  reset(serverNumber: number, target: BootTarget): Promise<void>;
  /** `power_long`: forced off; stays off until `powerOn`. */
  powerOff(serverNumber: number): Promise<void>;
  /** `power` on a server that is off: boot it into `target`. */
  powerOn(serverNumber: number, target: BootTarget): Promise<void>;
  /** `power` on a running server: ACPI shutdown request (the guest decides). */
  powerButton(serverNumber: number): Promise<void>;
  state(serverNumber: number): Promise<PowerState>;
}

/**
 * Implemented by the emulator's model and called by the supervisor when a guest reboots by
 * itself: the next boot goes to rescue when rescue is armed (consuming the arm), else to disk.
 */
export interface BootArbiter {
  takeNextBoot(serverNumber: number): BootTarget;
}
