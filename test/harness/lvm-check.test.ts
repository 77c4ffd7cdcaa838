// LvmGroup through the real dynamic-provider host, with no host to talk to: the provider serializes
// (allowed modules only, no secret in its text), check and diff — all that preview runs — work
// without any connection, and outputs stored under the old field names migrate without one.
import { ProviderHarness } from "./harness";
import { checkSerializedProvider } from "./leaks";
import { UNKNOWN } from "../../providers/kernel/resource";
import { editFstab, LogicalVolumeSpec, VolumeState } from "../../providers/lvm-group";

jest.setTimeout(60_000);

const FP = "SHA256:" + "B".repeat(43);
// Port 9 (discard) on a TEST-NET address: nothing would answer, and nothing may try.
const CONNECTION = [{ environment: "rescue", host: "192.0.2.10", port: 9, user: "root", hostKeyFingerprints: [FP] }];
const ARGS = {
  connection: CONNECTION,
  pvs: ["/dev/mapper/cryptroot"],
  vgName: "vg0",
  volumes: [
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
    const { failures } = await h.check(h.urn, {}, h.inputs({ pvs: ["/tmp/img"], volumes: [{ name: "swap", size: "1G", filesystem: "swap", mountPoint: "/swap" }, { name: "x", size: "all", filesystem: "ext4" }, { name: "y", size: "100%FREE", filesystem: "ext4" }] }));
    expect(failures.map((f) => f.property)).toEqual(["pvs[0]", "volumes[0].mountPoint", "volumes[1].size", "volumes[2].size"]);
  });

  it("check refuses an LV removal against the previous inputs, naming the LV, unless allowWipe", async () => {
    const olds = h.inputs();
    const news = h.inputs({ volumes: [ARGS.volumes[1]] });
    expect((await h.check(h.urn, olds, news)).failures).toEqual([{ property: "volumes", reason: expect.stringMatching(/removing LV "swap" \(vg0\/swap\) destroys its data; set allowWipe: true/) }]);
    expect((await h.check(h.urn, olds, { ...news, allowWipe: true })).failures).toEqual([]);
  });

  it("preview with values unknown skips their validation", async () => {
    const { check } = await h.preview(h.urn, h.inputs({ pvs: [UNKNOWN], vgName: UNKNOWN }), undefined);
    expect(check.failures).toEqual([]);
  });

  it("migrates outputs stored with the old names (lvs = the request, volumes = the observed LVs) on the next up, with no host work", async () => {
    const EXTENT = 4 * 1024 * 1024;
    const lv = (name: string, extents: number, filesystem: string): VolumeState => ({
      name, uuid: `${name}-lv-uuid`, path: `/dev/vg0/${name}`, sizeBytes: extents * EXTENT, extents, active: true,
      filesystem, filesystemUuid: `${name}-fs-uuid`, filesystemSizeBytes: filesystem === "swap" ? null : extents * EXTENT, mountedAt: null, managed: true,
    });
    const observed = [lv("swap", 256, "swap"), lv("root", 2303, "ext4")];
    const { volumes: request, ...rest } = h.inputs();
    const oldInputs = { ...rest, lvs: request };
    const fstab = editFstab("", { vgName: "vg0", volumes: ARGS.volumes as LogicalVolumeSpec[] }, observed);
    const oldOutputs = {
      ...oldInputs, environment: "rescue", host: "192.0.2.10:9", vgUuid: "vg-uuid-0001", sizeBytes: 2559 * EXTENT, freeBytes: 0, extentSizeBytes: EXTENT,
      extentCount: 2559, freeExtents: 0, physicalVolumes: [{ path: "/dev/mapper/cryptroot", uuid: "pv-uuid-0001", sizeBytes: 2559 * EXTENT }],
      volumes: observed, fstabLines: fstab.split("\n").filter((line) => line !== ""),
    };
    h.state.record({ urn: h.urn, id: "vg0:vg-uuid-0001", inputs: oldInputs, outputs: oldOutputs, plainInputs: oldInputs, plainOutputs: oldOutputs, op: "create" });
    const logged = h.logs.length;

    const up = await h.up();
    expect(up.op).toBe("update");
    const stored = h.state.resources.get(h.urn)?.plainOutputs as Record<string, unknown>;
    expect(stored).not.toHaveProperty("lvs");
    expect(stored.volumes).toEqual(request);
    expect(stored.observedVolumes).toEqual(observed);
    expect(stored.vgUuid).toBe("vg-uuid-0001");
    // No connection was tried (192.0.2.10:9 answers nothing) and no step ran.
    expect(h.logs.slice(logged)).not.toMatch(/step|192\.0\.2\.10/);
    expect((await h.up()).op).toBe("same");
  });
});
