// DropbearInitramfs through the real dynamic-provider host, with no host to talk to: the provider
// serializes (allowed modules only, no secret in its text: the .sh files travel as text), and check
// and diff — all that preview runs — work without any connection; the passphrase never shows.
import { ProviderHarness } from "../harness/harness";
import { checkSerializedProvider } from "../harness/leaks";
import { UNKNOWN } from "../../providers/kernel/resource";

jest.setTimeout(60_000);

const FP = "SHA256:" + "B".repeat(43);
const OPS = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBi9hKn7LneW0nS51taJfIB2av5pP2T45jlKGC053CBH ops@example";
const PASSPHRASE = "Check-Only-Horse-Battery-7-staple";
// Port 9 (discard) on a TEST-NET address: nothing would answer, and nothing may try.
const ARGS = {
  connection: [
    { environment: "rescue", host: "192.0.2.10", port: 9, user: "root", hostKeyFingerprints: [FP] },
    { environment: "system", host: "192.0.2.10", port: 9, user: "root", hostKeyFingerprints: ["SHA256:" + "C".repeat(43)] },
  ],
  hostname: "fsn1-app1.example.com",
  authorizedKeys: [OPS],
  network: { mac: "90:1b:0e:aa:bb:cc", ipv4: "dhcp" },
  passphrase: PASSPHRASE,
};
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-but-secret-0123456789\n-----END OPENSSH PRIVATE KEY-----\n";

describe("DropbearInitramfs through the dynamic-provider host (no SSH)", () => {
  let h: ProviderHarness;
  beforeAll(async () => {
    h = await ProviderHarness.start({
      module: "providers/dropbear-initramfs",
      exportName: "DropbearInitramfs",
      args: ARGS,
      secretPaths: ["passphrase", "hostKeyPrivate"],
      config: { "hetzner-fde:sshPrivateKey": KEY },
      secretConfigKeys: ["hetzner-fde:sshPrivateKey"],
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("serializes with no secret in its text and carries its shell as text", () => {
    expect(h.program.type).toBe("pulumi-nodejs:dynamic/hetzner-fde:DropbearInitramfs");
    expect(checkSerializedProvider(h.program.provider, { secrets: [KEY, PASSPHRASE] })).toEqual(expect.arrayContaining(["crypto", "fs"]));
    // The shell travels inside the provider text (read at module load), so the host needs no files.
    expect(h.program.provider).toContain("cryptroot-unlock");
    expect(h.program.provider).toContain("gate-facts");
  });

  it("check accepts the inputs and refuses bad fields by name, without quoting the passphrase", async () => {
    expect((await h.check(h.urn, {}, h.inputs())).failures).toEqual([]);
    const { failures } = await h.check(h.urn, {}, h.inputs({ port: 22, network: { mac: "nope", ipv4: "dhcp" } }));
    expect(failures.map((f) => f.property)).toEqual(["port", "network.mac"]);
    expect(JSON.stringify(failures)).not.toContain(PASSPHRASE);
  });

  it("preview with values unknown skips their validation", async () => {
    const { check } = await h.preview(h.urn, h.inputs({ connection: UNKNOWN, passphrase: UNKNOWN }), undefined);
    expect(check.failures).toEqual([]);
  });
});
