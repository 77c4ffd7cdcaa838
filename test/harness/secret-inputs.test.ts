// A passphrase handed to a resource as a plain string (say, read with config.require instead of
// config.requireSecret) must still be registered as a secret input, because the engine stores
// inputs as given and the state file would otherwise hold it in clear text.
import { isSecretWrapper } from "./program-runner";
import { ProviderHarness } from "./harness";

// Starting a harness (a program child and a provider host) takes 5-12 s on a loaded 2-core machine.
jest.setTimeout(30_000);

const PASSPHRASE = "Plain-string-passphrase-4711!";
const EXTRA = "second-Plain-passphrase-0815!";
const PROFILE = { environment: "rescue", host: "127.0.0.1", port: 22, user: "root", hostKeyFingerprints: ["SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"] };

const cases: Array<{ name: string; module: string; exportName: string; args: Record<string, unknown>; secretKeys: string[] }> = [
  {
    name: "LuksVolume",
    module: "providers/luks-volume",
    exportName: "LuksVolume",
    args: { connection: [PROFILE], device: "/dev/md1", mapperName: "cryptroot", passphrase: PASSPHRASE, extraPassphrases: [EXTRA] },
    secretKeys: ["passphrase", "extraPassphrases"],
  },
  {
    name: "InstallImage",
    module: "providers/install-image",
    exportName: "InstallImage",
    args: {
      rescue: PROFILE,
      drives: [{ path: "/dev/nvme0n1" }, { path: "/dev/nvme1n1" }],
      raid: { level: 1 },
      partitions: [{ mount: "/boot", fs: "ext4", size: "1G" }, { mount: "lvm", vg: "vg0", size: "all", crypt: true }],
      volumes: [{ vg: "vg0", name: "root", mount: "/", fs: "ext4", size: "all" }],
      image: "Debian-bookworm-latest-amd64-base",
      hostname: "host-1",
      cryptPassphrase: PASSPHRASE,
    },
    secretKeys: ["cryptPassphrase"],
  },
];

describe.each(cases)("$name registers its secret inputs as secrets even when given plain strings", ({ module, exportName, args, secretKeys }) => {
  let h: ProviderHarness;

  beforeAll(async () => {
    h = await ProviderHarness.start({ module, exportName, args, secretPaths: [] });
  });

  afterAll(async () => {
    await h?.stop();
  });

  // The inputs must be valid, or the secret assertions below would hold for inputs no real
  // program could send. Check runs in the real provider host and opens no connection.
  it("passes check with these inputs", async () => {
    expect((await h.check(h.urn, {}, h.inputs())).failures).toEqual([]);
  });

  it.each(secretKeys)("%s", (key) => {
    expect(isSecretWrapper(h.program.inputs[key])).toBe(true);
  });

  it("leaves the other inputs plain", () => {
    const plainKeys = Object.keys(args).filter((key) => !secretKeys.includes(key));
    for (const key of plainKeys) expect(isSecretWrapper(h.program.inputs[key])).toBe(false);
  });
});
