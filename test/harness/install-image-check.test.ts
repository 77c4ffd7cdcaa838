// InstallImage through the real dynamic-provider host, with no VM: the provider serializes without
// secrets, check refuses every bad input of issue 5 by field with no SSH connection made (a trap
// listens on the rescue port), diff over gRPC marks a layout change as a delete-first replacement,
// and delete without allowWipe retains without connecting; then (the trap now answering TCP with no SSH)
// a read of a host that does not answer keeps the record, and drift no step repairs is no change.
import * as net from "net";
import { ProviderHarness } from "./harness";
import { checkSerializedProvider } from "./leaks";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
import { FP, PASSPHRASE, raid1Lvm } from "../unit/install-image-fixtures";

jest.setTimeout(60_000);

let trap: net.Server;
let connections = 0;
let h: ProviderHarness;
const operatorKey = generateEd25519KeyPair("operator");

beforeAll(async () => {
  trap = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
  const port = (trap.address() as net.AddressInfo).port;
  const { providerVersion: _v, ...args } = raid1Lvm();
  h = await ProviderHarness.start({
    module: "providers/install-image",
    exportName: "InstallImage",
    args: { ...args, rescue: { ...args.rescue, port }, partitions: [args.partitions[0], { ...args.partitions[1], crypt: true }], cryptPassphrase: PASSPHRASE },
    secretPaths: ["cryptPassphrase"],
    config: { "hetzner-fde:sshPrivateKey": operatorKey.private },
    secretConfigKeys: ["hetzner-fde:sshPrivateKey"],
  });
});

afterAll(async () => {
  await h?.stop();
  await new Promise((resolve) => trap?.close(resolve));
});

it("serializes the provider without the passphrase or the operator key", () => {
  checkSerializedProvider(h.program.provider, { secrets: [...h.secrets, operatorKey.private] });
  expect(h.secrets).toEqual([PASSPHRASE, operatorKey.private]);
});

it("check accepts the program's inputs", async () => {
  expect((await h.check(h.urn, {}, h.inputs())).failures).toEqual([]);
});

const BAD: [string, Record<string, unknown>, string, RegExp][] = [
  ["RAID5 with two drives", { raid: { level: 5 } }, "raid.level", /RAID 5 needs at least 3 drives/],
  ["/boot inside LVM", { partitions: [{ mount: "lvm", vg: "vg0", size: "all", crypt: true }], volumes: [{ vg: "vg0", name: "boot", mount: "/boot", fs: "ext4", size: "1G" }, { vg: "vg0", name: "root", mount: "/", fs: "ext4", size: "all" }] }, "volumes[0].mount", /\/boot cannot be on LVM/],
  ["all not last", { partitions: [{ mount: "lvm", vg: "vg0", size: "all", crypt: true }, { mount: "/boot", fs: "ext4", size: "1G" }] }, "partitions[0].size", /only on the last partition/],
  ["an unknown image", { image: "Debian-buster-latest-amd64-base" }, "image", /expected one of/],
  ["a drive listed twice", { drives: [{ path: "/dev/nvme0n1" }, { path: "/dev/nvme0n1" }] }, "drives[1].path", /listed twice/],
  ["an esp too small", { partitions: [{ mount: "/boot/efi", fs: "esp", size: "100M" }, { mount: "/boot", fs: "ext4", size: "1G" }, { mount: "lvm", vg: "vg0", size: "all", crypt: true }] }, "partitions[0].size", /at least 256M/],
];

it.each(BAD)("check refuses %s without any SSH connection", async (_name, change, property, reason) => {
  const before = connections;
  const { failures } = await h.check(h.urn, {}, h.inputs(change));
  expect(failures.map((f) => f.property)).toContain(property);
  expect(failures.find((f) => f.property === property)?.reason).toMatch(reason);
  expect(JSON.stringify(failures)).not.toContain(PASSPHRASE);
  expect(connections).toBe(before);
});

it("check refuses a layout change without allowWipe over gRPC, listing what would be lost", async () => {
  const olds = h.inputs();
  const { failures } = await h.check(h.urn, olds, h.inputs({ image: "Debian-trixie-latest-amd64-base" }));
  expect(failures).toEqual([{ property: "image", reason: expect.stringMatching(/destroys everything on it: drives \/dev\/nvme0n1 \(serial LAB100001N0\).*VG vg0 with LVs swap \(swap\), root \(\/\).*allowWipe: true/) }]);
  expect(connections).toBe(0);
});

it("diff marks a layout change as a replacement with deleteBeforeReplace, a hostname change as an update", async () => {
  const outs = { ...h.inputs(), cryptPassphrase: undefined, installId: "i", installedAt: "t", environment: "rescue", host: "h", hostKeyFingerprints: [FP], knownHosts: [], observedHostname: "lab-1", layout: { arrays: [], partitions: [], volumeGroups: [], volumes: [], os: null }, drift: [], boots: 0 };
  delete (outs as Record<string, unknown>).cryptPassphrase;
  const replace = await h.diff("i", outs, h.inputs({ raid: { level: 0 } }));
  expect(replace).toMatchObject({ changes: "some", replaces: ["raid"], deleteBeforeReplace: true });
  const update = await h.diff("i", outs, h.inputs({ hostname: "lab-2.example.com" }));
  expect(update).toMatchObject({ changes: "some", replaces: [] });
  expect(await h.diff("i", outs, h.inputs())).toMatchObject({ changes: "none" });
  expect(connections).toBe(0);
});

it("delete without allowWipe retains (the kernel's policy): it connects to nothing and says what was kept", async () => {
  const outs = { ...h.inputs(), installId: "i", drives: raid1Lvm().drives, allowWipe: false, layout: { arrays: [], partitions: [], volumeGroups: [], volumes: [], os: null } };
  await h.delete("i", outs);
  // The kernel's one retain warning, on the kernel's channel (named by the resource id), naming the host.
  expect(h.logs).toMatch(/\[InstallImage i\] delete leaves drives \/dev\/nvme0n1.* on lab-1\.example\.com untouched: allowWipe is false, so it is retained .*set allowWipe: true, run up, then destroy/);
  expect(connections).toBe(0);
});

// Decisions (#9): a read of a host that does not answer (off, or locked in its initramfs) records it
// unreachable and keeps the recorded facts (not "gone"); drift that reassemble: never leaves alone is
// no change, and the diff warns, naming it. Through the provider host; the trap takes TCP, then drops it.
it("read of a host that does not answer keeps the record as unreachable; drift no step repairs is no change, with a warning", async () => {
  const md1 = { device: "/dev/md1", level: 1, members: ["/dev/nvme0n1p2"], uuid: "aaaabbbb:ccccdddd:eeeeffff:00001111", state: "clean", degraded: true, faultyMembers: [], sync: { action: "idle", percent: null } };
  const drift = [{ kind: "degraded", array: "/dev/md1", message: "array /dev/md1 is degraded: 1 of 2 members active, a member is missing" }];
  const { cryptPassphrase: _secret, ...inputs } = h.inputs();
  const outs = {
    ...inputs,
    installId: "i",
    installedAt: "t",
    environment: "system",
    host: "h",
    hostKeyFingerprints: [FP],
    knownHosts: [],
    observedHostname: "lab-1",
    layout: { arrays: [md1], partitions: [], volumeGroups: [{ name: "vg0", sizeBytes: 1, freeBytes: 0 }], volumes: [], os: null },
    arrayUuids: [md1.uuid],
    luks: [{ device: "/dev/md1", uuid: "99999999-8888-7777-6666-555555555555" }],
    drift,
    boots: 1,
  };
  const read = await h.read("i", outs, inputs);
  expect(read.id).toBe("i");
  expect(read.props).toEqual({ ...outs, environment: "unreachable", host: `127.0.0.1:${(trap.address() as net.AddressInfo).port}` });
  expect(read.inputs).not.toHaveProperty("cryptPassphrase");
  expect(await h.diff("i", outs, h.inputs())).toMatchObject({ changes: "none" });
  expect(h.logs).toMatch(/\[InstallImage i\] drift that reassemble: "never" leaves as it is \(no change is planned for it\): array \/dev\/md1 is degraded/);
  expect(await h.diff("i", { ...outs, reassemble: "scan" }, h.inputs({ reassemble: "scan" }))).toMatchObject({ changes: "some", replaces: [] });
});
