// A lab server configured with firmware "uefi" boots through OVMF: its blank disks end in the
// EFI shell (reported as a failed boot), and its rescue runs in EFI mode, which is what makes
// installimage pick GPT + an ESP.
import { sh } from "../../providers/plumbing/shell";
import { LabFixture, startLabFixture } from "../support/lab";
import { waitFor } from "../support/wait";

jest.setTimeout(600_000);

describe("lab: UEFI server", () => {
  let lab: LabFixture;
  let server: number;

  beforeAll(async () => {
    lab = await startLabFixture({ images: "rescue", server: { firmware: "uefi" } });
    server = lab.server().number;
  });
  afterAll(async () => {
    await lab?.close();
  });

  it("blank disks: OVMF finds nothing to boot and the boot is reported as failed", async () => {
    await lab.supervisor.waitForConsole(server, /EFI Internal Shell/, 180_000);
    // The console line comes first; the supervisor records the failure when it judges the boot.
    const failure = await waitFor(() => lab.supervisor.currentBoot(server)?.failure, { what: `a recorded boot failure of server ${server}`, timeoutMs: 60_000 });
    expect(failure.reason).toMatch(/UEFI firmware found no bootable disk/);
  });

  it("rescue boots in EFI mode", async () => {
    await lab.withRescue(server, async (session) => {
      expect((await session.exec(sh`test -d /sys/firmware/efi && echo efi`)).stdout.trim()).toBe("efi");
    });
  });
});
