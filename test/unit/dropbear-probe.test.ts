// DropbearInitramfs's probe parsing and the loop's verification verdict (pure parts).
import { verifyProblems } from "../../providers/dropbear-initramfs/loop";
import { allProfiles, environmentOf, initrdCacheNote, parseProbe, probedPaths } from "../../providers/dropbear-initramfs/probe";
import { FP, INPUTS, KEY, KERNEL, gateFactsText } from "./dropbear-fixtures";

describe("parseProbe", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const head = [
    "rootopen 1",
    `osrelease ${b64('ID=debian\nVERSION_ID="12"\n')}`,
    "pkg dropbear-initramfs 1",
    "pkg cryptsetup-initramfs 1",
    "pkg busybox 0",
    `filesha /etc/dropbear/initramfs/dropbear.conf ${"a".repeat(64)}`,
    "filesha /etc/dropbear/initramfs/dropbear_rsa_host_key -",
    "modules virtio_net",
    "newer-than-boot 1",
    "running 6.1.0-9-amd64",
  ].join("\n");

  it("reads a system's records, the newest image and the running one", () => {
    const observed = parseProbe("system", `${head}\n${gateFactsText()}@running\n${gateFactsText()}`);
    expect(observed).toMatchObject({
      environment: "system",
      rootOpen: true,
      osRelease: 'ID=debian\nVERSION_ID="12"\n',
      packages: [{ name: "dropbear-initramfs", installed: true }, { name: "cryptsetup-initramfs", installed: true }, { name: "busybox", installed: false }],
      files: [{ path: "/etc/dropbear/initramfs/dropbear.conf", sha256: "a".repeat(64) }, { path: "/etc/dropbear/initramfs/dropbear_rsa_host_key", sha256: null }],
      modulesBlock: "virtio_net",
      newestKernel: KERNEL,
      nic: { name: "eth0", module: "virtio_net" },
      initrdNewerThanBoot: true,
    });
    expect(observed.image && "facts" in observed.image && observed.image.facts.initrd.listing.length).toBeGreaterThan(500);
    expect(observed.runningImage?.facts.initrd.kernelVersion).toBe(KERNEL);
  });

  it("a cache record is no fact: the images read the same from the cache as unpacked", () => {
    const cached = parseProbe("system", `${head}\ninitrdcache hit\n${gateFactsText()}`);
    expect(cached).toEqual(parseProbe("system", `${head}\ninitrdcache miss\n${gateFactsText()}`));
    expect(cached.image && "facts" in cached.image && cached.image.facts.initrd.listing.length).toBeGreaterThan(500);
  });

  it("says in the log how each image's records were read", () => {
    expect(initrdCacheNote(`${head}\ninitrdcache hit\n${gateFactsText()}@running\ninitrdcache miss\n`)).toBe(
      "initrd records: from the host's cache (the file is unchanged since it was unpacked); unpacked",
    );
    expect(initrdCacheNote(`${head}\ninitrdcache miss\n`)).toBe("initrd records: unpacked");
    expect(initrdCacheNote("rootopen 0\n")).toBeNull();
  });

  it("reads a rescue whose root is not open yet, and an empty modules block", () => {
    expect(parseProbe("rescue", "rootopen 0\n")).toMatchObject({ environment: "rescue", rootOpen: false, image: null, newestKernel: null });
    expect(parseProbe("system", "rootopen 1\nmodules \n").modulesBlock).toBe("");
    expect(parseProbe("system", "rootopen 1\nmodules -\n").modulesBlock).toBeNull();
  });
});

describe("where the probe is", () => {
  it("tells the environments apart by the host key, the initramfs one derived from the stack's key", () => {
    const profiles = allProfiles(INPUTS, KEY.fingerprint);
    expect(profiles.map((p) => p.environment)).toEqual(["system", "initramfs", "rescue"]);
    expect(profiles[1]).toEqual({ environment: "initramfs", host: "127.0.0.1", port: 2221, user: "root", hostKeyFingerprints: [KEY.fingerprint] });
    expect(environmentOf(KEY.fingerprint, profiles)).toBe("initramfs");
    expect(environmentOf(FP, profiles)).toBe("rescue");
    expect(() => environmentOf("SHA256:unknown", profiles)).toThrow(/no connection profile pins/);
  });

  it("asks for the digests of every release's paths", () => {
    expect(probedPaths()).toEqual(expect.arrayContaining(["/etc/dropbear-initramfs/config", "/etc/dropbear/initramfs/dropbear.conf", "/etc/initramfs-tools/conf.d/hetzner-fde"]));
  });
});

describe("verifyProblems", () => {
  const ok = "array 11111111:22222222:33333333:44444444 1\nluks luks-3f1c 1\nmount / 1\nmount /boot 1\nmount swap:/dev/vg0/swap 1\nhostname lab-1\nhostname lab-1\n";
  it("accepts a system booted as configured (short or full host name)", () => {
    expect(verifyProblems(ok, "lab-1.example.com")).toEqual([]);
  });
  it("names each piece that is not", () => {
    const bad = ok.replace("luks luks-3f1c 1", "luks luks-3f1c 0").replace("mount /boot 1", "mount /boot 0").replace(/hostname lab-1/g, "hostname rescue");
    expect(verifyProblems(bad, "lab-1.example.com")).toEqual(["LUKS mapping luks-3f1c is not open", "/boot is not mounted", 'the host name is "rescue", expected "lab-1.example.com"']);
  });
});
