// LuksVolume plan and diff: observed host state × desired inputs → named steps, refusals, and
// what diff reports (pure; no host).
import {
  compareOutputs,
  definition,
  LuksObserved,
  LuksVolumeInputs,
  LuksVolumeOutputs,
  parseProbe,
  plan,
  planDelete,
} from "../../providers/luks-volume";
import { KernelProvider } from "../../providers/kernel";
import { PROBE_OPEN_LUKS } from "./luks-fixtures";

const UUID = "c6eb6ea1-c661-46b9-a740-e28d8c9a5756";
const P = "Correct-Horse-Battery-9-staple";
const PBKDF = { type: "argon2id" as const, memoryKiB: 32768, iterations: 4, parallelism: 1 };
const CONNECTION = [{ environment: "rescue" as const, host: "127.0.0.1", port: 2201, user: "root", hostKeyFingerprints: ["SHA256:" + "A".repeat(43)] }];

type PlanCase = Partial<LuksVolumeInputs>;
const OLD = "Old-Horse-Battery-8-staple";

const desired = (over: PlanCase = {}): LuksVolumeInputs => ({
  connection: CONNECTION, device: "/dev/nvme1n1p1", mapperName: "data", passphrase: P, pbkdf: PBKDF, label: "lab-data", providerVersion: "1",
  ...over,
});

/** Recorded outputs of an update: `retired` passphrases the stack used before and no longer lists. */
const recordedWith = (retired: number): LuksVolumeOutputs =>
  ({ ...desired(), passphrase: retired > 0 ? OLD : P, uuid: UUID, environment: "rescue", host: "127.0.0.1:2201", observed: {} }) as unknown as LuksVolumeOutputs;

/** The captured open container, keys as given. */
const openLuks = (keys: LuksObserved["keys"] = { passphrase: 0, extras: [], retired: [] }, over: Partial<LuksObserved> = {}): LuksObserved => ({
  ...parseProbe(PROBE_OPEN_LUKS, { extras: 0, retired: 0 }),
  keys,
  ...over,
});

const blank = (over: Partial<LuksObserved> = {}): LuksObserved => ({
  exists: true,
  sizeBytes: 4294967296,
  disks: [{ path: "/dev/nvme1n1", serial: "LAB100001N1", wwn: null }],
  signatures: [],
  luks: null,
  mappings: [],
  status: { active: false, discards: false },
  crypttab: ["# <target name> <source device> <key file> <options>"],
  keys: null,
  randomise: { running: false, device: null, exitCode: null },
  ...over,
});

const kinds = (steps: { kind: string }[]): string[] => steps.map((s) => s.kind);
const withSlots = (o: LuksObserved, slots: number[]): LuksObserved => ({
  ...o,
  luks: { ...o.luks!, metadata: { ...o.luks!.metadata, keyslots: slots.map((slot) => ({ slot, kdf: { type: "argon2id", iterations: 4, memoryKiB: 32768, parallelism: 1 } })) } },
});
const closed = (o: LuksObserved): LuksObserved => ({ ...o, mappings: [], status: { active: false, discards: false } });

describe("LuksVolume plan: create", () => {
  it.each<[string, LuksObserved, PlanCase, string[]]>([
    ["blank device", blank(), {}, ["format", "open", "writeCrypttab"]],
    ["blank device, random-fast", blank(), { wipe: "random-fast" }, ["randomise", "format", "open", "writeCrypttab"]],
    ["randomised already (killed before format)", blank({ randomise: { running: false, device: "/dev/nvme1n1p1", exitCode: 0 } }), { wipe: "random-fast" }, ["format", "open", "writeCrypttab"]],
    ["randomisation still running (re-run follows it)", blank({ signatures: ["ext4"], randomise: { running: true, device: "/dev/nvme1n1p1", exitCode: null } }), { wipe: "urandom" }, ["randomise", "format", "open", "writeCrypttab"]],
    ["ext4 with allowWipe", blank({ signatures: ["ext4"] }), { allowWipe: true }, ["wipeSignatures", "format", "open", "writeCrypttab"]],
    ["blank with an extra passphrase", blank(), { extraPassphrases: ["Recovery-Phrase-For-Ops-2024"] }, ["format", "addKey", "open", "writeCrypttab"]],
    ["ours, formatted, killed before open", closed(openLuks()), {}, ["open", "writeCrypttab"].filter((k) => k !== "writeCrypttab")],
    ["ours, open, crypttab line lost", openLuks(undefined, { crypttab: [] }), {}, ["writeCrypttab"]],
    ["ours, converged", openLuks(), {}, []],
    ["ours, crypttab root changed to an empty etc", openLuks(undefined, { crypttab: [""] }), {}, ["writeCrypttab"]],
    ["foreign container, adopt", openLuks(undefined, { luks: { ...openLuks().luks!, subsystem: null } }), { adopt: true }, []],
    ["foreign container, allowWipe", openLuks({ passphrase: null, extras: [], retired: [] }, { luks: { ...openLuks().luks!, subsystem: null }, mappings: [], signatures: ["crypto_LUKS"] }), { allowWipe: true }, ["wipeSignatures", "format", "open", "writeCrypttab"]],
    ["label changed", openLuks(), { label: "renamed" }, ["setLabel"]],
    ["discard turned on", openLuks(undefined, { crypttab: [`data UUID=${UUID} none luks,discard`] }), { discard: true }, ["refreshDiscard"]],
    ["open under another name", openLuks(undefined, { mappings: [{ name: "luks-old", cryptType: "LUKS2", luksUuid: UUID }] }), {}, ["rename", "refreshDiscard"]],
  ])("%s", (_name, observed, over, expected) => {
    expect(kinds(plan(observed, desired(over)))).toEqual(expected);
  });

  it.each<[string, LuksObserved, PlanCase, RegExp]>([
    ["a missing device", blank({ exists: false }), {}, /does not exist.*mdadm --assemble/],
    ["a filesystem without allowWipe", blank({ signatures: ["ext4", "gpt"] }), {}, /holds ext4, gpt signatures.*Set allowWipe: true/],
    ["LVM without allowWipe", blank({ signatures: ["LVM2_member"] }), {}, /LVM2_member/],
    ["a LUKS container the passphrase does not open", openLuks({ passphrase: null, extras: [], retired: [] }), {}, /does not open; nothing was written/],
    ["a foreign container without adopt", openLuks(undefined, { luks: { ...openLuks().luks!, subsystem: null } }), {}, /not created by hetzner-fde; set adopt: true/],
    ["adopting a different cipher", openLuks(undefined, { luks: { ...openLuks().luks!, subsystem: null } }), { adopt: true, cipher: "serpent-xts-plain64" }, /cipher is aes-xts-plain64, not serpent/],
    ["adopt on a blank device", blank(), { adopt: true }, /adopt is set but .* holds no LUKS header/],
    // The installed root adopted with a config that does not match it: refused, never formatted, whatever allowWipe says.
    ["adopting a different key size, with allowWipe", openLuks(undefined, { luks: { ...openLuks().luks!, subsystem: null } }), { adopt: true, allowWipe: true, keySize: 256 }, /adopt is set but the LUKS container .* differs from the inputs: keySize is 512, not 256; nothing was written, and an adopted container is never formatted over, even with allowWipe/],
    ["adopting a container the passphrase does not open, with allowWipe", openLuks({ passphrase: null, extras: [], retired: [] }, { luks: { ...openLuks().luks!, subsystem: null } }), { adopt: true, allowWipe: true }, /adopt is set but the passphrase does not open .* never formatted over, even with allowWipe/],
    ["a pinned disk that is not there", blank(), { disks: [{ serial: "OTHER" }] }, /disks\[0\].*not beneath.*LAB100001N1/],
    ["a mapper name taken by another device", blank({ mappings: [{ name: "data", cryptType: "LUKS2", luksUuid: "11111111-2222-3333-4444-555555555555" }] }), {}, /already in use by another device-mapper device/],
    ["a crypttab root without etc", blank({ crypttab: null }), { crypttab: { root: "/mnt", options: ["luks"] } }, /crypttab root \/mnt has no etc\//],
  ])("refuses %s", (_name, observed, over, message) => {
    expect(() => plan(observed, desired(over))).toThrow(message);
  });
});

describe("LuksVolume plan: pinned disks", () => {
  const N0 = { path: "/dev/nvme0n1", serial: "LAB100001N0", wwn: null };
  const N1 = { path: "/dev/nvme1n1", serial: "LAB100001N1", wwn: null };
  const pins = { disks: [{ serial: "LAB100001N0" }, { serial: "LAB100001N1" }] };

  it("a degraded array (one pinned disk missing, nothing unpinned beneath) still takes steps that keep the data", () => {
    const degraded = withSlots(openLuks({ passphrase: 0, extras: [], retired: [] }, { disks: [N1] }), [0]);
    expect(plan(degraded, desired(pins), recordedWith(0))).toEqual([]);
    const rotation = withSlots(openLuks({ passphrase: null, extras: [], retired: [0] }, { disks: [N1] }), [0]);
    expect(kinds(plan(rotation, desired(pins), recordedWith(1)))).toEqual(["addKey", "killSlot"]);
  });

  it("but is never formatted", () => {
    expect(() => plan(blank({ disks: [N1] }), desired({ ...pins, allowWipe: true }))).toThrow(/disks\[0\].*not beneath.*formatted only with every pinned disk beneath it/);
    expect(kinds(plan(blank({ disks: [N0, N1] }), desired({ ...pins, allowWipe: true })))).toContain("format");
  });

  it.each([
    ["no pinned disk beneath", [{ path: "/dev/sda", serial: "OTHER", wwn: null }]],
    ["a pinned disk missing and an unpinned one beneath", [N1, { path: "/dev/sda", serial: "OTHER", wwn: null }]],
  ])("refuses %s: renumbered or swapped", (_name, disks) => {
    const observed = withSlots(openLuks({ passphrase: 0, extras: [], retired: [] }, { disks }), [0]);
    expect(() => plan(observed, desired(pins), recordedWith(0))).toThrow(/disks\[0\].*not beneath.*renumbered or a disk swapped/);
  });
});

describe("LuksVolume plan: key rotation and keyslot drift (update)", () => {
  type UpdateCase = PlanCase & { retiredCount?: number };
  const update = (observed: LuksObserved, { retiredCount = 0, ...over }: UpdateCase = {}) => plan(observed, desired(over), recordedWith(retiredCount));

  it.each<[string, LuksObserved, UpdateCase, unknown[]]>([
    ["rotation, nothing done yet", withSlots(openLuks({ passphrase: null, extras: [], retired: [0] }), [0]), { retiredCount: 1 }, [
      { kind: "addKey", key: { role: "passphrase" }, authorizedBy: { role: "retired", index: 0 } },
      { kind: "killSlot", slot: 0, keep: { role: "passphrase" }, reason: "retired" },
    ]],
    ["rotation killed after the add", withSlots(openLuks({ passphrase: 1, extras: [], retired: [0] }), [0, 1]), { retiredCount: 1 }, [{ kind: "killSlot", slot: 0, reason: "retired" }]],
    ["rotation killed after the kill", withSlots(openLuks({ passphrase: 1, extras: [], retired: [null] }), [1]), { retiredCount: 1 }, []],
    ["a keyslot added by hand", withSlots(openLuks({ passphrase: 0, extras: [], retired: [] }), [0, 1]), {}, [{ kind: "killSlot", slot: 1, reason: "unknown" }]],
    ["an extra passphrase added", withSlots(openLuks({ passphrase: 0, extras: [null], retired: [] }), [0]), { extraPassphrases: ["Recovery-Phrase-For-Ops-2024"] }, [
      { kind: "addKey", key: { role: "extra", index: 0 }, authorizedBy: { role: "passphrase" } },
    ]],
    ["pbkdf cost raised", withSlots(openLuks(), [0]), { pbkdf: { ...PBKDF, iterations: 6 } }, [{ kind: "convertKey", key: { role: "passphrase" } }]],
  ])("%s", (_name, observed, over, expected) => {
    const steps = update(observed, over);
    expect(steps).toHaveLength(expected.length);
    steps.forEach((step, i) => expect(step).toMatchObject(expected[i] as object));
  });

  it("never reformats in an update, and refuses when no known passphrase opens the container", () => {
    expect(() => update(openLuks({ passphrase: null, extras: [], retired: [null] }), { allowWipe: true })).toThrow(/none of the configured passphrases/);
    expect(() => update(blank({ signatures: ["ext4"] }), { allowWipe: true })).toThrow(/LUKS header on .* is gone/);
  });
});

describe("LuksVolume diff (old outputs × new inputs, no host): the plan against the recorded facts", () => {
  const outputs = (over: Partial<LuksVolumeOutputs> = {}): LuksVolumeOutputs => {
    const d = desired();
    return {
      ...d,
      uuid: UUID,
      environment: "rescue",
      host: "127.0.0.1:2201",
      observed: {
        cipher: "aes-xts-plain64", keySize: 512, sectorSize: 512, label: "lab-data", subsystem: "hetzner-fde",
        keyslots: [{ slot: 0, kdf: { type: "argon2id", iterations: 4, memoryKiB: 32768, parallelism: 1 } }],
        openAs: "data", discardsActive: false, crypttabLine: `data UUID=${UUID} none luks`, disks: [],
      },
      ...over,
    };
  };
  const news = (over: Record<string, unknown> = {}) => ({ connection: CONNECTION, device: "/dev/nvme1n1p1", mapperName: "data", passphrase: P, pbkdf: PBKDF, label: "lab-data", providerVersion: "1", ...over }) as never;

  it("no change when the host matches", () => {
    expect(compareOutputs(outputs(), news())).toEqual({ changes: false });
  });

  // The step the plan against the recorded facts returns says why (changeReasons is gone: one rule set).
  it.each<[string, Partial<LuksVolumeOutputs>, Record<string, unknown>, string[]]>([
    ["rotated passphrase", {}, { passphrase: "Another-Good-Phrase-42x" }, ["addKey", "killSlot"]],
    ["keyslot added by hand", { observed: { ...outputs().observed, keyslots: [...outputs().observed.keyslots, { slot: 1, kdf: { type: "argon2id", iterations: 4, memoryKiB: 32768, parallelism: 1 } }] } }, {}, ["killSlot"]],
    ["crypttab line removed", { observed: { ...outputs().observed, crypttabLine: null } }, {}, ["writeCrypttab"]],
    ["closed", { observed: { ...outputs().observed, openAs: null, discardsActive: null } }, {}, ["open"]],
    ["label", {}, { label: "other" }, ["setLabel"]],
    ["discard", {}, { discard: true }, ["refreshDiscard", "writeCrypttab"]],
    ["crypttab root", {}, { crypttab: { root: "/mnt" } }, ["writeCrypttab"]],
    ["pbkdf cost", {}, { pbkdf: { ...PBKDF, iterations: 6 } }, ["convertKey"]],
    ["provider version", {}, { providerVersion: "2" }, []],
  ])("in place: %s", (_name, olds, newOver, steps) => {
    const news_ = news(newOver) as LuksVolumeInputs;
    expect(kinds(plan(definition.recordedFacts(outputs(olds), news_), news_, outputs(olds)))).toEqual(steps);
    const diff = compareOutputs(outputs(olds), news(newOver));
    expect(diff).toEqual({ changes: true });
  });

  it("an input dropped from the program leaves the stored outputs on an update without host work, so the next diff is empty", async () => {
    const olds = outputs({ wipe: "urandom", adopt: false });
    expect(compareOutputs(olds, news())).toEqual({ changes: true });
    const outs = (await new KernelProvider(definition).update("id", olds, news())).outs as LuksVolumeOutputs;
    expect(outs).not.toHaveProperty("wipe");
    expect(outs).not.toHaveProperty("adopt");
    expect(outs.uuid).toBe(UUID);
    expect(compareOutputs(outs, news())).toEqual({ changes: false });
  });

  it.each([
    ["device", { device: "/dev/md1" }],
    ["cipher", { cipher: "serpent-xts-plain64" }],
    ["keySize", { keySize: 256 }],
    ["sectorSize", { sectorSize: 4096 }],
  ])("replacement, old one deleted first: %s", (field, newOver) => {
    expect(compareOutputs(outputs(), news(newOver))).toEqual({ changes: true, replaces: [field], deleteBeforeReplace: true });
  });
});

describe("LuksVolume delete plan", () => {
  const outs = (allowWipe: boolean) => ({ connection: CONNECTION, device: "/dev/nvme1n1p1", mapperName: "data", passphrase: P, allowWipe, providerVersion: "1", uuid: UUID, host: "127.0.0.1:2201" }) as unknown as LuksVolumeOutputs;

  it("without allowWipe the kernel retains everything; the warning names the container, mapping and crypttab line", () => {
    expect(definition.retained(outs(false))).toBe(
      `the LUKS container on /dev/nvme1n1p1 (UUID ${UUID}; header, keyslots and all data inside, still opened by the passphrase), its mapping /dev/mapper/data and its crypttab line on 127.0.0.1:2201`,
    );
  });

  it("backs the header up before erasing it with allowWipe", () => {
    const steps = planDelete(openLuks(), outs(true));
    expect(kinds(steps)).toEqual(["close", "removeCrypttab", "headerBackup", "erase"]);
    expect(steps[2]).toMatchObject({ file: "/root/luks-header-data.img", uuid: UUID });
  });

  it("converges when re-run: nothing left to do after a completed delete", () => {
    const erased = withSlots(closed(openLuks(undefined, { crypttab: [] })), []);
    expect(kinds(planDelete(erased, outs(true)))).toEqual(["headerBackup"]);
    expect(kinds(planDelete(blank(), outs(true)))).toEqual([]);
  });
});
