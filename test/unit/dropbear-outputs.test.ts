// DropbearInitramfs's outputs: what a converged probe records, what diff plans against afterwards
// (the recorded facts plan nothing), drift as read reports it, the operator's unlock command.
import { parseGateFacts } from "../../providers/dropbear-initramfs/gate";
import { desiredFiles, fileSha256, planSteps } from "../../providers/dropbear-initramfs/plan";
import { lockedObservation } from "../../providers/dropbear-initramfs/probe";
import { inputsFromOutputs, observedFromOutputs, outputsFrom, unlockCommandFor } from "../../providers/dropbear-initramfs/outputs";
import { adapterByKey } from "../../providers/distro";
import type { DropbearObserved } from "../../providers/dropbear-initramfs/types";
import { INPUTS, KERNEL, KEY, PASSPHRASE, gateFactsText } from "./dropbear-fixtures";

const adapter = adapterByKey("debian-12");
const converged: DropbearObserved = {
  environment: "system",
  osRelease: 'ID=debian\nVERSION_ID="12"\n',
  rootOpen: true,
  packages: adapter.packages.map((name) => ({ name, installed: true })),
  files: [...desiredFiles(adapter, INPUTS, KEY).map((f) => ({ path: f.path, sha256: fileSha256(f) })), ...adapter.dropbear.hostKeyFiles.others.map((path) => ({ path, sha256: null }))],
  newestKernel: KERNEL,
  modulesBlock: "virtio_net",
  nic: { name: "eth0", module: "virtio_net" },
  image: { facts: parseGateFacts(gateFactsText()) },
  initrdNewerThanBoot: false,
  runningImage: null,
};
const reached = { environment: "system" as const, host: "127.0.0.1:2201" };

describe("DropbearInitramfs outputs", () => {
  it("record the pinned key, known_hosts, the unlock command and no passphrase", () => {
    const outs = outputsFrom(INPUTS, converged, reached);
    expect(outs).toMatchObject({
      hostKeyFingerprint: KEY.fingerprint,
      knownHosts: [`[127.0.0.1]:2221 ${KEY.publicKey.split(" ").slice(0, 2).join(" ")}`],
      unlockCommand: "ssh -o UserKnownHostsFile=dropbear_known_hosts -o StrictHostKeyChecking=yes -p 2221 root@127.0.0.1 cryptroot-unlock",
      initramfsProfile: { environment: "initramfs", host: "127.0.0.1", port: 2221, hostKeyFingerprints: [KEY.fingerprint] },
      environment: "system",
      distro: "debian-12",
      drift: [],
    });
    expect(JSON.stringify(inputsFromOutputs(outs))).not.toContain(PASSPHRASE);
    expect(JSON.stringify(outs)).not.toContain(PASSPHRASE);
    expect(outs.imageDigest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("the recorded facts plan nothing for the same inputs, and a change for changed keys", () => {
    const outs = outputsFrom(INPUTS, converged, reached);
    expect(planSteps(observedFromOutputs(outs), INPUTS, outs)).toEqual([]);
    expect(planSteps(observedFromOutputs(outs), { ...INPUTS, authorizedKeys: [INPUTS.authorizedKeys[0]] }, outs).map((s) => s.kind)).toEqual(["writeConfig", "buildInitramfs", "gate"]);
  });

  it("a locked host is drift that the next up unlocks; its recorded facts plan the unlock", () => {
    const outs = outputsFrom(INPUTS, lockedObservation(), { environment: "initramfs", host: "127.0.0.1:2221" });
    expect(outs.drift).toEqual(["the host waits locked in its initramfs; the next `pulumi up` unlocks it"]);
    expect(planSteps(observedFromOutputs(outs), INPUTS, outs).map((s) => s.kind)).toEqual(["unlock"]);
  });

  it("an image without dropbear is drift, named per kernel", () => {
    const facts = parseGateFacts(gateFactsText());
    const broken = { ...converged, image: { facts: { ...facts, initrd: { ...facts.initrd, listing: facts.initrd.listing.filter((p) => !p.endsWith("/dropbear")) } } } };
    const outs = outputsFrom(INPUTS, broken, reached);
    expect(outs.drift).toEqual([expect.stringMatching(/^newest kernel's image \(6\.1\.0-50-amd64\): dropbear: the image has no dropbear binary/)]);
    expect(outs.imageDigest).toBeNull();
  });

  it("brackets an IPv6 address in the unlock command", () => {
    expect(unlockCommandFor("2a01:4f8::2", 2222)).toBe("ssh -o UserKnownHostsFile=dropbear_known_hosts -o StrictHostKeyChecking=yes -p 2222 root@[2a01:4f8::2] cryptroot-unlock");
  });
});
