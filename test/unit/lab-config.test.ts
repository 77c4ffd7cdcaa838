import * as path from "path";
import { findServer, LabConfigError, loadLabConfig, parseLabConfig, validateLabConfig } from "../../lab/config";

const minimal = () => ({
  robot: { port: 40080, user: "robot", password: "lab-robot-secret" },
  mirror: { port: 40081 },
  servers: [{ number: 100001, name: "lab-1", sshPort: 2201, dropbearPort: 2221 }],
});

describe("validateLabConfig", () => {
  it("accepts a minimal config and fills the documented defaults", () => {
    expect(validateLabConfig(minimal())).toEqual([]);
    expect(parseLabConfig(minimal()).servers[0]).toEqual({
      number: 100001, name: "lab-1", sshPort: 2201, dropbearPort: 2221, memoryMiB: 2048, cpus: 1,
      disks: { count: 2, sizeGiB: 20, type: "nvme" }, firmware: "bios",
    });
  });

  type Mutate = (c: ReturnType<typeof minimal>) => void;
  const set = (f: (s: Record<string, unknown>) => void): Mutate => (c) => f(c.servers[0] as Record<string, unknown>);
  it.each<[string, Mutate, string, RegExp]>([
    ["robot port privileged", (c) => (c.robot.port = 80), "robot.port", /integer from 1024 to 65535.*got 80/],
    ["empty password", (c) => (c.robot.password = ""), "robot.password", /non-empty string, got an empty string/],
    ["no servers", (c) => (c.servers = []), "servers", /non-empty array/],
    ["name with capitals", set((s) => (s.name = "Lab_1")), "servers[0].name", /lowercase hostname label.*"Lab_1"/],
    ["ssh port string", set((s) => (s.sshPort = "2201")), "servers[0].sshPort", /got "2201"/],
    ["too little RAM", set((s) => (s.memoryMiB = 256)), "servers[0].memoryMiB", /512 to 65536/],
    ["unknown disk type", set((s) => (s.disks = { type: "scsi" })), "servers[0].disks.type", /"nvme" or "sata", got "scsi"/],
    ["too many sata disks", set((s) => (s.disks = { type: "sata", count: 7 })), "servers[0].disks.count", /1 to 6/],
    ["firmware typo", set((s) => (s.firmware = "efi")), "servers[0].firmware", /"bios" or "uefi", got "efi"/],
    ["unknown field", set((s) => (s.ram = 1)), "servers[0].ram", /not a known field/],
    ["port collision", set((s) => (s.dropbearPort = 40080)), "servers[0].dropbearPort", /already used by robot.port/],
  ])("%s", (_name, mutate, property, reason) => {
    const config = minimal();
    mutate(config);
    const failures = validateLabConfig(config);
    expect(failures).toContainEqual({ property, reason: expect.stringMatching(reason) });
  });

  it("collects every failure and names duplicates", () => {
    const config = minimal();
    config.servers.push({ number: 100001, name: "lab-1", sshPort: 2201, dropbearPort: 9 });
    const properties = validateLabConfig(config).map((f) => f.property);
    expect(properties).toEqual(expect.arrayContaining(["servers[1].number", "servers[1].name", "servers[1].sshPort", "servers[1].dropbearPort"]));
  });

  it("throws a LabConfigError whose message lists each field and never the password", () => {
    const config = minimal() as Record<string, unknown>;
    (config.robot as Record<string, unknown>).port = 1;
    (config.robot as Record<string, unknown>).password = 42;
    let error: unknown;
    try {
      parseLabConfig(config, "lab.config.json");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LabConfigError);
    expect((error as Error).message).toMatch(/lab.config.json is invalid:\n {2}- robot.port: .*\n {2}- robot.password: /);
  });
});

describe("the shipped lab.config.json", () => {
  it("is valid and matches the lab contract's defaults", () => {
    const config = loadLabConfig(path.resolve(__dirname, "..", "..", "..", "lab", "lab.config.json"));
    expect(config.robot).toEqual({ port: 40080, user: "robot", password: "lab-robot-secret", reportHostKeys: true });
    expect(config.servers.map((s) => [s.number, s.name, s.sshPort, s.dropbearPort])).toEqual([
      [100001, "lab-1", 2201, 2221],
      [100002, "lab-2", 2202, 2222],
    ]);
    expect(findServer(config, "lab-2").number).toBe(100002);
    expect(findServer(config, "100001").name).toBe("lab-1");
    expect(() => findServer(config, "lab-9")).toThrow(/no lab server "lab-9"; known servers: 100001 \(lab-1\), 100002 \(lab-2\)/);
  });
});
