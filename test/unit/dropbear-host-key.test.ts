// The initramfs host key is made here in dropbear's own format; the real dropbearkey (dropbear-bin,
// installed by scripts/setup.sh) must read it back as the same public key and fingerprint.
import { execFileSync } from "child_process";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import {
  generateInitramfsHostKey,
  hostKeyFileSha256,
  hostKeyFromSeed,
  initramfsKnownHostsLine,
  parseDropbearEd25519,
} from "../../providers/dropbear-initramfs/host-key";

describe("initramfs host key", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "hfde-dropbear-key-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([1, 2, 3])("is read back by the real dropbearkey as the same key (run %i)", () => {
    const key = generateInitramfsHostKey("initramfs@test");
    const file = path.join(dir, "dropbear_ed25519_host_key");
    writeFileSync(file, Buffer.from(key.privateKeyDropbear, "base64"), { mode: 0o600 });
    const out = execFileSync("dropbearkey", ["-y", "-f", file], { encoding: "utf8" });
    const publicLine = out.split("\n").find((l) => l.startsWith("ssh-ed25519 "))!;
    expect(publicLine.split(" ").slice(0, 2)).toEqual(key.publicKey.split(" ").slice(0, 2));
    expect(out).toContain(`Fingerprint: ${key.fingerprint}`);
  });

  it("is deterministic from its seed and survives a round trip through the stored form", () => {
    const a = hostKeyFromSeed(Buffer.alloc(32, 7), "x");
    expect(hostKeyFromSeed(Buffer.alloc(32, 7), "x")).toEqual(a);
    expect(parseDropbearEd25519(a.privateKeyDropbear, "x")).toEqual(a);
    expect(a.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(hostKeyFileSha256(a.privateKeyDropbear)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses a stored key of another shape without quoting it", () => {
    const a = hostKeyFromSeed(Buffer.alloc(32, 9), "");
    const bytes = Buffer.from(a.privateKeyDropbear, "base64");
    const truncated = bytes.subarray(0, bytes.length - 1).toString("base64");
    expect(() => parseDropbearEd25519(truncated)).toThrow(/not a dropbear ed25519 key/);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 1] ^= 1; // the public half no longer matches the seed
    expect(() => parseDropbearEd25519(tampered.toString("base64"))).toThrow(/does not match its seed/);
    try {
      parseDropbearEd25519(truncated);
    } catch (err) {
      expect((err as Error).message).not.toContain(truncated.slice(0, 20));
    }
  });

  it("gives a known_hosts line in OpenSSH's bracketed form for the dropbear port", () => {
    const key = hostKeyFromSeed(Buffer.alloc(32, 7), "c");
    expect(initramfsKnownHostsLine("203.0.113.7", 2222, key)).toBe(`[203.0.113.7]:2222 ${key.publicKey.split(" ").slice(0, 2).join(" ")}`);
  });
});
