// DropbearInitramfs's plan, pure: which steps each observed host gets, in which order, and what is
// refused. The "converged" host is the real Debian 12 image of the fixtures with the files it was
// built from, so the plan is checked against an image update-initramfs really made.
import { adapterByKey } from "../../providers/distro";
import { parseGateFacts } from "../../providers/dropbear-initramfs/gate";
import { desiredFiles, expectationDigest, fileSha256, gateExpectation, planSteps } from "../../providers/dropbear-initramfs/plan";
import { lockedObservation } from "../../providers/dropbear-initramfs/probe";
import type { DropbearInitramfsOutputs, DropbearObserved } from "../../providers/dropbear-initramfs/types";
import { INPUTS, KERNEL, KEY, PASSPHRASE, gateFactsText } from "./dropbear-fixtures";

const DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n';
const adapter = adapterByKey("debian-12");

/** The system as the fixture image left it: everything in place. */
function converged(): DropbearObserved {
  const files = desiredFiles(adapter, INPUTS, KEY).map((f) => ({ path: f.path, sha256: fileSha256(f) }));
  const stale = adapter.dropbear.hostKeyFiles.others.map((path) => ({ path, sha256: null }));
  return {
    environment: "system",
    osRelease: DEBIAN_12,
    rootOpen: true,
    packages: adapter.packages.map((name) => ({ name, installed: true })),
    files: [...files, ...stale],
    newestKernel: KERNEL,
    modulesBlock: "virtio_net",
    nic: { name: "eth0", module: "virtio_net" },
    image: { facts: parseGateFacts(gateFactsText()) },
    initrdNewerThanBoot: false,
    runningImage: null,
  };
}

const RECORDED = { hostKeyPrivate: KEY.privateKeyDropbear } as DropbearInitramfsOutputs;
const kinds = (observed: DropbearObserved, desired = INPUTS, recorded: DropbearInitramfsOutputs | null = RECORDED) => planSteps(observed, desired, recorded).map((s) => s.kind);

describe("DropbearInitramfs plan", () => {
  it("plans nothing for the host the fixture image came from", () => {
    expect(kinds(converged())).toEqual([]);
  });

  it("in rescue, opens the root first and nothing else (the rest can only be judged from inside it)", () => {
    const steps = planSteps({ ...lockedObservation(), environment: "rescue" }, INPUTS, null);
    expect(steps.map((s) => s.kind)).toEqual(["openRoot"]);
    expect(JSON.stringify(steps)).not.toContain(PASSPHRASE);
  });

  it("create in rescue: files before packages (one build by dpkg's trigger), gate, close, then the closed loop", () => {
    const fresh: DropbearObserved = {
      ...converged(),
      environment: "rescue",
      packages: adapter.packages.map((name) => ({ name, installed: false })),
      files: [],
      modulesBlock: null,
      image: { facts: { ...parseGateFacts(gateFactsText()), initrd: { ...parseGateFacts(gateFactsText()).initrd, listing: [] } } },
    };
    expect(kinds(fresh, INPUTS, null)).toEqual(["writeConfig", "installPackages", "gate", "closeRoot", "rebootAndUnlock"]);
    // Converged in rescue but never booted (a create killed before its reboot): gate and the loop only.
    expect(kinds({ ...converged(), environment: "rescue" }, INPUTS, null)).toEqual(["gate", "closeRoot", "rebootAndUnlock"]);
  });

  it("keeps every secret out of the plan's data: the host key and the passphrase are Secrets", () => {
    const steps = planSteps({ ...converged(), files: [] }, { ...INPUTS, rebootOnUpdate: true }, RECORDED);
    const text = JSON.stringify(steps);
    expect(text).not.toContain(PASSPHRASE);
    expect(text).not.toContain(KEY.privateKeyDropbear);
    expect(text).toContain("[secret]");
  });

  it("a changed key rewrites the files and rebuilds once, then gates; no reboot unless asked", () => {
    const desired = { ...INPUTS, authorizedKeys: [INPUTS.authorizedKeys[1]] };
    expect(kinds(converged(), desired)).toEqual(["writeConfig", "buildInitramfs", "gate"]);
    expect(kinds(converged(), { ...desired, rebootOnUpdate: true })).toEqual(["writeConfig", "buildInitramfs", "gate", "rebootAndUnlock"]);
  });

  it("a kernel update's image without dropbear is rebuilt (drift), with the newest kernel", () => {
    const observed = converged();
    const facts = parseGateFacts(gateFactsText());
    const noDropbear = { ...observed, image: { facts: { ...facts, initrd: { ...facts.initrd, listing: facts.initrd.listing.filter((p) => !p.endsWith("/dropbear")) } } } };
    const steps = planSteps(noDropbear, INPUTS, RECORDED);
    expect(steps.map((s) => s.kind)).toEqual(["buildInitramfs", "gate"]);
    expect(steps[0]).toMatchObject({ kernel: KERNEL, root: "" });
  });

  it("a foreign host key left in the dropbear directory and a changed NIC driver rewrite the files", () => {
    const observed = converged();
    const withRsa = { ...observed, files: observed.files.map((f) => (f.path.endsWith("rsa_host_key") ? { ...f, sha256: "ab".repeat(32) } : f)) };
    expect(kinds(withRsa)).toEqual(["writeConfig", "buildInitramfs", "gate"]);
    expect(kinds({ ...observed, nic: { name: "eno1", module: "igb" } })).toEqual(["writeConfig", "buildInitramfs", "gate"]);
  });

  it("installs what is missing on a running system (its trigger builds the image once)", () => {
    const observed = converged();
    expect(kinds({ ...observed, packages: observed.packages.map((p) => ({ ...p, installed: p.name !== "busybox" })) })).toEqual(["installPackages", "gate"]);
  });

  it("unlocks a host waiting in its initramfs, or refuses when unlock is off", () => {
    expect(kinds(lockedObservation())).toEqual(["unlock"]);
    expect(() => planSteps(lockedObservation(), { ...INPUTS, unlock: false }, RECORDED)).toThrow(/waits in its initramfs.*unlockCommand output, or set unlock: true/);
  });

  it("reboots a running system only when asked and when its initrd is newer than the boot", () => {
    expect(kinds({ ...converged(), initrdNewerThanBoot: true }, { ...INPUTS, rebootOnUpdate: true })).toEqual(["gate", "rebootAndUnlock"]);
    expect(kinds({ ...converged(), initrdNewerThanBoot: false }, { ...INPUTS, rebootOnUpdate: true })).toEqual([]);
  });

  it("refuses an unsupported release and a MAC no interface has, naming what to do", () => {
    expect(() => planSteps({ ...converged(), osRelease: 'PRETTY_NAME="Ubuntu 18.04.6 LTS"\nID=ubuntu\nVERSION_ID="18.04"\n' }, INPUTS, RECORDED)).toThrow(/not a supported release: expected one of Debian 11/);
    expect(() => planSteps({ ...converged(), nic: null }, INPUTS, RECORDED)).toThrow(/no interface of the host has network\.mac 02:fc:00:00:00:01/);
  });

  it("judges a recorded image by the digest of what it matched", () => {
    const expectation = gateExpectation(adapter, INPUTS, KEY);
    expect(kinds({ ...converged(), image: { matchedDigest: expectationDigest(expectation) } })).toEqual([]);
    expect(kinds({ ...converged(), image: { matchedDigest: "0".repeat(64) } })).toEqual(["buildInitramfs", "gate"]);
  });
});
