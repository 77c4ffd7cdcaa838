// Mount points of partitions, logical volumes and the mirror: absolute, normalised, and not a
// directory the running system needs on its root filesystem or a kernel pseudo-filesystem.

/**
 * Directories that cannot be a separate filesystem: the pseudo-filesystems (/proc, /sys, /dev,
 * /run: the kernel and systemd mount them) and what the initramfs or early boot reads from the
 * root filesystem before fstab is mounted (/etc, /bin, /sbin, /lib*). Anything below them too.
 */
export const SYSTEM_DIRECTORIES = ["/proc", "/sys", "/dev", "/run", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** An absolute mount point (not "/"); returns why not, or undefined. `example` goes into the message ("/srv"). */
export function checkMountPoint(mount: string, example: string, allowRoot = true): string | undefined {
  if (mount === "/") return allowRoot ? undefined : `expected a mount point other than / like ${example}, found "/"`;
  if (!mount.startsWith("/")) return `expected an absolute mount point like ${example}, found "${mount}"`;
  const segments = mount.slice(1).split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    const normal = normalise(segments);
    return `expected a normalised mount point without ".", ".." or empty segments, found "${mount}"; it means "${normal}"${normal === "/" ? "" : `, write that`}`;
  }
  if (!segments.every((s) => SEGMENT.test(s))) return `expected a mount point of letters, digits and ._- separated by /, like ${example}, found "${mount}"`;
  const system = SYSTEM_DIRECTORIES.find((dir) => mount === dir || mount.startsWith(`${dir}/`));
  if (system !== undefined) {
    return `expected a mount point outside ${SYSTEM_DIRECTORIES.join(", ")}, found "${mount}": ${system} ${describeSystem(system)}; choose a directory such as ${example}`;
  }
  return undefined;
}

function describeSystem(dir: string): string {
  if (["/proc", "/sys", "/dev", "/run"].includes(dir)) return "is a kernel or systemd pseudo-filesystem, mounted at boot over whatever is configured there";
  return "is read from the root filesystem during early boot, before fstab is mounted";
}

function normalise(segments: readonly string[]): string {
  const out: string[] = [];
  for (const s of segments) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop();
    else out.push(s);
  }
  return `/${out.join("/")}`;
}
