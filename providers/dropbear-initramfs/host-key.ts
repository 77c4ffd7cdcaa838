// The initramfs's dropbear host key: generated here, on the operator's side, never on the host, and
// written in dropbear's own format so it can be in place before dropbear-initramfs is installed
// (its postinst then generates none, and the one initramfs build already carries it).
//
// Dropbear's ed25519 private key file (signkey.c / ed25519.c, buf_put_ed25519_priv_key) is
//   string "ssh-ed25519" ‖ string (32-byte seed ‖ 32-byte public key)
// with SSH wire strings (uint32 big-endian length, then the bytes). `dropbearkey -y -f FILE` reads it
// back; a unit test checks that against the real dropbearkey.
import { createHash, createPrivateKey, generateKeyPairSync } from "crypto";
import { knownHostsLine, parsePublicKey, sha256Fingerprint } from "../plumbing/keys";

const KEY_TYPE = "ssh-ed25519";

export interface InitramfsHostKey {
  /** Dropbear-format private key, base64: a secret output (additionalSecretOutputs), never logged. */
  readonly privateKeyDropbear: string;
  /** `ssh-ed25519 <base64> <comment>` */
  readonly publicKey: string;
  /** `SHA256:…`, as ssh-keygen -lf prints it: what the stack pins for the initramfs. */
  readonly fingerprint: string;
}

function wireString(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** A new ed25519 host key, in dropbear format, with its public line and fingerprint. */
export function generateInitramfsHostKey(comment: string): InitramfsHostKey {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  return hostKeyFromSeed(Buffer.from(jwk.d!, "base64url"), comment);
}

/** The key whose 32-byte seed is `seed` (deterministic; also how a stored key is re-derived). */
export function hostKeyFromSeed(seed: Buffer, comment: string): InitramfsHostKey {
  if (seed.length !== 32) throw new Error(`expected a 32-byte ed25519 seed, found ${seed.length} bytes`);
  const publicRaw = publicFromSeed(seed);
  const publicBlob = Buffer.concat([wireString(Buffer.from(KEY_TYPE)), wireString(publicRaw)]);
  const dropbear = Buffer.concat([wireString(Buffer.from(KEY_TYPE)), wireString(Buffer.concat([seed, publicRaw]))]);
  return {
    privateKeyDropbear: dropbear.toString("base64"),
    publicKey: `${KEY_TYPE} ${publicBlob.toString("base64")}${comment ? ` ${comment}` : ""}`,
    fingerprint: sha256Fingerprint(publicBlob),
  };
}

/** Reads a stored dropbear-format key back (to re-derive its public half); throws on another shape. */
export function parseDropbearEd25519(privateKeyDropbear: string, comment = ""): InitramfsHostKey {
  const bytes = Buffer.from(privateKeyDropbear, "base64");
  const typeLength = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  const type = typeLength > 0 && 4 + typeLength <= bytes.length ? bytes.subarray(4, 4 + typeLength).toString("latin1") : "";
  const keyLength = type === KEY_TYPE && bytes.length >= 8 + typeLength ? bytes.readUInt32BE(4 + typeLength) : -1;
  if (type !== KEY_TYPE || keyLength !== 64 || bytes.length !== 8 + typeLength + 64) {
    throw new Error("the stored initramfs host key is not a dropbear ed25519 key (expected string \"ssh-ed25519\" and a 64-byte key)");
  }
  const key = bytes.subarray(8 + typeLength);
  const derived = hostKeyFromSeed(Buffer.from(key.subarray(0, 32)), comment);
  if (derived.privateKeyDropbear !== privateKeyDropbear) throw new Error("the stored initramfs host key's public half does not match its seed");
  return derived;
}

/** sha256 hex of the key file's bytes: how the gate recognises our key in the image without reading it out. */
export function hostKeyFileSha256(privateKeyDropbear: string): string {
  return createHash("sha256").update(Buffer.from(privateKeyDropbear, "base64")).digest("hex");
}

/** The known_hosts line for dropbear at `host:port`. */
export function initramfsKnownHostsLine(host: string, port: number, key: InitramfsHostKey): string {
  return knownHostsLine(host, port, parsePublicKey(key.publicKey));
}

// Node derives the public key from a raw seed through a PKCS#8 DER wrapper (RFC 8410).
function publicFromSeed(seed: Buffer): Buffer {
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const jwk = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }).export({ format: "jwk" });
  return Buffer.from(jwk.x!, "base64url");
}
