// OpenSSH public key parsing and fingerprints, shared by the SSH client (SHA256 pins),
// the Robot client (MD5 fingerprints name keys in /key and /boot/{n}/rescue) and the lab.
import { createHash } from "crypto";
import { utils as ssh2Utils } from "ssh2";
import type { Secret } from "./secret";

export interface OpenSshPublicKey {
  /** Key type as written in the key line, e.g. `ssh-ed25519`. */
  readonly type: string;
  /** The raw wire-format key blob (base64-decoded second field). */
  readonly blob: Buffer;
  readonly comment: string;
}

// An array, not a Set: Pulumi's closure serializer copies a module-level Set as a plain object.
const KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
];

/** Parses one `authorized_keys`-style line (`<type> <base64> [comment]`); throws with the reason. */
export function parsePublicKey(line: string): OpenSshPublicKey {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 2) {
    throw new Error(`expected an OpenSSH public key "<type> <base64> [comment]", found ${fields.length} field(s)`);
  }
  const [type, b64, ...rest] = fields;
  if (!KEY_TYPES.includes(type)) {
    throw new Error(`expected a key type of ${KEY_TYPES.join(", ")}, found "${type}"`);
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new Error(`expected base64 key data after "${type}", found characters outside base64`);
  }
  const blob = Buffer.from(b64, "base64");
  // The blob starts with the length-prefixed key type; a mismatch means a pasted/truncated key.
  const innerLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  const innerType = innerLength > 0 && innerLength + 4 <= blob.length ? blob.subarray(4, 4 + innerLength).toString("latin1") : "";
  if (innerType !== type) {
    throw new Error(`key data does not match its type: the line says "${type}", the blob says "${innerType || "<unreadable>"}"`);
  }
  if (type === "ssh-ed25519") {
    const keyLength = blob.length >= 4 + innerLength + 4 ? blob.readUInt32BE(4 + innerLength) : -1;
    if (keyLength !== 32 || blob.length !== 4 + innerLength + 4 + 32) {
      throw new Error(`expected a 32-byte ssh-ed25519 key, found ${keyLength < 0 ? "none" : `${keyLength} bytes`}: the key is truncated or was written by a broken generator; generate a new one`);
    }
  }
  return { type, blob, comment: rest.join(" ") };
}

export interface GeneratedKeyPair {
  /** OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted. */
  readonly private: string;
  /** `ssh-ed25519 <base64> <comment>` */
  readonly public: string;
}

/**
 * A new ed25519 key pair in OpenSSH format. ssh2 1.x strips leading zero bytes from the public
 * key, so about one key in 256 comes out 31 bytes long and OpenSSH refuses it ("error in
 * libcrypto"); such a pair is discarded and generated again.
 */
export function generateEd25519KeyPair(comment: string): GeneratedKeyPair {
  for (let attempt = 0; attempt < 16; attempt++) {
    const pair = ssh2Utils.generateKeyPairSync("ed25519", { comment });
    if (isWellFormedPublicKey(pair.public)) return { private: pair.private, public: pair.public };
  }
  throw new Error("could not generate a well-formed ed25519 key in 16 attempts; the ssh2 key generator is broken");
}

function isWellFormedPublicKey(line: string): boolean {
  try {
    parsePublicKey(line);
    return true;
  } catch {
    return false;
  }
}

/** The `<type> <base64> <comment>` line of an OpenSSH private key's public half (a key generated for a run, kept only as a Secret). */
export function publicKeyOf(privateKey: Secret, comment: string): string {
  const parsed = ssh2Utils.parseKey(privateKey.reveal());
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error(`not one OpenSSH private key: ${parsed instanceof Error ? parsed.message : "several keys"}`);
  return `${parsed.type} ${parsed.getPublicSSH().toString("base64")} ${comment}`;
}

/** `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it. */
export function sha256Fingerprint(key: OpenSshPublicKey | Buffer): string {
  const blob = Buffer.isBuffer(key) ? key : key.blob;
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** `aa:bb:…` colon-separated MD5, the form Robot uses to name keys. */
export function md5Fingerprint(key: OpenSshPublicKey | Buffer): string {
  const blob = Buffer.isBuffer(key) ? key : key.blob;
  return createHash("md5").update(blob).digest("hex").match(/../g)!.join(":");
}

/** A `known_hosts` line for `host:port` (bracketed form for non-22 ports, as OpenSSH writes it). */
export function knownHostsLine(host: string, port: number, key: OpenSshPublicKey): string {
  const name = port === 22 ? host : `[${host}]:${port}`;
  return `${name} ${key.type} ${key.blob.toString("base64")}`;
}
