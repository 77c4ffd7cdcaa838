// LvmGroup through the real dynamic-provider host, with no host to talk to: the provider serializes
// (allowed modules only, no secret in its text), and check and diff — all that preview runs — work
// without any connection.
import { ProviderHarness } from "./harness";
import { checkSerializedProvider } from "./leaks";
import { UNKNOWN } from "../../providers/kernel/resource";

jest.setTimeout(60_000);

const FP = "SHA256:" + "B".repeat(43);
// Port 9 (discard) on a TEST-NET address: nothing would answer, and nothing may try.
const CONNECTION = [{ environment: "rescue", host: "192.0.2.10", port: 9, user: "root", hostKeyFingerprints: [FP] }];
const ARGS = {
  connection: CONNECTION,
  pvs: ["/dev/mapper/cryptroot"],
  vgName: "vg0",
  lvs: [
    { name: "swap", size: "1G", filesystem: "swap" },
    { name: "root", size: "all", filesystem: "ext4", mountPoint: "/" },
  ],
  fstabRoot: "/mnt",
};
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-but-secret-0123456789\n-----END OPENSSH PRIVATE KEY-----\n";

describe("LvmGroup through the dynamic-provider host (no SSH)", () => {
  let h: ProviderHarness;
  beforeAll(async () => {
    h = await ProviderHarness.start({
      module: "providers/lvm-group",
      exportName: "LvmGroup",
      args: ARGS,
      config: { "hetzner-fde:sshPrivateKey": KEY },
      secretConfigKeys: ["hetzner-fde:sshPrivateKey"],
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("serializes with allowed modules only and no secret in its text", () => {
    expect(h.program.type).toBe("pulumi-nodejs:dynamic/hetzner-fde:LvmGroup");
    expect(checkSerializedProvider(h.program.provider, { secrets: [KEY] })).toContain("@pulumi/pulumi/log/index.js");
  });

  it("check accepts the DESIGN layout and refuses bad fields by name", async () => {
    expect((await h.check(h.urn, {}, h.inputs())).failures).toEqual([]);
    const { failures } = await h.check(h.urn, {}, h.inputs({ pvs: ["/tmp/img"], lvs: [{ name: "swap", size: "1G", filesystem: "swap", mountPoint: "/swap" }, { name: "x", size: "all", filesystem: "ext4" }, { name: "y", size: "100%FREE", filesystem: "ext4" }] }));
    expect(failures.map((f) => f.property)).toEqual(["pvs[0]", "lvs[0].mountPoint", "lvs[1].size", "lvs[2].size"]);
  });

  it("check refuses an LV removal against the previous inputs, naming the LV, unless allowWipe", async () => {
    const olds = h.inputs();
    const news = h.inputs({ lvs: [ARGS.lvs[1]] });
    expect((await h.check(h.urn, olds, news)).failures).toEqual([{ property: "lvs", reason: expect.stringMatching(/removing LV "swap" \(vg0\/swap\) destroys its data; set allowWipe: true/) }]);
    expect((await h.check(h.urn, olds, { ...news, allowWipe: true })).failures).toEqual([]);
  });

  it("preview with values unknown skips their validation", async () => {
    const { check } = await h.preview(h.urn, h.inputs({ pvs: [UNKNOWN], vgName: UNKNOWN }), undefined);
    expect(check.failures).toEqual([]);
  });
});
