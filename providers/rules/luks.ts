// LUKS2 cipher and key-derivation settings, checked against the limits cryptsetup itself enforces
// (crypt_pbkdf_get_limits: argon2 time cost ≥ 4, memory 32 KiB..4 GiB, 1..4 threads; pbkdf2 ≥ 1000
// iterations), plus one policy of ours: no CBC/ECB modes for a new volume.
import { issueAt, RuleIssue } from "./issue";

/** Cipher spec → the `--key-size` values (bits) it accepts. XTS splits the key in two, hence 256/512. */
export const SUPPORTED_CIPHERS: Readonly<Record<string, readonly number[]>> = {
  "aes-xts-plain64": [256, 512],
  "serpent-xts-plain64": [256, 512],
  "twofish-xts-plain64": [256, 512],
  "camellia-xts-plain64": [256, 512],
  // Adiantum: for CPUs without AES instructions; its key is always 256 bits.
  "xchacha20,aes-adiantum-plain64": [256],
  "xchacha12,aes-adiantum-plain64": [256],
};

export const PBKDF_TYPES = ["argon2id", "argon2i", "pbkdf2"] as const;
export type PbkdfType = (typeof PBKDF_TYPES)[number];

export const ARGON2_LIMITS = {
  minIterations: 4,
  minMemoryKiB: 32,
  maxMemoryKiB: 4 * 1024 * 1024,
  minParallelism: 1,
  maxParallelism: 4,
} as const;
export const PBKDF2_MIN_ITERATIONS = 1000;

export function checkCipher(cipher: string, keySize: number): RuleIssue[] {
  const sizes = SUPPORTED_CIPHERS[cipher];
  if (sizes === undefined) {
    const hint = /-(cbc|ecb)-|^(aes|serpent|twofish)$/.test(cipher) ? "; CBC/ECB and bare cipher names are refused for new volumes, use aes-xts-plain64" : "";
    return [issueAt(["cipher"], `expected one of ${Object.keys(SUPPORTED_CIPHERS).join(", ")}, found "${cipher}"${hint}`)];
  }
  if (!sizes.includes(keySize)) {
    return [issueAt(["keySize"], `expected ${sizes.join(" or ")} bits for ${cipher}, found ${keySize}`)];
  }
  return [];
}

export interface PbkdfSettings {
  readonly type: PbkdfType;
  readonly memoryKiB?: number;
  readonly iterations?: number;
  readonly parallelism?: number;
  readonly iterTimeMs?: number;
}

export function checkPbkdf(pbkdf: PbkdfSettings): RuleIssue[] {
  const issues: RuleIssue[] = [];
  if (pbkdf.iterations !== undefined && pbkdf.iterTimeMs !== undefined) {
    issues.push(
      issueAt(["iterTimeMs"], "expected either iterations (a fixed cost) or iterTimeMs (benchmarked on the host), found both; remove one"),
    );
  }
  if (pbkdf.type === "pbkdf2") {
    if (pbkdf.memoryKiB !== undefined) issues.push(issueAt(["memoryKiB"], "pbkdf2 has no memory cost: remove memoryKiB or use argon2id"));
    if (pbkdf.parallelism !== undefined) issues.push(issueAt(["parallelism"], "pbkdf2 has no parallel cost: remove parallelism or use argon2id"));
    if (pbkdf.iterations !== undefined && pbkdf.iterations < PBKDF2_MIN_ITERATIONS) {
      issues.push(issueAt(["iterations"], `expected at least ${PBKDF2_MIN_ITERATIONS} pbkdf2 iterations (cryptsetup's minimum), found ${pbkdf.iterations}`));
    }
    return issues;
  }
  const { minIterations, minMemoryKiB, maxMemoryKiB, minParallelism, maxParallelism } = ARGON2_LIMITS;
  if (pbkdf.iterations !== undefined && pbkdf.iterations < minIterations) {
    issues.push(issueAt(["iterations"], `expected an ${pbkdf.type} time cost of at least ${minIterations} (cryptsetup's minimum), found ${pbkdf.iterations}`));
  }
  if (pbkdf.memoryKiB !== undefined && (pbkdf.memoryKiB < minMemoryKiB || pbkdf.memoryKiB > maxMemoryKiB)) {
    issues.push(
      issueAt(["memoryKiB"], `expected ${minMemoryKiB}..${maxMemoryKiB} KiB (32 KiB to 4 GiB, cryptsetup's range), found ${pbkdf.memoryKiB}`),
    );
  }
  if (pbkdf.parallelism !== undefined && (pbkdf.parallelism < minParallelism || pbkdf.parallelism > maxParallelism)) {
    issues.push(issueAt(["parallelism"], `expected ${minParallelism}..${maxParallelism} threads (cryptsetup's range), found ${pbkdf.parallelism}`));
  }
  return issues;
}

/**
 * Argon2 memory against the host's RAM. luksFormat runs in the rescue system (root in RAM) and
 * every unlock runs in the initramfs: both hold the whole memory cost at once, and cryptsetup
 * refuses a keyslot that needs more than the machine can give. cryptsetup's own benchmark never
 * picks more than half of the physical memory; a fixed cost above that is refused here.
 * Returns the reason, or undefined when it fits.
 */
export function checkArgon2Memory(memoryKiB: number, hostMemoryMiB: number): string | undefined {
  const limitKiB = Math.floor((hostMemoryMiB * 1024) / 2);
  if (memoryKiB <= limitKiB) return undefined;
  return (
    `expected at most ${limitKiB} KiB (half of the host's ${hostMemoryMiB} MiB, the most cryptsetup's own benchmark uses), found ${memoryKiB}: ` +
    "the rescue system and the initramfs unlock run in RAM and could not open the keyslot; lower memoryKiB or use iterTimeMs to let cryptsetup benchmark on the host"
  );
}
