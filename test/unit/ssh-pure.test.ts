import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { generateEd25519KeyPair, parsePublicKey } from "../../providers/plumbing/keys";
import { Secret } from "../../providers/plumbing/secret";
import {
  RemoteCommandError,
  SshTarget,
  SshUnreachableError,
  backoffDelayMs,
  describeConnectError,
  formatSeconds,
  isRetryableConnectError,
  observeHostKey,
  validateSshTarget,
} from "../../providers/plumbing/ssh";

const FP = "SHA256:" + "A".repeat(43);
const target = (overrides: Partial<SshTarget> = {}): SshTarget => ({
  host: "203.0.113.7",
  port: 22,
  user: "root",
  privateKey: new Secret("k"),
  hostKey: { expect: [FP] },
  ...overrides,
});

describe("backoffDelayMs", () => {
  const policy = { initialMs: 500, maxMs: 15_000, factor: 2 };
  it.each([
    [1, 0, 250],
    [1, 1, 500],
    [2, 1, 1000],
    [4, 1, 4000],
    [6, 1, 15_000],
    [50, 0.5, 11_250],
  ])("after %i failures with random %d waits %i ms", (failures, random, expected) => {
    expect(backoffDelayMs(failures, policy, () => random)).toBe(expected);
  });
});

describe("isRetryableConnectError", () => {
  it.each([
    [Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), true],
    [Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }), true],
    [Object.assign(new Error("Timed out while waiting for handshake"), { level: "client-timeout" }), true],
    [new Error("Connection lost before handshake"), true],
    [new Error("Connection closed before handshake"), true],
    [Object.assign(new Error("All configured authentication methods failed"), { level: "client-authentication" }), false],
    [new Error("host key mismatch for h:22"), false],
    [new Error("Cannot parse privateKey"), false],
    [undefined, false],
  ])("%p → %p", (error, expected) => {
    expect(isRetryableConnectError(error)).toBe(expected);
  });

  it("describes socket errors by code and others by message", () => {
    expect(describeConnectError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }))).toBe("ECONNREFUSED");
    expect(describeConnectError(new Error("Connection lost before handshake"))).toBe("Connection lost before handshake");
  });
});

describe("validateSshTarget", () => {
  it("accepts a pinned and an acceptNew target", () => {
    expect(validateSshTarget(target())).toEqual([]);
    expect(validateSshTarget(target({ hostKey: { acceptNew: true } }))).toEqual([]);
  });

  it.each([
    [{ host: "" }, /^host: expected a hostname/],
    [{ port: 0 }, /^port: expected an integer 1-65535, found 0/],
    [{ port: 22.5 }, /^port: .*found 22.5/],
    [{ user: "" }, /^user: expected a login name/],
    [{ privateKey: "plain" as never }, /^privateKey: expected a Secret/],
    [{ hostKey: { expect: [] } }, /^hostKey.expect: expected at least one/],
    [{ hostKey: { expect: [FP, "MD5:aa:bb"] } }, /^hostKey.expect\[1\]: expected "SHA256:".*found "MD5:aa:bb"/],
    [{ hostKey: undefined as never }, /^hostKey: expected \{ expect/],
    [{ hostKey: { acceptNew: false } as never }, /^hostKey.acceptNew: expected true/],
  ])("reports %p", (overrides, message) => {
    const problems = validateSshTarget(target(overrides as Partial<SshTarget>));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });
});

describe("observeHostKey", () => {
  it("matches what ssh-keygen says about the same key", () => {
    const dir = mkdtempSync(join(tmpdir(), "observe-"));
    try {
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "k")]);
      const line = readFileSync(join(dir, "k.pub"), "utf8");
      const keygen = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(dir, "k.pub")], { encoding: "utf8" }).split(" ")[1];
      const observed = observeHostKey(parsePublicKey(line).blob);
      expect(observed).toEqual({ type: "ssh-ed25519", base64: line.split(" ")[1], fingerprint: keygen });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("error messages", () => {
  it("names the attempts, the elapsed time and the last cause", () => {
    expect(new SshUnreachableError("127.0.0.1:2201", 12, 600_000, "ECONNREFUSED").message).toBe(
      "ssh to 127.0.0.1:2201 not reachable after 12 attempts in 600 s: ECONNREFUSED",
    );
  });

  it.each([
    [{ exitCode: 5, stderr: "Device already exists.\n" }, "`cryptsetup open /dev/md1 x` on h:22 failed (exit 5): Device already exists."],
    [{ exitCode: null, timedOut: true, timeoutMs: 1500 }, "`cryptsetup open /dev/md1 x` on h:22 timed out after 1.5 s and was killed"],
    [{ exitCode: null, signal: "KILL" }, "`cryptsetup open /dev/md1 x` on h:22 was killed by signal KILL"],
    [{ exitCode: null }, "`cryptsetup open /dev/md1 x` on h:22 ended without an exit status (the connection was lost)"],
  ])("describes %p", (fields, message) => {
    const error = new RemoteCommandError({
      host: "h",
      address: "h:22",
      command: "cryptsetup open /dev/md1 x",
      signal: null,
      timedOut: false,
      stdout: "",
      stderr: "",
      durationMs: 1,
      ...fields,
    } as never);
    expect(error.message).toBe(message);
  });

  it.each([
    [400, "0.4 s"],
    [40_000, "40 s"],
    [12_345, "12.3 s"],
    [600_000, "600 s"],
  ])("formatSeconds(%i) = %s", (ms, text) => {
    expect(formatSeconds(ms)).toBe(text);
  });
});

describe("ed25519 key generation", () => {
  // ssh2 drops leading zero bytes of the public key (about 1 key in 256); 1024 keys hit that with ~98 % probability.
  it("yields only keys OpenSSH accepts: 1024 generated keys all carry a 32-byte public key", () => {
    for (let i = 0; i < 1024; i++) {
      const pair = generateEd25519KeyPair(`k${i}`);
      expect(() => parsePublicKey(pair.public)).not.toThrow();
    }
  });

  it("writes a private key that ssh-keygen reads back to the same public key", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-keygen-"));
    try {
      const pair = generateEd25519KeyPair("roundtrip");
      writeFileSync(join(dir, "id"), pair.private, { mode: 0o600 });
      const derived = execFileSync("ssh-keygen", ["-y", "-f", join(dir, "id")], { encoding: "utf8" });
      expect(derived.split(" ").slice(0, 2)).toEqual(pair.public.split(" ").slice(0, 2));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects an ssh-ed25519 line whose key lost a byte, naming the length", () => {
    const type = Buffer.from("ssh-ed25519");
    const blob = Buffer.concat([u32(type.length), type, u32(31), Buffer.alloc(31, 7)]);
    expect(() => parsePublicKey(`ssh-ed25519 ${blob.toString("base64")} short`)).toThrow(/expected a 32-byte ssh-ed25519 key, found 31 bytes/);
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
