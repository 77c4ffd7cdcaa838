// Pure: one lab server + one boot → the qemu-system-x86_64 argv. No file system, no processes,
// so the whole VM shape is visible in a table test.

import type { LabServerConfig } from "../config";

/** Name of the fw_cfg blob the rescue init reads (contract: /sys/firmware/qemu_fw_cfg/by_name/…/raw). */
export const RESCUE_FW_CFG_NAME = "opt/hetzner-fde/rescue.json";
export const IMAGES_MOUNT_TAG = "hfde_images";
export const INSTALL_MOUNT_TAG = "hfde_install";
/** Guest port dropbear listens on in the installed system's initramfs. */
export const GUEST_DROPBEAR_PORT = 2222;

export type Accel = "tcg" | "tcg-multi" | "kvm";

export interface DiskBootLaunch {
  readonly kind: "disk";
}

export interface RescueBootLaunch {
  readonly kind: "rescue";
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
  /** Where QEMU reads rescue.json from; the supervisor passes a pipe (/dev/fd/N) so secrets never touch disk. */
  readonly rescueJson: string;
  /** Exposed read-only as /root/.oldroot/nfs/images. */
  readonly imagesDir: string;
  /** Exposed read-only as /root/.oldroot/nfs/install. */
  readonly installDir: string;
}

export interface VmPaths {
  /** One qcow2 per configured disk, in order. */
  readonly disks: readonly string[];
  readonly consoleLog: string;
  readonly qmpSocket: string;
  readonly pidFile: string;
  /** Per-server writable copy of OVMF_VARS (UEFI only). */
  readonly ovmfVars?: string;
  /** Read-only OVMF code image (UEFI only). */
  readonly ovmfCode?: string;
}

export interface VmLaunch {
  readonly server: LabServerConfig;
  readonly paths: VmPaths;
  readonly boot: DiskBootLaunch | RescueBootLaunch;
  readonly accel: Accel;
  /** Indexes of the disks physically out of the chassis for this boot (lab/supervisor/drives.ts). Default none. */
  readonly pulledDrives?: readonly number[];
}

export function qemuArgv(launch: VmLaunch): string[] {
  const { server, paths, boot } = launch;
  return [
    "-name", `${server.name},process=hfde-lab-${server.number}`,
    // graphics=off makes SeaBIOS mirror its screen to the serial port, so "No bootable device."
    // lands in the console log instead of an invisible VGA buffer.
    "-machine", "q35,graphics=off",
    ...accelArgs(launch.accel),
    "-smp", String(server.cpus),
    "-m", String(server.memoryMiB),
    "-nodefaults", "-display", "none",
    // A VGA card nobody looks at: without any video device Debian's GRUB stops after "Welcome to
    // GRUB!" and the installed system never boots (observed with the bookworm image; with -vga std
    // the same disks reach sshd in about a minute). graphics=off still mirrors SeaBIOS to serial.
    "-vga", "std",
    // strict: firmware tries only devices with a bootindex (the disks), so a blank server says
    // "No bootable device" after the disks instead of also probing a floppy.
    "-boot", "strict=on",
    // A guest reboot must come back through the supervisor, which decides rescue vs disk.
    "-no-reboot",
    "-pidfile", paths.pidFile,
    "-qmp", `unix:${optValue(paths.qmpSocket)},server=on,wait=off`,
    "-chardev", `file,id=console,path=${optValue(paths.consoleLog)}`,
    "-serial", "chardev:console",
    ...firmwareArgs(server, paths),
    ...networkArgs(server),
    // -kernel claims bootindex 0 for its option ROM, so a rescue boot numbers the disks from 1.
    ...diskArgs(server, paths.disks, boot.kind === "rescue" ? 1 : 0, launch.pulledDrives),
    ...(boot.kind === "rescue" ? rescueArgs(boot) : []),
  ];
}

/**
 * `tb-size=64` (MiB of translated code; QEMU's default is 1 GiB): QEMU 7.2 keeps, per guest page, the
 * list of blocks translated from it, and every store into such a page walks that list until no block
 * is left. When an initramfs hands over to the real root, the pages its programs ran from are freed
 * and reused, and with a cache that never fills their stale blocks stay forever: after a dropbear
 * unlock the system crawled (page clearing at seconds per page, soft lockups, emergency mode) in 8 of
 * 9 runs, and got through in every run since. A small cache fills during the boot and is flushed
 * whole, which drops every stale block (profile and runs in bench/RESULTS.md, "The post-unlock stall").
 */
export const LAB_TCG_OPTIONS = "tb-size=64";

export function accelArgs(accel: Accel): string[] {
  switch (accel) {
    case "kvm":
      return ["-accel", "kvm", "-cpu", "host"];
    case "tcg-multi":
      return ["-accel", `tcg,thread=multi,${LAB_TCG_OPTIONS}`, "-cpu", "max"];
    case "tcg":
      return ["-accel", `tcg,${LAB_TCG_OPTIONS}`, "-cpu", "max"];
  }
}

function firmwareArgs(server: LabServerConfig, paths: VmPaths): string[] {
  if (server.firmware === "bios") return [];
  if (!paths.ovmfCode || !paths.ovmfVars) {
    throw new Error(`server ${server.number} (${server.name}) uses firmware "uefi" but no OVMF code/vars paths were given`);
  }
  return [
    "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${optValue(paths.ovmfCode)}`,
    "-drive", `if=pflash,format=raw,unit=1,file=${optValue(paths.ovmfVars)}`,
  ];
}

function networkArgs(server: LabServerConfig): string[] {
  // Loopback only: the rescue accepts a lab password, which must not be reachable from the LAN.
  const forwards = [
    `hostfwd=tcp:127.0.0.1:${server.sshPort}-:22`,
    `hostfwd=tcp:127.0.0.1:${server.dropbearPort}-:${GUEST_DROPBEAR_PORT}`,
  ];
  // romfile= skips the iPXE option ROM: SeaBIOS would otherwise try a network boot before giving up.
  return ["-netdev", `user,id=n0,${forwards.join(",")}`, "-device", "virtio-net-pci,netdev=n0,romfile="];
}

/**
 * Drive and device args for every disk still in the chassis. A pulled disk is left out entirely; the
 * others keep their own serial (and, on SATA, their own port), so a drive stays identifiable by
 * serial while the guest's /dev/nvmeXn1 names renumber, as on real hardware. The remaining disks
 * keep their order and take the boot indexes from `firstBootIndex` on, so firmware tries the first
 * drive still in first, as a real BIOS does when the first slot is empty.
 */
export function diskArgs(server: LabServerConfig, disks: readonly string[], firstBootIndex = 0, pulled: readonly number[] = []): string[] {
  if (disks.length !== server.disks.count) {
    throw new Error(`server ${server.number} has disks.count ${server.disks.count} but ${disks.length} disk files were given`);
  }
  const bad = pulled.filter((i) => !Number.isInteger(i) || i < 0 || i >= disks.length);
  if (bad.length > 0) throw new Error(`server ${server.number} has disks 0 to ${disks.length - 1}, but disk ${bad.join(", ")} is marked pulled`);
  const present = disks.map((file, index) => ({ file, index })).filter((d) => !pulled.includes(d.index));
  if (present.length === 0) throw new Error(`server ${server.number} has every disk pulled; insert one (npm run lab -- drive insert ${server.number} 0)`);
  return present.flatMap(({ file, index }, position) => {
    const id = `${server.disks.type}${index}`;
    // cache=unsafe: a guest flush must not become an fsync on the shared host disk. Under load those
    // fsyncs stalled emulated NVMe I/O past the guest's timeout, and md dropped a member mid-install.
    // Resets go through QMP quit, which still writes QEMU's caches to the image file, so a reset
    // loses only what the guest itself had not written, as a power cut would.
    const drive = ["-drive", `file=${optValue(file)},if=none,id=${id},format=qcow2,discard=unmap,cache=unsafe`];
    // bootindex makes firmware try the disks in order and nothing else (no floppy, no PXE).
    const bootIndex = firstBootIndex + position;
    const device =
      server.disks.type === "nvme"
        ? `nvme,drive=${id},serial=${diskSerial(server, index)},bootindex=${bootIndex}`
        : `ide-hd,drive=${id},bus=ide.${index},serial=${diskSerial(server, index)},bootindex=${bootIndex}`;
    return [...drive, "-device", device];
  });
}

function rescueArgs(boot: RescueBootLaunch): string[] {
  return [
    "-kernel", boot.kernel,
    "-initrd", boot.initrd,
    "-append", boot.cmdline,
    "-fw_cfg", `name=${RESCUE_FW_CFG_NAME},file=${optValue(boot.rescueJson)}`,
    ...virtfs(boot.imagesDir, IMAGES_MOUNT_TAG, "fs_images"),
    ...virtfs(boot.installDir, INSTALL_MOUNT_TAG, "fs_install"),
  ];
}

function virtfs(dir: string, tag: string, id: string): string[] {
  return ["-virtfs", `local,path=${optValue(dir)},mount_tag=${tag},security_model=none,readonly=on,id=${id}`];
}

/**
 * Kernel command line of a rescue boot. No `panic=`: a panicking rescue halts where the
 * supervisor's console watch reports it, instead of rebooting into the disk and hiding it.
 */
export function rescueCmdline(extra: readonly string[] = []): string {
  return ["console=ttyS0,115200n8", ...LAB_NVME_KERNEL_ARGS, ...extra].join(" ");
}

/**
 * Kernel arguments for the emulated NVMe, in the rescue and (through the lab installimage) in the
 * installed system.
 *
 * `nvme.io_queue_depth=2`: one I/O command in flight per queue. QEMU 7.2's NVMe loses whole
 * batches of commands (observed: 4 and 18 consecutive commands never completed, on an idle host).
 * Linux uses the controller's shadow doorbells and rings the real doorbell only when QEMU's
 * EventIdx says so; QEMU writes EventIdx and then reads the shadow doorbell with no full barrier
 * between, so a submission made while QEMU works through the queue can be seen by neither side.
 * With one command in flight the next submission only comes after its completion, long after
 * QEMU's EventIdx write, so the guest always rings. The kernel's own recovery (abort, then a
 * controller reset after 2 × io_timeout) did not bring such a disk back.
 *
 * `nvme_core.io_timeout=300`: commands can also be slow for minutes when two VMs share the two
 * cores (217 s, ~230 s seen); the default 30 s turns that into a reset that drops the disk.
 */
export const LAB_NVME_KERNEL_ARGS = ["nvme.io_queue_depth=2", "nvme_core.io_timeout=300"];

/** The serial number a lab server's i-th NVMe disk reports (what tests pin drives by). */
export function nvmeSerial(serverNumber: number, index: number): string {
  return `LAB${serverNumber}N${index}`;
}

/** The serial number a lab server's i-th disk reports, NVMe or SATA. */
export function diskSerial(server: LabServerConfig, index: number): string {
  return server.disks.type === "nvme" ? nvmeSerial(server.number, index) : `LAB${server.number}S${index}`;
}

/** QEMU splits option values at commas; a literal comma is written twice. */
export function optValue(value: string): string {
  return value.replace(/,/g, ",,");
}
