// Rescue semantics through the client: keys selected with PHP arrays, one-shot consumption by
// the next boot, the power controller's rescue target, /rescue/last, expiry after 60 minutes.
import { md5Fingerprint, parsePublicKey, sha256Fingerprint } from "../../providers/plumbing/keys";
import type { BootTarget } from "../../lab/robot/power";
import { Lab, newPublicKey, rawRequest, startLab } from "./support";

let lab: Lab;

beforeAll(async () => {
  lab = await startLab();
});
afterAll(() => lab.emulator.close());
beforeEach(async () => {
  lab.emulator.model.resetState();
  lab.power.calls.length = 0;
  lab.clock.offsetMs = 0;
});

function rescueTarget(target: BootTarget | undefined): Extract<BootTarget, { kind: "rescue" }>["rescue"] {
  if (target?.kind !== "rescue") throw new Error(`expected a rescue target, got ${JSON.stringify(target)}`);
  return target.rescue;
}

async function twoStoredKeys(): Promise<[string, string]> {
  const a = newPublicKey("a@host");
  const b = newPublicKey("b@host");
  await lab.client.addKey("a", a);
  await lab.client.addKey("b", b);
  return [a, b];
}

describe("authorized_key form encoding", () => {
  it("arms both keys sent as authorized_key[] (the client's encoding)", async () => {
    const [a, b] = await twoStoredKeys();
    const armed = await lab.client.armRescue(1001, { authorizedKeys: [a, md5Fingerprint(parsePublicKey(b))] });
    expect(armed.authorizedKeys.map((k) => k.name)).toEqual(["a", "b"]);
    expect(armed.authorizedKeys[0]).toEqual({
      name: "a",
      fingerprint: md5Fingerprint(parsePublicKey(a)),
      type: "ED25519",
      size: 256,
      createdAt: expect.stringMatching(/^\d{4}-/),
    });
  });

  it("keeps only one key for a plain repeated authorized_key= (PHP semantics)", async () => {
    const [a, b] = await twoStoredKeys();
    const fa = md5Fingerprint(parsePublicKey(a));
    const fb = md5Fingerprint(parsePublicKey(b));
    const response = await rawRequest(lab.emulator.url, "POST", "/boot/1001/rescue", `os=linux&authorized_key=${fa}&authorized_key=${fb}`);
    expect(response.status).toBe(200);
    const keys = JSON.parse(response.text).rescue.authorized_key;
    expect(keys).toEqual([{ key: expect.objectContaining({ fingerprint: fb }) }]);
    expect(keys[0].key).not.toHaveProperty("data");
  });

  it("also reads indexed authorized_key[0]= / [1]=", async () => {
    const [a, b] = await twoStoredKeys();
    const fa = md5Fingerprint(parsePublicKey(a));
    const fb = md5Fingerprint(parsePublicKey(b));
    const response = await rawRequest(lab.emulator.url, "POST", "/boot/1001/rescue", `os=linux&authorized_key%5B0%5D=${fa}&authorized_key%5B1%5D=${fb}`);
    expect(JSON.parse(response.text).rescue.authorized_key.map((k: { key: { fingerprint: string } }) => k.key.fingerprint)).toEqual([fa, fb]);
  });
});

describe("one-shot rescue", () => {
  it("boots rescue once with the armed keys, password and host key, then disk", async () => {
    const [a, b] = await twoStoredKeys();
    const armed = await lab.client.armRescue(1001, { authorizedKeys: [a, b] });
    expect(armed.hostKeys).toHaveLength(1);

    await lab.client.reset(1001, "hw");
    const rescue = rescueTarget(lab.power.calls[0]?.op === "reset" ? lab.power.calls[0].target : undefined);
    expect(rescue.password).toBe(armed.password?.reveal());
    expect(rescue.authorizedKeys).toEqual([a, b]);
    expect(rescue.hostKeys).toHaveLength(1);
    expect(rescue.hostKeys[0].privateKey).toMatch(/BEGIN OPENSSH PRIVATE KEY/);
    expect(sha256Fingerprint(parsePublicKey(rescue.hostKeys[0].publicKey))).toBe(armed.hostKeys[0].fingerprint);
    expect(armed.hostKeys[0]).toEqual({ type: "ssh-ed25519", fingerprint: expect.stringMatching(/^SHA256:/) });

    expect((await lab.client.getRescue(1001)).active).toBe(false);
    const last = await lab.client.getLastRescue(1001);
    expect(last).toMatchObject({ active: false, os: "linux" });
    expect(last.password?.reveal()).toBe(armed.password?.reveal());
    expect(last.hostKeys).toEqual(armed.hostKeys);
    expect(last.bootTime).not.toBeNull();

    await lab.client.reset(1001, "hw");
    expect(lab.power.calls[1]).toEqual({ op: "reset", server: 1001, target: { kind: "disk" } });
  });

  it("a guest-initiated reboot consumes the arm through the BootArbiter", async () => {
    await lab.client.armRescue(1001);
    expect(lab.emulator.model.takeNextBoot(1001).kind).toBe("rescue");
    expect(lab.emulator.model.takeNextBoot(1001)).toEqual({ kind: "disk" });
  });

  it("power on from off boots the armed rescue", async () => {
    await lab.client.reset(1001, "power_long");
    await lab.client.armRescue(1001);
    await lab.client.reset(1001, "power");
    expect(lab.power.calls.at(-1)).toMatchObject({ op: "powerOn", target: { kind: "rescue" } });
  });

  it("a failed power action leaves rescue armed", async () => {
    await lab.client.armRescue(1001);
    lab.power.failNext = true;
    await expect(lab.client.reset(1001, "hw")).rejects.toMatchObject({ code: "RESET_FAILED" });
    expect((await lab.client.getRescue(1001)).active).toBe(true);
  });

  it("expires 60 minutes after arming", async () => {
    await lab.client.armRescue(1001);
    lab.clock.advance(59 * 60_000);
    expect((await lab.client.getRescue(1001)).active).toBe(true);
    lab.clock.advance(2 * 60_000);
    expect((await lab.client.getRescue(1001)).active).toBe(false);
    await lab.client.reset(1001, "hw");
    expect(lab.power.calls.at(-1)).toMatchObject({ target: { kind: "disk" } });
  });

  it("can hide host keys like real Robot (host_key: [])", async () => {
    const quiet = await startLab({ reportHostKeys: false });
    try {
      const armed = await quiet.client.armRescue(1001);
      expect(armed.hostKeys).toEqual([]);
      await quiet.client.reset(1001, "hw");
      // The lab still boots with a minted key; only the report is empty.
      expect(rescueTarget(quiet.power.calls[0]?.op === "reset" ? quiet.power.calls[0].target : undefined).hostKeys).toHaveLength(1);
    } finally {
      await quiet.emulator.close();
    }
  });
});
