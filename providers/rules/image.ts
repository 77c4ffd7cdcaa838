// OS images, named the way Hetzner's images directory names them: `<Distro>-<version>-<codename>-<arch>-<flavor>`
// (robot-api.md §6), without the `.tar.gz`. Only the releases the distro adapters support are accepted.

export interface ImageName {
  readonly name: string;
  readonly distro: "debian" | "ubuntu";
  /** "11", "12", "13", "22.04", "24.04". */
  readonly release: string;
  readonly codename: string;
  readonly arch: "amd64";
  readonly flavor: "base";
}

interface Release {
  readonly distro: ImageName["distro"];
  readonly release: string;
  readonly codename: string;
  /** The version field Hetzner uses in the name: `latest` for Debian's rolling symlink, `2204` for Ubuntu. */
  readonly versionField: string;
  /** Versioned Debian names (`Debian-1209-bookworm-...`) start with the major release. */
  readonly versionPrefix?: string;
}

const RELEASES: readonly Release[] = [
  { distro: "debian", release: "11", codename: "bullseye", versionField: "latest", versionPrefix: "11" },
  { distro: "debian", release: "12", codename: "bookworm", versionField: "latest", versionPrefix: "12" },
  { distro: "debian", release: "13", codename: "trixie", versionField: "latest", versionPrefix: "13" },
  { distro: "ubuntu", release: "22.04", codename: "jammy", versionField: "2204" },
  { distro: "ubuntu", release: "24.04", codename: "noble", versionField: "2404" },
];

function canonicalName(r: Release): string {
  return r.distro === "debian" ? `Debian-${r.codename}-latest-amd64-base` : `Ubuntu-${r.versionField}-${r.codename}-amd64-base`;
}

export const SUPPORTED_IMAGES: readonly string[] = RELEASES.map(canonicalName);

/**
 * Accepts the canonical names above and Debian's versioned form (`Debian-1209-bookworm-amd64-base`).
 * The reason for a refusal lists the supported names.
 */
export function parseImageName(name: string): { ok: true; image: ImageName } | { ok: false; reason: string } {
  const refuse = (why: string) => ({ ok: false as const, reason: `expected one of ${SUPPORTED_IMAGES.join(", ")}, found "${name}"${why}` });
  if (/\.(tar(\.(gz|bz2?|xz|zst))?|tgz|tbz|txz)$/.test(name)) return refuse(`; drop the archive suffix, the name is enough`);
  for (const r of RELEASES) {
    const versioned = r.versionPrefix !== undefined && new RegExp(`^Debian-${r.versionPrefix}\\d{2}-${r.codename}-amd64-base$`).test(name);
    if (name === canonicalName(r) || versioned) {
      return { ok: true, image: { name, distro: r.distro, release: r.release, codename: r.codename, arch: "amd64", flavor: "base" } };
    }
  }
  if (/-(arm64|i386|32|64)-/.test(name)) return refuse("; only amd64 images are supported");
  return refuse("");
}
