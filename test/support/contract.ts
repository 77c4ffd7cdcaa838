// The contract every kernel resource keeps, written once and run against each resource through the
// harness (the real dynamic-provider host). Call `describeResourceContract` from the test file that
// already has a host for the resource (a lab file shares its booted server), so CI boots nothing more.
//
// Cases, in order (they share one harness, the way an operator's successive commands do):
// - a `check` failure is reported before any connection is opened;
// - a create converges, and a second `up` plans nothing;
// - `diff` is empty exactly when the plan is empty (same inputs: none; an input the plan acts on: some);
// - `read` returns inputs (the request as recorded), not only outputs;
// - delete without `allowWipe` follows the retain policy: the host is untouched, the resource leaves
//   the stack, and the warning says what was kept and how to remove it instead.
import * as net from "net";
import type { ProviderHarness, Props } from "../harness/harness";

export interface ContractFixture {
  /** A harness for the resource with valid args (allowWipe unset), merged with `overrides`. */
  start(overrides?: Props): Promise<ProviderHarness>;
  /** Args overrides that point every connection profile at 127.0.0.1:`port`. */
  connectionTo(port: number): Props;
  /** Inputs check must refuse (merged over the valid ones). */
  readonly invalid: Props;
  /** An input change the plan acts on (diff "some"). */
  readonly change: Props;
  /** Everything on the host a delete could touch, as text: must be identical after a retaining delete. */
  hostState(): Promise<string>;
  /** A resource with nothing to wipe has no allowWipe and no retain policy (RescueBoot: its delete
   *  only disarms a rescue still armed). Its delete case then checks the same host state and that the
   *  resource leaves the stack, and that the log `says` this instead of the retain warning. */
  readonly withoutAllowWipe?: { readonly says: RegExp };
}

export function describeResourceContract(name: string, fixture: ContractFixture): void {
  describe(`contract: ${name}`, () => {
    it("reports a check failure before any connection is opened", async () => {
      let connections = 0;
      const trap = net.createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
      const port = (trap.address() as net.AddressInfo).port;
      const h = await fixture.start(fixture.connectionTo(port));
      try {
        const bad = h.inputs(fixture.invalid);
        const { failures } = await h.check(h.urn, {}, bad);
        expect(failures.length).toBeGreaterThan(0);
        await expect(h.up(bad)).rejects.toThrow(/check failed/);
        expect(connections).toBe(0);
      } finally {
        await h.stop();
        trap.close();
      }
    });

    describe("lifecycle", () => {
      let h: ProviderHarness;
      beforeAll(async () => {
        h = await fixture.start();
      });
      afterAll(async () => {
        await h?.stop();
      });

      it("converges on create, and a second up plans nothing", async () => {
        expect((await h.up()).op).toBe("create");
        const again = await h.up();
        expect(again.op).toBe("same");
        expect(again.diff?.changes).toBe("none");
      });

      it("diffs empty exactly when the plan is empty", async () => {
        const entry = h.state.resources.get(h.urn);
        expect((await h.diff(entry?.id as string, entry?.plainOutputs as Props, h.inputs())).changes).toBe("none");
        expect((await h.diff(entry?.id as string, entry?.plainOutputs as Props, h.inputs(fixture.change))).changes).toBe("some");
      });

      it("returns inputs from read", async () => {
        const read = await h.refresh();
        const recorded = (read?.inputs ?? {}) as Props;
        expect(Object.keys(recorded).length).toBeGreaterThan(0);
        // Every input read reports is the request as the program made it.
        const requested = h.inputs() as Props;
        for (const key of Object.keys(recorded)) expect({ [key]: recorded[key] }).toEqual({ [key]: requested[key] });
      });

      const deleteCase = fixture.withoutAllowWipe
        ? "leaves the host as it was on delete (nothing to wipe, no allowWipe), and says so"
        : "retains everything on delete without allowWipe, and says so";
      it(deleteCase, async () => {
        const before = await fixture.hostState();
        await h.destroy();
        expect(h.state.resources.get(h.urn)).toBeUndefined();
        expect(await fixture.hostState()).toBe(before);
        await h.stop();
        expect(h.logs).toMatch(fixture.withoutAllowWipe?.says ?? /untouched: allowWipe is false, so it is retained .*set allowWipe: true, run up, then destroy/);
      });
    });
  });
}
