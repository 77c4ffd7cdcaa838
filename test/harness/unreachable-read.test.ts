// A refresh of a host that answers nowhere keeps the record (the host is off, booting or locked in
// its initramfs, and still holds what was recorded), so `refresh` and `up --refresh` of a whole stack
// go on past it. A host that answers with a key nobody pinned, or that refuses the operator's key,
// is news: that read fails. LvmGroup stands for every resource on the kernel's default reach
// (LuksVolume, DropbearInitramfs), through the real dynamic-provider host and a real sshd.
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { ProviderHarness, Props } from "./harness";
import { parsePublicKey, sha256Fingerprint } from "../../providers/plumbing/keys";
import { SshdFixture, freeLoopbackPort, startSshd } from "../support/sshd";

jest.setTimeout(60_000);

const EXTENT = 4 * 1024 * 1024;
const VOLUMES = [{ name: "root", size: "all", filesystem: "ext4", mountPoint: "/" }];

let sshd: SshdFixture;
let h: ProviderHarness;
let otherKeyDir: string;
let otherFingerprint: string;

beforeAll(async () => {
  sshd = await startSshd();
  otherKeyDir = mkdtempSync(join(tmpdir(), "other-key-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(otherKeyDir, "k")]);
  otherFingerprint = sha256Fingerprint(parsePublicKey(readFileSync(join(otherKeyDir, "k.pub"), "utf8")));
  h = await ProviderHarness.start({
    module: "providers/lvm-group",
    exportName: "LvmGroup",
    args: { connection: [], pvs: ["/dev/mapper/cryptroot"], vgName: "vg0", volumes: VOLUMES, fstabRoot: "/" },
    config: { "hetzner-fde:sshPrivateKey": sshd.privateKey.reveal() },
    secretConfigKeys: ["hetzner-fde:sshPrivateKey"],
  });
});

afterAll(async () => {
  await h?.stop();
  await sshd?.dispose();
  if (otherKeyDir) rmSync(otherKeyDir, { recursive: true, force: true });
});

/** An LvmGroup as `up` recorded it, read in the system at `port` with `fingerprint` pinned. */
function recorded(port: number, fingerprint: string): { inputs: Props; outputs: Props } {
  const connection = [{ environment: "system", host: "127.0.0.1", port, user: sshd.user, hostKeyFingerprints: [fingerprint] }];
  const inputs = { ...h.inputs(), connection };
  const outputs = {
    ...inputs, environment: "system", host: `127.0.0.1:${port}`, vgUuid: "vg-uuid-0001", sizeBytes: 2559 * EXTENT, freeBytes: 0, extentSizeBytes: EXTENT,
    extentCount: 2559, freeExtents: 0, physicalVolumes: [{ path: "/dev/mapper/cryptroot", uuid: "pv-uuid-0001", sizeBytes: 2559 * EXTENT }],
    observedVolumes: [], fstabLines: [],
  };
  return { inputs, outputs };
}

function seed(name: string, entry: { inputs: Props; outputs: Props }): string {
  const urn = h.urn.replace(/::test$/, `::${name}`);
  h.state.record({ urn, id: `vg0:${name}`, inputs: entry.inputs, outputs: entry.outputs, plainInputs: entry.inputs, plainOutputs: entry.outputs, op: "create" });
  return urn;
}

it("keeps the record of a host that answers nowhere, warns naming where it looked, and runs nothing", async () => {
  const port = await freeLoopbackPort();
  const entry = recorded(port, sshd.hostKeyFingerprint);
  const urn = seed("off", entry);
  const logged = h.logs.length;

  const read = await h.refresh(urn);

  expect(read?.id).toBe("vg0:off");
  expect(read?.props).toEqual(entry.outputs);
  expect(h.state.resources.get(urn)?.plainOutputs).toEqual(entry.outputs);
  expect(h.logs.slice(logged)).toMatch(new RegExp(`read kept the recorded state: the host did not answer in any environment this resource can be read in \\(system 127\\.0\\.0\\.1:${port}\\)`));
});

it("never logs in to an initramfs profile recorded by an older program (dropbear would take the probe for a passphrase)", async () => {
  const port = await freeLoopbackPort();
  const entry = recorded(port, sshd.hostKeyFingerprint);
  const initramfs = { environment: "initramfs", host: "127.0.0.1", port: sshd.port, user: sshd.user, hostKeyFingerprints: [sshd.hostKeyFingerprint] };
  const withInitramfs = { inputs: { ...entry.inputs, connection: [...(entry.inputs.connection as object[]), initramfs] }, outputs: { ...entry.outputs, connection: [...(entry.inputs.connection as object[]), initramfs] } };
  const urn = seed("old-initramfs", withInitramfs);
  const logins = (sshd.log().match(/Accepted publickey/g) ?? []).length;

  const read = await h.refresh(urn);

  expect(read?.props).toEqual(withInitramfs.outputs);
  expect((sshd.log().match(/Accepted publickey/g) ?? []).length).toBe(logins);
});

it("an up that must reach the same host still fails, naming every environment it tried", async () => {
  const port = await freeLoopbackPort();
  const entry = recorded(port, sshd.hostKeyFingerprint);
  const urn = seed("off-up", entry);
  // A new LV is a change the recorded facts cannot satisfy, so update must reach the host.
  const error = await h.up({ ...entry.inputs, volumes: [{ name: "data", size: "1G", filesystem: "ext4" }, ...VOLUMES] }, urn).then(() => "resolved", (e: unknown) => (e instanceof Error ? e.message : JSON.stringify(e)));
  expect(String(error)).toMatch(new RegExp(`no environment of the host answered with its pinned host key:\\n  - system 127\\.0\\.0\\.1:${port}`));
});

it("fails the read of a host that presents a key nobody pinned, naming both fingerprints", async () => {
  const urn = seed("stranger", recorded(sshd.port, otherFingerprint));
  const error = await h.refresh(urn).then(() => "resolved", (e: unknown) => (e instanceof Error ? e.message : JSON.stringify(e)));
  expect(String(error)).toContain("host key mismatch");
  expect(String(error)).toContain(otherFingerprint);
  expect(String(error)).toContain(sshd.hostKeyFingerprint);
});

it("fails the read of a host that answers with its pinned key but refuses the operator's key", async () => {
  // Its own provider host: the engine configures a provider once, before its first call.
  const refused = await ProviderHarness.start({
    module: "providers/lvm-group",
    exportName: "LvmGroup",
    args: { connection: [], pvs: ["/dev/mapper/cryptroot"], vgName: "vg0", volumes: VOLUMES, fstabRoot: "/" },
    config: { "hetzner-fde:sshPrivateKey": readFileSync(join(otherKeyDir, "k"), "utf8") },
    secretConfigKeys: ["hetzner-fde:sshPrivateKey"],
  });
  try {
    const { inputs, outputs } = recorded(sshd.port, sshd.hostKeyFingerprint);
    refused.state.record({ urn: refused.urn, id: "vg0:refused", inputs, outputs, plainInputs: inputs, plainOutputs: outputs, op: "create" });
    const error = await refused.refresh().then(() => "resolved", (e: unknown) => (e instanceof Error ? e.message : JSON.stringify(e)));
    expect(error).toMatch(/accepted none of our credentials/);
    expect(refused.logs).not.toMatch(/read kept the recorded state/);
  } finally {
    await refused.stop();
  }
});
