// Every shell text InstallImage's steps send is valid bash (bash -n), built with sh`` quoting, and
// free of secrets: the host key, the one-time and the real passphrase travel on stdin only.
import { createLogger } from "../../providers/plumbing/log";
import { execFileSync } from "child_process";
import { InstallContext, InstallImageStep, steps } from "../../providers/install-image";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
import type { SshSession } from "../../providers/plumbing/ssh";
import { Secret } from "../../providers/plumbing/secret";
import { ShellCommand } from "../../providers/plumbing/shell";
import { PASSPHRASE, raid1Lvm } from "./install-image-fixtures";

interface Sent {
  readonly text: string;
  readonly stdin: string | null;
}

function fakeContext(sent: Sent[]): InstallContext {
  const session = {
    exec: async (command: ShellCommand, options: { stdin?: Secret | string } = {}) => {
      const stdin = options.stdin === undefined ? null : typeof options.stdin === "string" ? options.stdin : options.stdin.reveal();
      sent.push({ text: command.text, stdin });
      // Enough for each step's loop to finish at once: installimage exited 0, one keyslot opens (cryptsetup
      // says so on stderr), no resync. Every other command prints nothing.
      const stdout = /kill -0/.test(command.text) ? "0\u001erun\u001e" : "";
      const stderr = /--test-passphrase/.test(command.text) ? "Key slot 0 unlocked." : "";
      return { exitCode: 0, stdout, stderr, durationMs: 1 };
    },
  };
  return {
    resource: "InstallImage",
    host: "test",
    secrets: [],
    session: { ssh: session as unknown as SshSession, awaiting: null, commandsRun: 0, close: async () => undefined },
    keys: { hostKeyPrivate: new Secret(HOST_KEY.private), oneTimePassphrase: new Secret("OneTimeSecretXyz123"), passphrase: new Secret(PASSPHRASE) },
    config: { privateKey: null, robot: null },
    purpose: "converge",
    settings: { installImagePollMs: "1" },
    log: createLogger({ sink: () => undefined }),
  };
}

// The installed system's host key, generated as the provider does it; its private body must never be in a command.
const HOST_KEY = generateEd25519KeyPair("root@lab-1");
const HOST_KEY_BODY = HOST_KEY.private.split("\n")[1];
const PBKDF = { type: "argon2id", memoryKiB: 32768, iterations: 4 } as const;
// A port nothing listens on: the reboot step's wait for the rescue to go down ends at once.
const RESCUE = { environment: "rescue", host: "127.0.0.1", port: 1, user: "root", hostKeyFingerprints: ["SHA256:" + "R".repeat(43)] } as const;

const lv = { kind: "lv", device: "/dev/vg0/root" } as const;
const cryptPart = { kind: "part", device: "/dev/md1", crypt: true } as const;
const drives = raid1Lvm().drives;

const STEPS: InstallImageStep[] = [
  { kind: "stopInstaller" },
  { kind: "writeAutosetup", text: "DRIVE1 /dev/nvme0n1\n", crypt: true },
  { kind: "runInstallimage", drives, configSha256: "abc", allowWipe: false },
  { kind: "runInstallimage", drives: [{ path: "/dev/sda", wwn: "0x5000c500a1b2c3d4" }], configSha256: "abc", allowWipe: true },
  { kind: "installHostKey", root: lv, comment: "root@lab-1" },
  { kind: "installHostKey", root: cryptPart, comment: "root@lab-1" },
  { kind: "replacePassphrase", devices: ["/dev/md1"], pbkdf: PBKDF },
  { kind: "scrubSecrets", root: lv },
  { kind: "writeMarker", root: lv, configSha256: "abc" },
  { kind: "setHostname", hostname: "lab-2.example.com", root: null },
  { kind: "setHostname", hostname: "lab-2", root: lv },
  { kind: "reassemble", arrays: ["/dev/md0"], force: true },
  { kind: "readdMember", array: "/dev/md1", member: "/dev/nvme1n1p2", uuid: "aaaabbbbccccddddeeeeffff00001111", pin: { path: "/dev/nvme1n1", serial: "LAB100001N1" }, allowWipe: false },
  { kind: "waitForResync", speedLimitMax: 2000000 },
  { kind: "tuneResync", speedLimitMax: 2000000 },
  { kind: "reboot", rescue: RESCUE, system: null },
  { kind: "stopStorage", drives },
  { kind: "wipeDrives", drives },
];

describe.each(STEPS.map((step) => [step.kind, step] as const))("step %s", (_kind, step) => {
  const sent: Sent[] = [];
  beforeAll(async () => {
    const apply = steps[step.kind] as (ctx: InstallContext, step: InstallImageStep) => Promise<void>;
    await apply(fakeContext(sent), step);
  });

  it("sends only text bash can parse", () => {
    expect(sent.length).toBeGreaterThan(0);
    for (const { text } of sent) execFileSync("bash", ["-n", "-c", text], { stdio: "pipe" });
  });

  it("never puts a secret into command text", () => {
    for (const { text } of sent) {
      expect(text).not.toContain(HOST_KEY_BODY);
      expect(text).not.toContain("OneTimeSecretXyz123");
      expect(text).not.toContain(PASSPHRASE);
    }
  });
});

it("the secrets reach the host on stdin: the host key, and CRYPTPASSWORD appended to /autosetup", async () => {
  const sent: Sent[] = [];
  const ctx = fakeContext(sent);
  await steps.writeAutosetup(ctx, { kind: "writeAutosetup", text: "DRIVE1 /dev/nvme0n1\n", crypt: true });
  await steps.installHostKey(ctx, { kind: "installHostKey", root: lv, comment: "root@lab-1" });
  expect(sent[0].stdin).toBe("DRIVE1 /dev/nvme0n1\nCRYPTPASSWORD OneTimeSecretXyz123\n");
  expect(sent[1].stdin).toContain(HOST_KEY_BODY);
  // The public half is derived from the run's private key: the pair installed is one key.
  expect(sent[1].text).toContain(HOST_KEY.public);
});
