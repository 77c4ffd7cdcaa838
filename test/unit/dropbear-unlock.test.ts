// The unlock half of the closed loop against a real dropbear (dropbear-bin, the same program the
// initramfs runs) serving the host key this resource generates, in dropbear's own format, and the
// authorized_keys it renders (forced command, no forwarding). cryptroot-unlock is a stand-in that
// records what reached its stdin. root's ~/.ssh is replaced for dropbear alone (a private mount
// namespace), since dropbear reads authorized_keys only from the user's home; a fresh machine may
// have no ~/.ssh to mount over, so an empty one is made first.
import { ChildProcess, spawn } from "child_process";
import { createHash } from "crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as net from "net";
import { tmpdir } from "os";
import * as path from "path";
import { generateInitramfsHostKey } from "../../providers/dropbear-initramfs/host-key";
import { LoopError, unlockThroughDropbear } from "../../providers/dropbear-initramfs/loop";
import { renderAuthorizedKeys, UNLOCK_COMMAND } from "../../providers/dropbear-initramfs/render";
import type { ConnectionProfile } from "../../providers/kernel/host-access";
import { PROVIDER_VERSION } from "../../providers/kernel/resource";
import { inputsFromOutputs, outputsFrom } from "../../providers/dropbear-initramfs/outputs";
import { lockedObservation } from "../../providers/dropbear-initramfs/probe";
import { ProviderHarness, Props } from "../harness/harness";
import { createLogger } from "../../providers/plumbing/log";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
import { Secret } from "../../providers/plumbing/secret";

jest.setTimeout(60_000);

const PASSPHRASE = "Unlock-Test-Horse-Battery-7-staple";
const BUDGET = { dropbearMs: 20_000, unlockMs: 20_000, systemMs: 1000, pollMs: 200 };

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

describe("unlock through a real dropbear", () => {
  let dir: string;
  let dropbear: ChildProcess | undefined;
  let port: number;
  const hostKey = generateInitramfsHostKey("initramfs@test");
  const operator = generateEd25519KeyPair("operator@unlock-test");
  const lines: string[] = [];
  const log = createLogger({ context: "test", secrets: [PASSPHRASE], sink: (_level, line) => lines.push(line) });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hfde-dropbear-unlock-"));
    chmodSync(dir, 0o700);
    const ssh = path.join(dir, "ssh");
    mkdirSync(ssh, { mode: 0o700 });
    // The stand-in for cryptroot-unlock: keeps stdin, answers like the real one for a good or a bad passphrase.
    const fake = path.join(dir, "cryptroot-unlock");
    writeFileSync(
      fake,
      `#!/bin/sh\ncat > ${dir}/received\nif [ "$(sha256sum < ${dir}/received | cut -d' ' -f1)" = "$(cat ${dir}/want)" ]; then echo "cryptsetup: luks-test: set up successfully" >&2; exit 0; fi\necho "cryptsetup: cryptsetup failed, bad password or options?" >&2\nexit 1\n`,
      { mode: 0o755 },
    );
    writeFileSync(path.join(dir, "want"), createHash("sha256").update(PASSPHRASE).digest("hex"));
    writeFileSync(path.join(ssh, "authorized_keys"), renderAuthorizedKeys([operator.public]).replace(UNLOCK_COMMAND, fake), { mode: 0o600 });
    const keyFile = path.join(dir, "dropbear_ed25519_host_key");
    writeFileSync(keyFile, Buffer.from(hostKey.privateKeyDropbear, "base64"), { mode: 0o600 });
    port = await freePort();
    dropbear = spawn("unshare", ["-m", "sh", "-c", `mkdir -p -m 700 /root/.ssh && mount --bind ${ssh} /root/.ssh && exec /usr/sbin/dropbear -F -E -s -j -k -p 127.0.0.1:${port} -r ${keyFile} -P ${dir}/dropbear.pid`], { stdio: "ignore" });
  });

  afterAll(() => {
    dropbear?.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  const profile = (fingerprints: string[]): ConnectionProfile => ({ environment: "initramfs", host: "127.0.0.1", port, user: "root", hostKeyFingerprints: fingerprints });

  it("answers with the pinned key; the passphrase reaches cryptroot-unlock on stdin, byte for byte", async () => {
    rmSync(path.join(dir, "received"), { force: true });
    await unlockThroughDropbear(profile([hostKey.fingerprint]), new Secret(PASSPHRASE), new Secret(operator.private), log, [], BUDGET);
    expect(readFileSync(path.join(dir, "received"), "utf8")).toBe(PASSPHRASE);
    expect(lines.join("\n")).toMatch(/dropbear answered with the pinned key after [\d.]+ s/);
    expect(lines.join("\n")).not.toContain(PASSPHRASE);
  });

  it("a wrong passphrase is an unlock failure that says so, and never quotes it", async () => {
    const error = await unlockThroughDropbear(profile([hostKey.fingerprint]), new Secret("Wrong-Horse-Battery-Staple-99"), new Secret(operator.private), log, [], BUDGET).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LoopError);
    expect((error as LoopError).stage).toBe("unlock-failed");
    expect((error as Error).message).toMatch(/dropbear answered with the pinned key, but the unlock failed \(cryptsetup: cryptsetup failed, bad password or options\?\)/);
    expect((error as Error).message).not.toContain("Wrong-Horse");
  });

  it("read through the real provider host finds the host locked in its initramfs by the pinned key alone", async () => {
    const recorded = outputsFrom(
      {
        connection: [{ environment: "system", host: "127.0.0.1", port: 9, user: "root", hostKeyFingerprints: ["SHA256:" + "C".repeat(43)] }],
        hostname: "lab-1.example.com",
        authorizedKeys: [operator.public],
        reach: { host: "127.0.0.1", port },
        network: { mac: "52:54:00:12:34:56", ipv4: "dhcp" },
        providerVersion: PROVIDER_VERSION,
        hostKeyPrivate: hostKey.privateKeyDropbear,
      },
      lockedObservation(),
      { environment: "initramfs", host: `127.0.0.1:${port}` },
    );
    const h = await ProviderHarness.start({
      module: "providers/dropbear-initramfs",
      exportName: "DropbearInitramfs",
      args: { ...inputsFromOutputs(recorded), passphrase: PASSPHRASE },
      secretPaths: ["passphrase", "hostKeyPrivate"],
      config: { "hetzner-fde:sshPrivateKey": operator.private },
      secretConfigKeys: ["hetzner-fde:sshPrivateKey"],
    });
    try {
      rmSync(path.join(dir, "received"), { force: true });
      const read = await h.read("dropbear-initramfs:lab-1.example.com", { ...recorded, __provider: h.program.provider } as unknown as Props);
      expect(read.props).toMatchObject({ environment: "initramfs", host: `127.0.0.1:${port}`, hostKeyFingerprint: hostKey.fingerprint, drift: ["the host waits locked in its initramfs; the next `pulumi up` unlocks it"] });
      expect((read.props as Props).hostKeyPrivate).toBe(hostKey.privateKeyDropbear);
      expect(read.inputs).not.toHaveProperty("hostKeyPrivate");
      // Reading ran nothing: the key may only unlock, and a read never sends the passphrase.
      expect(existsSync(path.join(dir, "received"))).toBe(false);
    } finally {
      await h.stop();
    }
  });

  it("another host key is refused with both fingerprints, and no passphrase is sent", async () => {
    rmSync(path.join(dir, "received"), { force: true });
    const pinned = generateInitramfsHostKey("the stack's").fingerprint;
    const error = await unlockThroughDropbear(profile([pinned]), new Secret(PASSPHRASE), new Secret(operator.private), log, [], BUDGET).catch((e: unknown) => e);
    expect((error as Error).name).toBe("HostKeyMismatchError");
    expect((error as Error).message).toContain(pinned);
    expect((error as Error).message).toContain(hostKey.fingerprint);
    expect(existsSync(path.join(dir, "received"))).toBe(false);
  });
});
