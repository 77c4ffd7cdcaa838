import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { md5Fingerprint, parsePublicKey, sha256Fingerprint } from "../../providers/plumbing/keys";
import { createLogger, memorySink } from "../../providers/plumbing/log";
import { Secret } from "../../providers/plumbing/secret";
import { sh } from "../../providers/plumbing/shell";
import { ConnectProgress, HostKeyMismatchError, SshAuthError, connect, withSession } from "../../providers/plumbing/ssh";
import { SshdFixture, fixtureTarget, startSshd } from "../support/sshd";
import { waitFor } from "../support/wait";

let sshd: SshdFixture;
let otherDir: string;
let otherFingerprint: string;
let otherPrivateKey: Secret;

beforeAll(async () => {
  sshd = await startSshd();
  // A second, unrelated key: its fingerprint is a wrong pin, its private half a wrong credential.
  otherDir = mkdtempSync(join(tmpdir(), "other-key-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(otherDir, "k")]);
  otherFingerprint = sha256Fingerprint(parsePublicKey(readFileSync(join(otherDir, "k.pub"), "utf8")));
  otherPrivateKey = new Secret(readFileSync(join(otherDir, "k"), "utf8"));
});

afterAll(async () => {
  await sshd?.dispose();
  rmSync(otherDir, { recursive: true, force: true });
});

const acceptedLogins = (): number => (sshd.log().match(/Accepted publickey/g) ?? []).length;
const preauthClosures = (): number => (sshd.log().match(/\[preauth\]/g) ?? []).length;

describe("pinned host keys", () => {
  it("refuses a server whose key is not pinned, naming both fingerprints, and runs nothing", async () => {
    const loginsBefore = acceptedLogins();
    const closuresBefore = preauthClosures();
    const progress: ConnectProgress[] = [];
    let ran = false;
    const error = await withSession(fixtureTarget(sshd, { hostKey: { expect: [otherFingerprint] } }), { onProgress: (p) => progress.push(p) }, async () => {
      ran = true;
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(HostKeyMismatchError);
    const message = (error as Error).message;
    expect(message).toContain(`127.0.0.1:${sshd.port}`);
    expect(message).toContain(otherFingerprint);
    expect(message).toContain(sshd.hostKeyFingerprint);
    expect(message).toMatch(/update the pinned hostKey\.expect/);
    expect((error as HostKeyMismatchError).observed.fingerprint).toBe(sshd.hostKeyFingerprint);
    expect(ran).toBe(false);
    expect(progress).toEqual([]); // a mismatch is an answer, not an outage: never retried
    // sshd logs the preauth disconnect once it has seen the client go; only then is "no login" final.
    await waitFor(() => preauthClosures() > closuresBefore, { what: "sshd to log the client's preauth disconnect", timeoutMs: 5000 });
    expect(acceptedLogins()).toBe(loginsBefore); // we never even authenticated
  });

  it("accepts the server when its key is one of several pins", async () => {
    const target = fixtureTarget(sshd, { hostKey: { expect: [otherFingerprint, sshd.hostKeyFingerprint] } });
    await expect(withSession(target, {}, async (s) => (await s.exec(sh`echo ok`)).stdout)).resolves.toBe("ok\n");
  });

  it("acceptNew connects and reports the observed key, which equals the fixture's", async () => {
    const { sink, lines } = memorySink();
    const hostPub = readFileSync(join(sshd.dir, "host_ed25519.pub"), "utf8").split(" ");
    const observed = await withSession(fixtureTarget(sshd, { hostKey: { acceptNew: true } }), { logger: createLogger({ sink }) }, async (s) => s.observedHostKey);
    expect(observed).toEqual({ type: "ssh-ed25519", base64: hostPub[1], fingerprint: sshd.hostKeyFingerprint });
    expect(lines).toContainEqual({ level: "warn", line: expect.stringContaining(`trusting host key ssh-ed25519 ${sshd.hostKeyFingerprint}`) });
  });

  it("checks an MD5 pin (Robot's form) in the host-key callback, before authentication", async () => {
    const hostPub = readFileSync(join(sshd.dir, "host_ed25519.pub"), "utf8").split(" ");
    const rightMd5 = `MD5:${md5Fingerprint(Buffer.from(hostPub[1], "base64"))}`;
    const wrongMd5 = `MD5:${md5Fingerprint(parsePublicKey(readFileSync(join(otherDir, "k.pub"), "utf8")))}`;
    const loginsBefore = acceptedLogins();
    // A wrong pin AND a wrong credential: the key check comes first, so the error is the mismatch.
    const error = await withSession(fixtureTarget(sshd, { hostKey: { expect: [wrongMd5] }, privateKey: otherPrivateKey }), {}, async () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostKeyMismatchError);
    expect((error as Error).message).toContain(wrongMd5);
    expect(acceptedLogins()).toBe(loginsBefore);
    const target = fixtureTarget(sshd, { hostKey: { expect: [rightMd5] } });
    await expect(withSession(target, {}, async (s) => (await s.exec(sh`echo ok`)).stdout)).resolves.toBe("ok\n");
  });

  it("reports the observed key for a pinned session too", async () => {
    const fingerprint = await withSession(fixtureTarget(sshd), {}, async (s) => s.observedHostKey.fingerprint);
    expect(fingerprint).toBe(sshd.hostKeyFingerprint);
  });
});

describe("authentication", () => {
  it("fails at once with SshAuthError for a key the server does not know", async () => {
    const progress: ConnectProgress[] = [];
    const error = await connect(fixtureTarget(sshd, { privateKey: otherPrivateKey }), { onProgress: (p) => progress.push(p) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshAuthError);
    expect((error as Error).message).toMatch(new RegExp(`ssh to 127\\.0\\.0\\.1:${sshd.port} as ${sshd.user}: the server accepted none`));
    expect(progress).toEqual([]);
  });

  it("says the private key is unusable without echoing it", async () => {
    const garbage = new Secret("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key-" + "x".repeat(20) + "\n-----END OPENSSH PRIVATE KEY-----\n");
    const error = await connect(fixtureTarget(sshd, { privateKey: garbage })).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/privateKey for 127\.0\.0\.1:\d+ could not be used/);
    expect((error as Error).message).not.toContain("not-a-key");
  });

  it("rejects an invalid target before dialing, naming the field", async () => {
    await expect(connect(fixtureTarget(sshd, { hostKey: { expect: ["md5:aa"] } }))).rejects.toThrow(/hostKey\.expect\[0\]: expected "SHA256:"/);
  });
});
