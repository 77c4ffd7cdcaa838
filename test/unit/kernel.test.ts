// The kernel's pure parts: the one host classifier, the missing-key message, the give-up message of
// the converge loop, and diff = the plan against the recorded facts (LvmGroup's definition).
import { classifyHost, MISSING_PRIVATE_KEY, notConvergedMessage, readProviderConfig, requirePrivateKey } from "../../providers/kernel";
import type { EndpointObservation } from "../../providers/plumbing/ssh";

const RESCUE = "SHA256:" + "r".repeat(43);
const SYSTEM = "SHA256:" + "s".repeat(43);
const DROPBEAR = "SHA256:" + "d".repeat(43);
const OTHER = "SHA256:" + "o".repeat(43);

const seen = (fingerprint: string | null, software = "OpenSSH_9.2p1"): EndpointObservation =>
  ({ kind: "ssh", software, hostKey: fingerprint === null ? null : { type: "ssh-ed25519", base64: "", fingerprint } });

describe("classifyHost (the one host classifier)", () => {
  const all = [
    { environment: "rescue" as const, hostKeyFingerprints: [RESCUE] },
    { environment: "system" as const, hostKeyFingerprints: [SYSTEM] },
    { environment: "initramfs" as const, hostKeyFingerprints: [DROPBEAR] },
  ];

  it.each<[string, EndpointObservation, string]>([
    ["the rescue key", seen(RESCUE), "rescue"],
    ["the installed system's key", seen(SYSTEM), "system"],
    ["the pinned dropbear key", seen(DROPBEAR, "dropbear_2022.83"), "initramfs"],
    ["a key no profile pins", seen(OTHER), "unknown-key"],
    ["an unpinned dropbear while initramfs keys are pinned", seen(OTHER, "dropbear_2022.83"), "unknown-key"],
    ["nothing on the port", { kind: "none", reason: "ECONNREFUSED" }, "unreachable"],
    ["no key exchange", seen(null), "unreachable"],
  ])("classifies %s", (_name, observation, kind) => {
    expect(classifyHost(observation, all).kind).toBe(kind);
  });

  it("never calls an unknown key 'system' (RescueBoot's old classifier did), and names the key", () => {
    expect(classifyHost(seen(OTHER), [all[0]])).toEqual({ kind: "unknown-key", fingerprint: OTHER, software: "OpenSSH_9.2p1" });
  });

  it("takes an unpinned dropbear for the initramfs when no profile pins initramfs keys", () => {
    expect(classifyHost(seen(OTHER, "dropbear_2022.83"), [all[0]]).kind).toBe("initramfs");
  });
});

describe("configure", () => {
  it("reads the key and Robot credentials, and names the one missing-key fix: the key on stdin, never in argv", () => {
    const config = readProviderConfig((key) => ({ robotUser: "#ws+x", robotPassword: "pw" })[key as "robotUser"]);
    expect(config.robot).toMatchObject({ user: "#ws+x", url: "https://robot-ws.your-server.de" });
    expect(() => requirePrivateKey(config, "LvmGroup")).toThrow(`LvmGroup: ${MISSING_PRIVATE_KEY}`);
    expect(MISSING_PRIVATE_KEY).toContain("pulumi config set --secret hetzner-fde:sshPrivateKey < ~/.ssh/key");
    expect(MISSING_PRIVATE_KEY).not.toMatch(/\$\(cat/);
  });
});

describe("the converge loop's give-up message", () => {
  it("names the steps that kept coming back", () => {
    const message = notConvergedMessage("LvmGroup", "127.0.0.1:2201", 4, [{ kind: "lvextend" }, { kind: "growFilesystem" }, { kind: "lvextend" }]);
    expect(message).toMatch(/after 4 rounds.*kept returning lvextend, growFilesystem\./);
  });
});
